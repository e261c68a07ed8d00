//! Storage ceilings measured in the same run as the server:
//! - `raw`: rusqlite inserting the very rows the server would store (same schema and indexes,
//!   the server's own INSERT for srv_modified, WAL, synchronous=FULL), N documents per
//!   transaction; only the SQLite work is timed. This is the storage limit.
//! - `library`: nightlite's own store code without HTTP: the same request body parsed, every
//!   document prepared and upserted (`store::upsert_all`) in one transaction per request. The
//!   gap between `raw` and `library` is the store's per-document work (identity look-ups,
//!   reading back server fields); the gap between `library` and the server is HTTP, routing,
//!   auth, the reply and the writer hand-off.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nightlite::store::upsert::Merge;
use nightlite::store::Collection;
use rusqlite::{params, Connection};

use super::docs;
use super::stats::Phase;
use super::Res;

fn open(dir: &Path, synchronous: &str) -> Res<Connection> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut conn = Connection::open(dir.join(super::seed::DB_FILE))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    nightlite::store::migrate::migrate(&mut conn)?;
    Ok(conn)
}

/// A variant of the raw ceiling. The default is the server's own setting; the others are
/// diagnostics that show what each part of the schema and durability setting costs.
#[derive(Clone, Copy)]
pub struct RawOpts {
    pub per_txn: usize,
    pub synchronous: &'static str,
    /// Recreate schema version 1's srv_modified triggers (what setting srv_modified cost before
    /// the INSERT wrote it itself).
    pub v1_triggers: bool,
    /// Keep the non-unique secondary indexes of entries (all but srv_modified's, which the
    /// INSERT itself needs).
    pub secondary_indexes: bool,
    /// Keep the unique index on the (random, UUID v5) identifier.
    pub identifier_index: bool,
    /// Put the database on /dev/shm (memory): what is left is CPU, not the disk.
    pub tmpfs: bool,
}

impl RawOpts {
    pub fn server(per_txn: usize) -> RawOpts {
        RawOpts {
            per_txn,
            synchronous: "FULL",
            v1_triggers: false,
            secondary_indexes: true,
            identifier_index: true,
            tmpfs: false,
        }
    }

    fn name(&self) -> String {
        let mut n = format!("raw rusqlite, {} per transaction", self.per_txn);
        if self.synchronous != "FULL" {
            n.push_str(&format!(", synchronous={}", self.synchronous));
        }
        if self.v1_triggers {
            n.push_str(", schema v1's srv_modified triggers");
        }
        if !self.secondary_indexes {
            n.push_str(", no secondary indexes but srv_modified's");
        }
        if !self.identifier_index {
            n.push_str(", no identifier index");
        }
        if self.tmpfs {
            n.push_str(", on tmpfs");
        }
        n
    }
}

/// Raw inserts of `opts.per_txn` entries per transaction for `secs`.
pub fn raw(dir: &Path, secs: f64, opts: RawOpts, dates: &AtomicU64, base_ms: i64) -> Res<Phase> {
    let per_txn = opts.per_txn;
    let shm = Path::new("/dev/shm").join(format!("nightlite-bench-{}", std::process::id()));
    let dir = if opts.tmpfs { shm.as_path() } else { dir };
    let conn = open(dir, opts.synchronous)?;
    if opts.v1_triggers {
        // As schema.sql (version 1) had them.
        conn.execute_batch(
            "CREATE TRIGGER entries_srv_modified_insert AFTER INSERT ON entries
             BEGIN
                 UPDATE entries SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
                     (SELECT coalesce(max(srv_modified), 0) FROM entries) + 1)
                 WHERE seq = NEW.seq;
                 UPDATE entries SET srv_created = srv_modified WHERE seq = NEW.seq;
             END;
             CREATE TRIGGER entries_srv_modified_update AFTER UPDATE OF doc, is_valid ON entries
             BEGIN
                 UPDATE entries SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
                     (SELECT coalesce(max(srv_modified), 0) FROM entries) + 1)
                 WHERE seq = NEW.seq;
             END;",
        )?;
    }
    if !opts.secondary_indexes {
        conn.execute_batch(
            // entries_srv_modified stays: every INSERT reads max(srv_modified) through it.
            "DROP INDEX entries_mills; \
             DROP INDEX entries_date_type; DROP INDEX entries_type_mills; \
             DROP INDEX entries_device_mills; DROP INDEX entries_sgv;",
        )?;
    }
    if !opts.identifier_index {
        conn.execute_batch("DROP INDEX entries_identifier;")?;
    }
    // The server's statement (src/store/upsert.rs insert_row), without RETURNING.
    let next = nightlite::store::upsert::next_modified("entries");
    let sgv = nightlite::store::upsert::entry_sgv("?2");
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO entries (id, doc, mills, srv_created, srv_modified, sgv) \
         VALUES (?1, ?2, ?3, {next}, {next}, {sgv})"
    ))?;
    let cpu0 = super::server::cpu_ticks(std::process::id());
    let mut lat = Vec::new();
    let mut timed = Duration::ZERO;
    let wall = Instant::now();
    let mut client = String::new();
    while timed.as_secs_f64() < secs && wall.elapsed().as_secs_f64() < secs * 4.0 {
        let mut rows = Vec::with_capacity(per_txn);
        let now = nightlite::dates::now_ms();
        for _ in 0..per_txn {
            let n = dates.fetch_add(1, Ordering::Relaxed);
            client.clear();
            docs::entry_json(&mut client, base_ms + (n as i64) * 1000, n);
            rows.extend(docs::stored(Collection::Entries, &client, now)?);
        }
        let ids: Vec<String> = rows.iter().map(|_| nightlite::ids::object_id()).collect();
        let t0 = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for (row, id) in rows.iter().zip(&ids) {
            stmt.execute(params![id, row.doc, row.mills])?;
        }
        conn.execute_batch("COMMIT")?;
        let dt = t0.elapsed();
        timed += dt;
        lat.push(u32::try_from(dt.as_micros()).unwrap_or(u32::MAX));
    }
    let mut p = Phase::from_latencies(&opts.name(), 1, timed.as_secs_f64(), lat);
    p.docs = p.requests * per_txn as u64;
    p.docs_per_sec = super::stats::round(p.docs as f64 / timed.as_secs_f64().max(1e-9), 1);
    p.note = Some("latency is per transaction; only the SQLite calls are timed".into());
    p.client_cpu = cpu_per_sec(cpu0, wall);
    drop(stmt);
    drop(conn);
    if opts.tmpfs {
        std::fs::remove_dir_all(&shm)?;
    }
    Ok(p)
}

