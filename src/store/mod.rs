//! Storage: the only code that speaks SQL. One writer thread with group commit, a fixed set of
//! reader threads with a read-only connection each, the schema, identity and the find language.

pub mod auth;
pub mod backup;
pub mod changes;
pub mod collection;
pub mod compact;
pub mod compare;
pub mod disk;
pub mod lock;
pub mod migrate;
pub mod pages;
pub mod prepare;
pub mod profiles;
pub mod query;
mod readers;
pub mod recent;
pub mod retention;
pub mod spans;
pub(crate) mod sqlfn;
pub mod stats;
pub mod sync;
pub mod sync_digest;
pub mod sync_runs;
pub mod treatment_math;
pub mod upsert;
pub mod v1json;
pub mod v3;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

pub use collection::Collection;
use query::SqlFilter;

use crate::error::Result;

pub(crate) const DB_FILE: &str = "nightlite.sqlite3";
/// Reader threads, each with its own read-only connection ([`readers`]).
pub const READERS: usize = 4;

/// SQLite page cache per connection, as `PRAGMA cache_size` takes it (negative: KiB). Each
/// connection's cache fills up to its size as the database outgrows it and stays full, so
/// these bound that part of RSS: 2 MB for the writer (SQLite's default; new rows touch the
/// recent pages of every index) and 512 KB for each reader (reads of recent data; the rest
/// comes from the OS cache). With the default 2 MB everywhere, RSS rose by up to 10 MB in the
/// first minutes under load (docs/PERFORMANCE.md, "Load soak").
const WRITER_CACHE_KIB: i64 = -2000;
const READER_CACHE_KIB: i64 = -512;
/// A v1 list never returns more than this many documents (Mongo's limit(0) means "all").
pub const MAX_LIST: usize = 1_000_000;

/// A stored document with its server-owned fields.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    pub seq: i64,
    pub id: String,
    pub doc: Map<String, Value>,
    pub mills: i64,
    pub srv_created: i64,
    pub srv_modified: i64,
    pub is_valid: bool,
}

impl StoredDoc {
    pub(crate) fn from_row(r: &Row) -> rusqlite::Result<RawDoc> {
        Self::from_row_at(r, 0)
    }

    /// The [`COLUMNS`] of a row, starting at column `at`.
    pub(crate) fn from_row_at(r: &Row, at: usize) -> rusqlite::Result<RawDoc> {
        Ok(RawDoc {
            seq: r.get(at)?,
            id: r.get(at + 1)?,
            doc: r.get(at + 2)?,
            mills: r.get(at + 3)?,
            srv_created: r.get(at + 4)?,
            srv_modified: r.get(at + 5)?,
            is_valid: r.get(at + 6)?,
        })
    }

    pub(crate) fn parse(row: RawDoc) -> Result<StoredDoc> {
        Ok(StoredDoc {
            seq: row.seq,
            id: row.id,
            doc: serde_json::from_str(&row.doc)?,
            mills: row.mills,
            srv_created: row.srv_created,
            srv_modified: row.srv_modified,
            is_valid: row.is_valid,
        })
    }

    /// The document as API v1 returns it: `_id` first, then every stored field.
    pub fn to_v1(&self) -> Value {
        v1_view(&self.id, &self.doc)
    }
}

