//! The sync's integrity check (docs/sync.md, "Integrity"): a count and a SHA-256 over
//! identifiers and modification times, the same on both sides when they hold the same.
//!
//! - [`site`]: what this server holds, served to another site at
//!   `GET /api/v4/sync/digest/{collection}`: every row (live and deleted) whose srv_modified
//!   is after `since`, lines `identifier\tsrv_modified\n` in identifier order.
//! - [`known`]: what this server last knew of another site (sync_known, migrations/006-sync.sql):
//!   the rows whose remote_modified is after `since`, lines `identity\tremote_modified\n` in
//!   identity order.
//!
//! Both orders are SQLite's BINARY collation (byte order), read from an index, so the hash is
//! folded row by row while the statement steps: memory stays flat however many rows there are.
//! [`sample`] picks the rows the check reads one by one from a site without a digest.

use rusqlite::{params, Connection};
use sha2::{Digest as _, Sha256};

use super::Collection;
use crate::error::Result;

/// A collection's count and hash (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub count: u64,
    pub hash: String,
}

/// Up to this many rows are read through the srv_modified index and sorted (a sort of at
/// most this many short rows); more are read in identifier order from its index, no sort.
const SORT_AT_MOST: i64 = 5_000;

/// The digest of table `coll`'s rows with srv_modified > `since` (see the module doc).
pub fn site(conn: &Connection, coll: Collection, since: i64) -> Result<Digest> {
    // One snapshot for the count that picks the plan and the read itself.
    let tx = conn.unchecked_transaction()?;
    let t = coll.table();
    let n: i64 = tx
        .prepare_cached(&format!("SELECT count(*) FROM {t} WHERE srv_modified > ?1"))?
        .query_row([since], |r| r.get(0))?;
    let digest = fold(
        &mut tx.prepare(&site_sql(coll, n <= SORT_AT_MOST))?,
        params![since],
    )?;
    tx.finish()?;
    Ok(digest)
}

/// The statement reading `coll`'s (identifier, srv_modified) in identifier order: a recent
/// range (`few`) through the srv_modified index and a sort, else the identifier index whole.
fn site_sql(coll: Collection, few: bool) -> String {
    let t = coll.table();
    let index = if few { "srv_modified" } else { "identifier" };
    format!(
        "SELECT identifier, srv_modified FROM {t} INDEXED BY {t}_{index}
         WHERE srv_modified > ?1 ORDER BY identifier"
    )
}

/// The statement reading sync_known's (identity, remote_modified) of one site and collection
/// in identity order: its primary key, no sort.
const KNOWN_SQL: &str = "SELECT identity, remote_modified FROM sync_known
     WHERE remote = ?1 AND collection = ?2 AND remote_modified > ?3
     ORDER BY identity";

/// The digest of what sync_known holds of `remote`'s `coll` with remote_modified > `since`.
pub fn known(conn: &Connection, remote: &str, coll: Collection, since: i64) -> Result<Digest> {
    let mut stmt = conn.prepare_cached(KNOWN_SQL)?;
    fold(&mut stmt, params![remote, coll.table(), since])
}

/// Counts and hashes the (text, integer) rows of `stmt`, one at a time.
fn fold(stmt: &mut rusqlite::Statement<'_>, args: impl rusqlite::Params) -> Result<Digest> {
    let mut h = Sha256::new();
    let mut count = 0u64;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        // Identifiers are text; an odd one (a number a client sent) hashes as SQLite's text.
        let id: rusqlite::types::Value = row.get(0)?;
        let ms: i64 = row.get(1)?;
        match id {
            rusqlite::types::Value::Text(s) => h.update(s.as_bytes()),
            rusqlite::types::Value::Integer(i) => h.update(i.to_string().as_bytes()),
            rusqlite::types::Value::Real(f) => h.update(f.to_string().as_bytes()),
            _ => {}
        }
        h.update(b"\t");
        h.update(ms.to_string().as_bytes());
        h.update(b"\n");
        count += 1;
    }
    Ok(Digest {
        count,
        hash: crate::ids::hex(&h.finalize()),
    })
}