/// nightlite's store without HTTP: parse the same body, prepare, upsert in a savepoint inside
/// the transaction (as the writer runs each job), commit, serialise the reply. The writer's
/// temp_store=MEMORY; `temp_store_file` is a diagnostic: the savepoint's sub-journal in a
/// temporary file, as before the writer set it.
pub fn library(
    dir: &Path,
    secs: f64,
    per_txn: usize,
    temp_store_file: bool,
    dates: &AtomicU64,
    base_ms: i64,
) -> Res<Phase> {
    let conn = open(dir, "FULL")?;
    if !temp_store_file {
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    let cpu0 = super::server::cpu_ticks(std::process::id());
    let wall = Instant::now();
    let mut lat = Vec::new();
    let mut timed = Duration::ZERO;
    let mut body = String::new();
    while timed.as_secs_f64() < secs {
        body.clear();
        body.push('[');
        for k in 0..per_txn {
            if k > 0 {
                body.push(',');
            }
            let n = dates.fetch_add(1, Ordering::Relaxed);
            docs::entry_json(&mut body, base_ms + (n as i64) * 1000, n);
        }
        body.push(']');
        let t0 = Instant::now();
        let now = nightlite::dates::now_ms();
        let value: serde_json::Value = serde_json::from_str(&body)?;
        let mut prepared = Vec::with_capacity(per_txn);
        if let serde_json::Value::Array(items) = value {
            for (i, item) in items.into_iter().enumerate() {
                prepared.extend(nightlite::store::prepare::prepare(
                    Collection::Entries,
                    item,
                    &format!("entries[{i}]"),
                    now,
                )?);
            }
        }
        conn.execute_batch("BEGIN IMMEDIATE; SAVEPOINT job")?;
        let written = nightlite::store::upsert_all(
            &conn,
            Collection::Entries,
            prepared,
            Merge::Shallow,
            now,
        )?;
        conn.execute_batch("RELEASE job; COMMIT")?;
        // The reply the server would build from the written documents.
        let reply: Vec<serde_json::Value> = written
            .iter()
            .map(|w| {
                let mut m = serde_json::Map::new();
                m.insert("_id".into(), serde_json::Value::String(w.id.clone()));
                m.extend(w.doc.clone());
                serde_json::Value::Object(m)
            })
            .collect();
        let _ = serde_json::to_vec(&reply)?;
        let dt = t0.elapsed();
        timed += dt;
        lat.push(u32::try_from(dt.as_micros()).unwrap_or(u32::MAX));
    }
    let mut p = Phase::from_latencies(
        &format!(
            "nightlite store without HTTP, {per_txn} per transaction{}",
            if temp_store_file {
                ", temp_store=DEFAULT (a file)"
            } else {
                ""
            }
        ),
        1,
        timed.as_secs_f64(),
        lat,
    );
    p.docs = p.requests * per_txn as u64;
    p.docs_per_sec = super::stats::round(p.docs as f64 / timed.as_secs_f64().max(1e-9), 1);
    p.note = Some(
        "parse + prepare + upsert_all + commit + reply serialisation, one thread; latency per \
         transaction"
            .into(),
    );
    p.client_cpu = cpu_per_sec(cpu0, wall);
    Ok(p)
}

/// CPU seconds this process used per wall second since `cpu0` and `wall` (generation of the
/// documents included): near 1.0 means the single inserting thread was CPU-bound.
fn cpu_per_sec(cpu0: Option<u64>, wall: Instant) -> Option<f64> {
    let used = super::server::cpu_ticks(std::process::id())?.saturating_sub(cpu0?);
    Some(super::stats::round(
        used as f64 / super::server::TICKS_PER_SEC / wall.elapsed().as_secs_f64().max(1e-9),
        2,
    ))
}

/// How a read's reply is produced, in-process on one thread (no HTTP), for a read diagnostic.
#[derive(Clone, Copy)]
pub enum ReadPath {
    /// The server's path before the splice: `store::list` (each stored document parsed into a
    /// map), v1 shape (`_id` first, every field cloned), serialised.
    Parse,
    /// What the server does: `store::list_raw` + `store::v1json::list` (each stored text
    /// checked, then spliced).
    Server,
    /// The stored JSON text spliced as is, unchecked: `{"_id":"…",` + the document without
    /// its `{`. The lower bound of the server's path.
    Splice,
}

/// Runs one endpoint's list query on a seeded database for `secs` and times each reply.
pub fn read_path(
    db: &Path,
    label: &str,
    coll: Collection,
    query: &str,
    path: ReadPath,
    secs: f64,
) -> Res<Phase> {
    use nightlite::store::query::{self, ListRequest};
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tree = nightlite::qs::parse(query)?;
    let null = serde_json::Value::Null;
    let req = ListRequest {
        find: tree.get("find").unwrap_or(&null),
        sort: tree.get("sort").unwrap_or(&null),
        count: nightlite::qs::scalar(&tree, "count"),
        default_count: 10,
        window: true,
        extra: None,
    };
    let q = query::build_list(coll, &req, nightlite::dates::now_ms())?;
    // The same SQL store::list runs, for the splice variant.
    let sql = format!(
        "SELECT id, doc FROM {} WHERE is_valid = 1 AND ({}) ORDER BY mills DESC, seq DESC LIMIT ?",
        coll.table(),
        q.filter.sql
    );
    let mut params = q.filter.params.clone();
    params.push(rusqlite::types::Value::Integer(
        i64::try_from(q.limit).unwrap_or(1),
    ));
    let reply = |path: ReadPath| -> Res<Vec<u8>> {
        Ok(match path {
            ReadPath::Parse => {
                let docs = nightlite::store::list(&conn, coll, &q)?;
                let v: Vec<serde_json::Value> = docs.iter().map(|d| d.to_v1()).collect();
                serde_json::to_vec(&v)?
            }
            ReadPath::Server => {
                let docs = nightlite::store::list_raw(&conn, coll, &q)?;
                nightlite::store::v1json::list(docs, None)?
                    .body
                    .into_bytes()
            }
            ReadPath::Splice => {
                let mut out = Vec::with_capacity(128 * 1024);
                out.push(b'[');
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut first = true;
                while let Some(row) = rows.next()? {
                    let id = row.get_ref(0)?.as_str()?;
                    let doc = row.get_ref(1)?.as_str()?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(b"{\"_id\":\"");
                    out.extend_from_slice(id.as_bytes());
                    out.push(b'"');
                    if doc.len() > 2 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&doc.as_bytes()[1..]);
                }
                out.push(b']');
                out
            }
        })
    };
    // Each path must give the very bytes of the parse path, or it proves nothing.
    let identical = reply(ReadPath::Parse)? == reply(path)?;
    let mut lat = vec![];
    let t0 = Instant::now();
    let mut bytes = 0usize;
    while t0.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        bytes = reply(path)?.len();
        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    let how = match path {
        ReadPath::Parse => "store::list + to_v1 + serialise (the earlier path)",
        ReadPath::Server => "store::list_raw + v1json::list (the server's path)",
        ReadPath::Splice => "stored JSON text spliced unchecked (no parse)",
    };
    let mut p = Phase::from_latencies(
        &format!("{label}: {how}"),
        1,
        t0.elapsed().as_secs_f64(),
        lat,
    );
    p.note = Some(format!(
        "{query}: {bytes} bytes per reply, one thread; output identical to the \
         parse path's: {identical}"
    ));
    Ok(p)
}