/// A document as API v1 shows it: `_id` first, then the stored fields.
pub fn v1_view(id: &str, doc: &Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(doc.len() + 1);
    out.insert("_id".into(), Value::String(id.to_string()));
    for (k, v) in doc {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// A row before its JSON is parsed (parsing happens outside rusqlite's row callback; v1 JSON
/// lists splice the text without parsing it, see [`v1json`]).
#[derive(Debug, Clone)]
pub struct RawDoc {
    pub seq: i64,
    pub id: String,
    pub doc: String,
    pub mills: i64,
    pub srv_created: i64,
    pub srv_modified: i64,
    pub is_valid: bool,
}

pub(crate) const COLUMNS: &str = "seq, id, doc, mills, srv_created, srv_modified, is_valid";

/// A v1 list query, already translated.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: SqlFilter,
    pub order: Option<SqlFilter>,
    pub limit: usize,
    pub skip: usize,
    /// Soft-deleted documents too (sync history).
    pub include_deleted: bool,
}

#[derive(Clone)]
pub struct Store {
    writer: writer::Writer,
    bus: changes::Bus,
    readers: readers::Readers,
    path: PathBuf,
    disk: std::sync::Arc<disk::DiskGuard>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, brings its schema up to date and
    /// starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL: readers never block the writer; FULL: a write is on disk before it is answered.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The per-job SAVEPOINT's statement sub-journal and the change bus' TEMP table and
        // triggers go to memory, not a temporary file: a pwrite per page first touched halved
        // the writer's speed (docs/PERFORMANCE.md). Set before the writer creates its TEMP
        // objects, since changing it drops them. Durability is untouched: the sub-journal only
        // serves rolling back a failed job inside the open transaction.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        sqlfn::register(&conn)?;
        migrate::migrate(&mut conn)?;
        if !spans::built(&conn)? {
            // Once, after the upgrade that added spans: derive them from what is stored.
            let tx = conn.transaction()?;
            let n = spans::rebuild(&tx)?;
            tx.commit()?;
            tracing::info!(
                spans = n,
                "derived the state spans of the stored treatments"
            );
        }
        let readers = readers::Readers::start(&path)?;
        let bus = changes::new_bus();
        Ok(Store {
            writer: writer::Writer::start(conn, bus.clone())?,
            bus,
            readers,
            path,
            disk: std::sync::Arc::new(disk::DiskGuard::new(data_dir, None)),
        })
    }

    /// Debug builds' tests: pretend the disk has `free` bytes free (see [`disk`]).
    pub fn with_fake_disk_free(mut self, free: Option<u64>) -> Store {
        if free.is_some() {
            if let Some(dir) = self.path.parent() {
                self.disk = std::sync::Arc::new(disk::DiskGuard::new(dir, free));
            }
        }
        self
    }

    /// Free space where the database lives.
    pub fn disk(&self) -> &disk::DiskGuard {
        &self.disk
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the database and its write-ahead log take (see [`disk::db_size`]).
    pub fn db_size(&self) -> u64 {
        disk::db_size(&self.path)
    }

    /// Every commit's changes from now on (see [`changes`]).
    pub fn subscribe(
        &self,
    ) -> tokio::sync::broadcast::Receiver<std::sync::Arc<changes::ChangeSet>> {
        self.bus.subscribe()
    }

    /// Runs `f` on the next free read-only connection, on its reader thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.read(f).await
    }

    /// Runs `f` in the writer's next group transaction; returns after the commit. Refused
    /// (507) while the disk is nearly full.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.disk.check_writable()?;
        self.writer.write(f).await
    }

    /// As [`Store::write`], also on a nearly full disk: for deletes and retention, which free
    /// space rather than take it.
    pub async fn write_freeing<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(f).await
    }
}

/// A private in-memory database with nightlite's schema and SQL functions, as every server
/// connection has them: for the fuzz targets and unit tests that run real statements.
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    migrate::migrate(&mut conn)?;
    sqlfn::register(&conn)?;
    Ok(conn)
}

/// Live documents matching `q`, in its order (default: newest first by the time field).
pub fn list(conn: &Connection, coll: Collection, q: &ListQuery) -> Result<Vec<StoredDoc>> {
    list_raw(conn, coll, q)?
        .into_iter()
        .map(StoredDoc::parse)
        .collect()
}

/// As [`list`], the documents still JSON text.
pub fn list_raw(conn: &Connection, coll: Collection, q: &ListQuery) -> Result<Vec<RawDoc>> {
    let (sql, params) = list_sql(coll, q);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), StoredDoc::from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The statement of a list query and its parameters.
pub(crate) fn list_sql(coll: Collection, q: &ListQuery) -> (String, Vec<SqlValue>) {
    let mut params: Vec<SqlValue> = q.filter.params.clone();
    let order = match &q.order {
        Some(o) => {
            params.extend(o.params.iter().cloned());
            format!("{}, seq DESC", o.sql)
        }
        None if coll.default_sort_desc() => "mills DESC, seq DESC".to_string(),
        None => "seq ASC".to_string(),
    };
    params.push(SqlValue::Integer(
        i64::try_from(q.limit.min(MAX_LIST)).unwrap_or(1),
    ));
    params.push(SqlValue::Integer(i64::try_from(q.skip).unwrap_or(0)));
    let live = if q.include_deleted {
        "1"
    } else {
        "is_valid = 1"
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE {live} AND ({}) ORDER BY {order} LIMIT ? OFFSET ?",
        coll.table(),
        q.filter.sql
    );
    (sql, params)
}

/// How many live documents match `filter` (/api/v1/count/:storage/where).
pub fn count_live(conn: &Connection, coll: Collection, filter: &SqlFilter) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE is_valid = 1 AND ({})",
        coll.table(),
        filter.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(
        stmt.query_row(rusqlite::params_from_iter(filter.params.iter()), |r| {
            r.get(0)
        })?,
    )
}

