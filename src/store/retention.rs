//! Retention: documents older than a collection's `*_RETENTION_DAYS` are deleted for good, in
//! small batches so that each batch is one short job for the writer and uploads queue behind
//! it for milliseconds at most. SQLite puts the freed pages on its free list and fills them
//! with new documents before it grows the file, so a database under retention stops growing
//! once it holds the retention window; it does not shrink (that would need a VACUUM, which
//! rewrites the whole file and blocks writes while it runs).

use rusqlite::{params, Connection};

use super::changes;
use super::collection::Collection;
use crate::error::Result;

/// Documents deleted per writer job.
pub const BATCH: usize = 500;
pub const DAY_MS: i64 = 86_400_000;

/// Deletes up to `batch` documents of `coll` whose time is before `cutoff_ms`, oldest first,
/// soft-deleted ones included. Returns how many went; fewer than `batch` means none are left.
pub fn delete_older(
    conn: &Connection,
    coll: Collection,
    cutoff_ms: i64,
    batch: usize,
) -> Result<usize> {
    let t = coll.table();
    let seqs = conn
        .prepare_cached(&format!(
            "SELECT seq FROM {t} WHERE mills < ?1 ORDER BY mills LIMIT ?2"
        ))?
        .query_map(
            params![cutoff_ms, i64::try_from(batch).unwrap_or(i64::MAX)],
            |r| r.get::<_, i64>(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    if seqs.is_empty() {
        return Ok(0);
    }
    let list = serde_json::to_string(&seqs)?;
    let n = conn
        .prepare_cached(&format!(
            "DELETE FROM {t} WHERE seq IN (SELECT value FROM json_each(?1))"
        ))?
        .execute([&list])?;
    // Live clients keep a window of hours; rows leaving after days are not news to them.
    changes::forget(conn, t, &list)?;
    // The spans these rows gave go with them (the writer's upkeep reads the notes just
    // forgotten).
    match coll {
        Collection::Treatments => super::spans::refresh_rows(conn, &seqs, &[])?,
        Collection::DeviceStatus => super::spans::refresh_rows(conn, &[], &seqs)?,
        _ => {}
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(mills: &[i64]) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        changes::install(&c).unwrap();
        for (i, m) in mills.iter().enumerate() {
            let iso = crate::dates::to_iso(*m);
            c.execute(
                "INSERT INTO devicestatus (id, doc, mills, srv_created, srv_modified, is_valid)
                 VALUES (?1, ?2, ?3, 0, 0, ?4)",
                params![
                    format!("{i:024x}"),
                    format!(r#"{{"device":"d","created_at":"{iso}"}}"#),
                    m,
                    i % 2
                ],
            )
            .unwrap();
        }
        changes::clear(&c).unwrap();
        c
    }

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM devicestatus", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn deletes_old_rows_in_batches_and_keeps_newer() {
        let now = 1_700_000_000_000;
        let mut mills: Vec<i64> = (1..=7).map(|d| now - d * 10 * DAY_MS).collect();
        mills.push(now - DAY_MS);
        let c = db_with(&mills);
        let cutoff = now - 5 * DAY_MS;
        assert_eq!(
            delete_older(&c, Collection::DeviceStatus, cutoff, 3).unwrap(),
            3
        );
        assert_eq!(
            delete_older(&c, Collection::DeviceStatus, cutoff, 3).unwrap(),
            3
        );
        assert_eq!(
            delete_older(&c, Collection::DeviceStatus, cutoff, 3).unwrap(),
            1
        );
        assert_eq!(
            delete_older(&c, Collection::DeviceStatus, cutoff, 3).unwrap(),
            0
        );
        assert_eq!(count(&c), 1);
        let left: i64 = c
            .query_row("SELECT mills FROM devicestatus", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, now - DAY_MS);
        // Live clients are not told about housekeeping.
        let notes: i64 = c
            .query_row("SELECT count(*) FROM temp.changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(notes, 0);
    }
}