/// How many sync_known rows `remote`'s `coll` has.
pub fn known_count(conn: &Connection, remote: &str, coll: Collection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM sync_known WHERE remote = ?1 AND collection = ?2")?
        .query_row(params![remote, coll.table()], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One sync_known row picked for a sampled comparison, with the local document it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampled {
    pub identity: String,
    pub remote_modified: Option<i64>,
    pub hash: String,
    /// The local document's `_id` and whether it is live; None when it is not here.
    pub local: Option<(String, bool)>,
}

/// Up to `n` sync_known rows of `remote`'s `coll`, picked at random.
pub fn sample(conn: &Connection, remote: &str, coll: Collection, n: u32) -> Result<Vec<Sampled>> {
    let mut stmt = conn.prepare(&sample_sql(coll))?;
    let rows = stmt.query_map(params![remote, coll.table(), n], |r| {
        let id: Option<String> = r.get(3)?;
        let valid: Option<bool> = r.get(4)?;
        Ok(Sampled {
            identity: r.get(0)?,
            remote_modified: r.get(1)?,
            hash: r.get(2)?,
            local: id.zip(valid),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The sample is picked first (a scan of the site's rows keeping `n` at random: SQLite keeps
/// only the `n` best of `ORDER BY random() LIMIT n`), then each looks up its local document by
/// identifier, else `_id` (both indexed).
fn sample_sql(coll: Collection) -> String {
    let t = coll.table();
    format!(
        "SELECT k.identity, k.remote_modified, k.hash, d.id, d.is_valid
         FROM (SELECT identity, remote_modified, hash FROM sync_known
               WHERE remote = ?1 AND collection = ?2 ORDER BY random() LIMIT ?3) AS k
         LEFT JOIN {t} AS d
             ON d.seq = coalesce((SELECT seq FROM {t} WHERE identifier = k.identity),
                                 (SELECT seq FROM {t} WHERE id = k.identity))"
    )
}

/// What both sides held of one document at the last sync (a sync_known row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub identity: String,
    pub local_modified: Option<i64>,
    pub remote_modified: Option<i64>,
    pub hash: String,
}

/// Writes sync_known rows of `remote`'s `coll` (replacing those of the same identity): the
/// tests' way to set up what a sync run leaves behind.
pub fn put_known(conn: &Connection, remote: &str, coll: Collection, rows: &[Known]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO sync_known
             (remote, collection, identity, local_modified, remote_modified, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for k in rows {
        stmt.execute(params![
            remote,
            coll.table(),
            k.identity,
            k.local_modified,
            k.remote_modified,
            k.hash
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SITE: &str = "https://site.example";

    /// A database with `n` entries (identifier `e{i}`, srv_modified 1000 + i) written as
    /// the writer would, and sync_known rows saying the site holds the same.
    fn both(n: i64) -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        for i in 0..n {
            insert(&conn, &format!("e{i:03}"), 1000 + i, true);
        }
        let rows: Vec<Known> = (0..n)
            .map(|i| known_row(&format!("e{i:03}"), 1000 + i))
            .collect();
        put_known(&conn, SITE, Collection::Entries, &rows).unwrap();
        conn
    }

    fn insert(conn: &Connection, ident: &str, modified: i64, valid: bool) {
        conn.execute(
            "INSERT INTO entries (id, doc, mills, srv_created, srv_modified, is_valid)
             VALUES (?1, json_object('identifier', ?1, 'date', 5), 5, ?2, ?2, ?3)",
            params![ident, modified, valid],
        )
        .unwrap();
    }

    fn known_row(ident: &str, remote_modified: i64) -> Known {
        Known {
            identity: ident.into(),
            local_modified: Some(remote_modified),
            remote_modified: Some(remote_modified),
            hash: "h".into(),
        }
    }

    fn pair(conn: &Connection, since: i64) -> (Digest, Digest) {
        (
            site(conn, Collection::Entries, since).unwrap(),
            known(conn, SITE, Collection::Entries, since).unwrap(),
        )
    }

    #[test]
    fn the_digests_agree_when_both_sides_hold_the_same() {
        let conn = both(3);
        let (s, k) = pair(&conn, 0);
        assert_eq!(s, k);
        assert_eq!(s.count, 3);
        // The lines, as another implementation would hash them.
        let lines = "e000\t1000\ne001\t1001\ne002\t1002\n";
        assert_eq!(s.hash, crate::ids::hex(&Sha256::digest(lines.as_bytes())));
        // `since` bounds both sides alike.
        let (s, k) = pair(&conn, 1000);
        assert_eq!((s.count, &s), (2, &k));
        // Another site's or collection's rows are not this one's.
        assert_eq!(
            known(&conn, "other", Collection::Entries, 0).unwrap().count,
            0
        );
        assert_eq!(
            known(&conn, SITE, Collection::Treatments, 0).unwrap().count,
            0
        );
    }

    #[test]
    fn one_changed_time_one_missing_or_one_extra_row_makes_them_differ() {
        let conn = both(3);
        conn.execute(
            "UPDATE entries SET srv_modified = 2000 WHERE id = 'e001'",
            [],
        )
        .unwrap();
        let (s, k) = pair(&conn, 0);
        assert_eq!(s.count, k.count);
        assert_ne!(s.hash, k.hash);

        let conn = both(3);
        conn.execute("DELETE FROM sync_known WHERE identity = 'e002'", [])
            .unwrap();
        let (s, k) = pair(&conn, 0);
        assert_eq!((s.count, k.count), (3, 2));
        assert_ne!(s.hash, k.hash);

        let conn = both(3);
        put_known(&conn, SITE, Collection::Entries, &[known_row("e003", 1003)]).unwrap();
        let (s, k) = pair(&conn, 0);
        assert_eq!((s.count, k.count), (3, 4));
        assert_ne!(s.hash, k.hash);
    }

    #[test]
    fn deleted_rows_count_and_order_is_byte_order() {
        let conn = both(2);
        // A deletion: the row stays (isValid false) with a later srv_modified.
        insert(&conn, "Z-deleted", 1500, false);
        put_known(
            &conn,
            SITE,
            Collection::Entries,
            &[known_row("Z-deleted", 1500)],
        )
        .unwrap();
        let (s, k) = pair(&conn, 0);
        assert_eq!((s.count, &s), (3, &k));
        // Byte order: "Z" (0x5a) sorts before "e" (0x65).
        let lines = "Z-deleted\t1500\ne000\t1000\ne001\t1001\n";
        assert_eq!(s.hash, crate::ids::hex(&Sha256::digest(lines.as_bytes())));
    }

    #[test]
    fn both_plans_give_the_same_digest() {
        let n = SORT_AT_MOST + 10;
        let conn = both(n);
        // A recent range (sorted) and all (the identifier index) over the same rows.
        let few = site(&conn, Collection::Entries, 1000 + n - 20).unwrap();
        assert_eq!(few.count, 19);
        assert_eq!(
            few,
            known(&conn, SITE, Collection::Entries, 1000 + n - 20).unwrap()
        );
        let all = site(&conn, Collection::Entries, 0).unwrap();
        assert_eq!(all.count, n as u64);
        assert_eq!(all, known(&conn, SITE, Collection::Entries, 0).unwrap());
    }

    fn plan(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(args, |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn the_digests_read_indexes_in_order_without_collecting_rows() {
        let conn = crate::store::open_in_memory().unwrap();
        for coll in Collection::ALL {
            let t = coll.table();
            // All rows: the identifier index in its order, no sort (which would gather them).
            let p = plan(&conn, &site_sql(coll, false), [0]);
            assert!(
                p.iter()
                    .any(|l| l.contains(&format!("USING INDEX {t}_identifier"))),
                "{p:?}"
            );
            assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{p:?}");
            // A recent range: the srv_modified index, then a sort of at most SORT_AT_MOST.
            let p = plan(&conn, &site_sql(coll, true), [0]);
            assert!(
                p.iter().any(|l| l.contains(&format!(
                    "SEARCH {t} USING INDEX {t}_srv_modified (srv_modified>?)"
                ))),
                "{p:?}"
            );
            // The sample looks its local document up by index, never a scan of the table.
            let p = plan(&conn, &sample_sql(coll), params!["x", t, 20]);
            assert!(
                !p.iter().any(|l| l.starts_with(&format!("SCAN {t}"))),
                "{p:?}"
            );
            assert!(!p.iter().any(|l| l.starts_with("SCAN d")), "{p:?}");
        }
        let p = plan(&conn, KNOWN_SQL, params!["x", "entries", 0]);
        assert!(
            p.iter()
                .any(|l| l
                    .contains("SEARCH sync_known USING PRIMARY KEY (remote=? AND collection=?)")),
            "{p:?}"
        );
        assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{p:?}");
    }

    #[test]
    fn a_sample_is_of_the_sites_rows_with_their_local_documents() {
        let conn = both(30);
        put_known(&conn, "other", Collection::Entries, &[known_row("e000", 1)]).unwrap();
        put_known(&conn, SITE, Collection::Entries, &[known_row("gone", 1)]).unwrap();
        let s = sample(&conn, SITE, Collection::Entries, 40).unwrap();
        assert_eq!(s.len(), 31);
        let gone = s.iter().find(|r| r.identity == "gone").unwrap();
        assert_eq!(gone.local, None);
        let e = s.iter().find(|r| r.identity == "e005").unwrap();
        assert_eq!(e.local, Some(("e005".to_string(), true)));
        assert_eq!(e.remote_modified, Some(1005));
        assert_eq!(
            sample(&conn, SITE, Collection::Entries, 20).unwrap().len(),
            20
        );
        assert_eq!(known_count(&conn, SITE, Collection::Entries).unwrap(), 31);
    }

    /// A line of /proc/self/status, in kB (Linux).
    fn status_kb(key: &str) -> u64 {
        let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The digests' time and memory on 100,000 and 500,000 entries (docs/PERFORMANCE.md,
    /// "Sync digest"): `cargo test --release --lib sync_digest::tests::measure -- --ignored
    /// --nocapture`. Peak RSS is reset before each digest (/proc/self/clear_refs), so the peak
    /// printed is the digest's own on top of what the process held.
    #[test]
    #[ignore]
    fn measure() {
        for n in [100_000i64, 500_000] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("digest.sqlite3");
            {
                let mut conn = Connection::open(&path).unwrap();
                crate::store::migrate::migrate(&mut conn).unwrap();
                let tx = conn.transaction().unwrap();
                {
                    let mut doc = tx
                        .prepare(
                            "INSERT INTO entries (id, doc, mills, srv_created, srv_modified)
                             VALUES (?1, json_object('identifier', ?2, 'type', 'sgv',
                                     'sgv', 100, 'date', ?3), ?3, ?4, ?4)",
                        )
                        .unwrap();
                    let mut k = tx
                        .prepare("INSERT INTO sync_known VALUES ('s', 'entries', ?1, ?2, ?2, 'h')")
                        .unwrap();
                    for i in 0..n {
                        // Identifiers in another order than the rows, as UUIDs are.
                        let mixed = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        let ident = format!("{mixed:016x}-{i:08}");
                        let ms = 1_700_000_000_000 + i;
                        doc.execute(params![format!("{i:024x}"), ident, ms - 5, ms])
                            .unwrap();
                        k.execute(params![ident, ms]).unwrap();
                    }
                }
                tx.commit().unwrap();
            }
            // As a reader thread's connection (store/readers.rs): read-only, its page cache.
            let conn =
                Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .unwrap();
            conn.pragma_update(None, "cache_size", crate::store::READER_CACHE_KIB)
                .unwrap();
            let runs: [(&str, i64); 2] = [("all", 0), ("last 1000", 1_700_000_000_000 + n - 1001)];
            for (what, since) in runs {
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                let before = status_kb("VmRSS:");
                let t = std::time::Instant::now();
                let s = site(&conn, Collection::Entries, since).unwrap();
                let site_ms = t.elapsed().as_millis();
                let t = std::time::Instant::now();
                let k = known(&conn, "s", Collection::Entries, since).unwrap();
                let known_ms = t.elapsed().as_millis();
                let peak = status_kb("VmHWM:");
                assert_eq!(s, k);
                println!(
                    "{n} entries, {what} ({} rows): site {site_ms} ms, sync_known {known_ms} ms, \
                     RSS {before} kB before, peak {peak} kB (+{} kB)",
                    s.count,
                    peak.saturating_sub(before)
                );
            }
        }
    }
}