/// Live documents whose time is at or after `since_ms`, newest first, at most `limit`.
pub fn since(
    conn: &Connection,
    coll: Collection,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<StoredDoc>> {
    list(
        conn,
        coll,
        &ListQuery {
            filter: SqlFilter {
                sql: "mills >= ?".into(),
                params: vec![SqlValue::Integer(since_ms)],
            },
            order: None,
            limit,
            skip: 0,
            include_deleted: false,
        },
    )
}

/// The newest live sgv reading: (mg/dl, mills).
pub fn latest_sgv(conn: &Connection) -> Result<Option<(f64, i64)>> {
    let row = conn
        .prepare_cached(
            "SELECT json_extract(doc, '$.sgv'), mills FROM entries
             WHERE is_valid = 1 AND type = 'sgv' ORDER BY mills DESC LIMIT 1",
        )?
        .query_row([], |r| {
            Ok((r.get::<_, Option<f64>>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    Ok(row.and_then(|(sgv, mills)| sgv.map(|s| (s, mills))))
}

/// The time (`mills`) of the newest live document whose `device` is `device`: where a bridge's
/// next fetch starts (src/connect/). Entries have an index on (device, mills).
pub fn newest_of_device(conn: &Connection, coll: Collection, device: &str) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT max(mills) FROM {} WHERE device = ?1 AND is_valid = 1",
        coll.table()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([device], |r| r.get::<_, Option<i64>>(0))?)
}

/// A live document by `_id`, or by identifier when `key` is not an ObjectId, as stored text.
pub fn get_raw(conn: &Connection, coll: Collection, key: &str) -> Result<Option<RawDoc>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE is_valid = 1 AND (id = ?1 OR identifier = ?1) LIMIT 1",
        coll.table()
    );
    let key = if crate::ids::is_object_id(key) {
        key.to_ascii_lowercase()
    } else {
        key.to_string()
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([key], StoredDoc::from_row)
        .optional()?)
}

/// Soft-deletes the live documents matching `filter`: they disappear from every read but stay
/// in sync history with isValid=false. Returns how many.
pub fn soft_delete(conn: &Connection, coll: Collection, filter: &SqlFilter) -> Result<usize> {
    // One statement for many rows: the matching rows and their new srv_modified (the next
    // value, then one more per row in seq order) are computed before any row changes, so each
    // deleted document gets its own strictly increasing srvModified, as history needs.
    let t = coll.table();
    let sql = format!(
        "UPDATE {t} SET is_valid = 0, srv_modified = hit.m FROM (
             SELECT seq, {next} + row_number() OVER (ORDER BY seq) - 1 AS m
             FROM {t} WHERE is_valid = 1 AND ({filter})
         ) AS hit
         WHERE {t}.seq = hit.seq",
        next = upsert::next_modified(t),
        filter = filter.sql
    );
    Ok(conn.execute(&sql, rusqlite::params_from_iter(filter.params.iter()))?)
}

/// Sets (`set`) and removes (`unset`) top-level fields of the live document with this `_id`
/// (Socket.IO's dbUpdate / dbUpdateUnset); false when there is none. Server fields and `_id`
/// cannot be set this way.
pub fn merge_fields(
    conn: &Connection,
    coll: Collection,
    id: &str,
    set: &Map<String, Value>,
    unset: &[String],
) -> Result<bool> {
    let Some(stored) = upsert::find_one(
        conn,
        coll,
        "id = ? AND is_valid = 1",
        &[SqlValue::Text(id.to_ascii_lowercase())],
    )?
    else {
        return Ok(false);
    };
    let mut doc = stored.doc.clone();
    for (k, v) in set {
        if !matches!(k.as_str(), "_id" | "srvCreated" | "srvModified" | "isValid") {
            doc.insert(k.clone(), v.clone());
        }
    }
    for k in unset {
        if k != "identifier" {
            doc.remove(k);
        }
    }
    if doc != stored.doc {
        // A new time moves the document in time-ordered reads too (`mills` files it).
        let mills = match set.get(coll.time_field()) {
            Some(t) => crate::dates::parse_value(t).map_or(stored.mills, |i| i.ms),
            None => stored.mills,
        };
        upsert::update_row(conn, coll, stored.seq, &doc, mills)?;
    }
    Ok(true)
}

/// Upserts a batch in request order; one result per document.
pub fn upsert_all(
    conn: &Connection,
    coll: Collection,
    docs: Vec<prepare::NewDoc>,
    merge: upsert::Merge,
    now: i64,
) -> Result<Vec<upsert::Written>> {
    docs.into_iter()
        .map(|d| upsert::upsert(conn, coll, d, merge, now))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn merge_fields_refiles_a_document_whose_time_changes() {
        let c = open_in_memory().unwrap();
        let coll = Collection::Treatments;
        let doc = object(json!({ "eventType": "Note", "created_at": "2024-01-01T00:00:00.000Z" }));
        let (id, _, _) =
            upsert::insert_row(&c, coll, None, &doc, 1_704_067_200_000, 0, false).unwrap();
        let mills = |c: &Connection| -> i64 {
            c.query_row("SELECT mills FROM treatments WHERE id = ?", [&id], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let notes = object(json!({ "notes": "x" }));
        assert!(merge_fields(&c, coll, &id, &notes, &[]).unwrap());
        assert_eq!(mills(&c), 1_704_067_200_000, "other fields leave the time");
        let moved = object(json!({ "created_at": "2024-01-02T00:00:00.000Z" }));
        assert!(merge_fields(&c, coll, &id, &moved, &[]).unwrap());
        assert_eq!(mills(&c), 1_704_153_600_000);
    }
}
