//! Comparing the local database with another site's documents for `nightlite sync
//! --direction check` (docs/sync.md), without holding either side in memory: the other
//! side's rows (identity, content hash, modification time) go into a TEMP table of a
//! read-only connection (TEMP on disk, not in memory, so a large site does not grow the
//! process), and one SQL statement per collection compares them with the local table.
//!
//! Identity: a document's `identifier` when it has one, else its `_id`. Content: a SHA-256
//! over the document without the fields each server sets itself (`_id`, `srvCreated`,
//! `srvModified`, `isValid`), object keys sorted, so the same document reads the same on both
//! sides whatever order its fields were written in ([`content_hash`], also an SQL function
//! here for the local side). Deleted documents (isValid false) are left out on both sides:
//! API v1, which the other side is read through, does not list them.

use std::path::Path;
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OpenFlags};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Collection, DB_FILE};
use crate::error::{Error, Result};

/// Fields each server sets itself: left out of the content hash.
const SERVER_FIELDS: [&str; 4] = ["_id", "srvCreated", "srvModified", "isValid"];

/// One remote document as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub identity: String,
    pub hash: String,
    /// The remote's srvModified, when it shows one (API v1 of Nightscout shows it only for
    /// documents written through v3; nightlite's v1 never).
    pub modified: Option<i64>,
}

/// How one collection compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Here and not there.
    pub only_local: u64,
    /// There and not here.
    pub only_remote: u64,
    /// On both sides with different content: the local copy modified later.
    pub newer_local: u64,
    /// ... the remote copy modified later.
    pub newer_remote: u64,
    /// ... and the remote shows no modification time to tell which is newer.
    pub undecided: u64,
    /// On both sides with the same content.
    pub same: u64,
}

impl Tally {
    pub fn differ(&self) -> u64 {
        self.newer_local + self.newer_remote + self.undecided
    }

    pub fn in_sync(&self) -> bool {
        self.only_local == 0 && self.only_remote == 0 && self.differ() == 0
    }
}

/// A read-only connection to the local database with a TEMP table of remote rows.
pub struct Compare {
    conn: Connection,
}

impl Compare {
    /// Opens the database in `data_dir` read-only (safe while the server runs, as `nightlite
    /// backup` is); nothing is ever written to it.
    pub fn open(data_dir: &Path) -> Result<Compare> {
        let path = data_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::Internal(format!(
                "no database at {}",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The remote rows spill to a temporary file rather than the heap.
        conn.pragma_update(None, "temp_store", "FILE")?;
        conn.create_scalar_function(
            "content_hash",
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let text = ctx.get::<String>(0)?;
                let doc: Value = serde_json::from_str(&text)
                    .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
                Ok(content_hash(&doc))
            },
        )?;
        conn.execute_batch(
            "CREATE TEMP TABLE remote_rows (
                 coll TEXT NOT NULL,
                 identity TEXT NOT NULL,
                 hash TEXT NOT NULL,
                 modified INTEGER,
                 PRIMARY KEY (coll, identity)
             ) WITHOUT ROWID",
        )?;
        Ok(Compare { conn })
    }

    /// Adds one page of remote rows of `coll`; a row whose identity is already there
    /// replaces it (a page boundary read twice).
    pub fn add(&self, coll: Collection, rows: &[Row]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO temp.remote_rows (coll, identity, hash, modified)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in rows {
                stmt.execute(params![coll.table(), r.identity, r.hash, r.modified])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the remote modification time of rows of `coll` already added (a second read of
    /// the site, through API v3, where v1 showed none).
    pub fn set_modified(&self, coll: Collection, times: &[(String, i64)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE temp.remote_rows SET modified = ?3 WHERE coll = ?1 AND identity = ?2",
            )?;
            for (identity, ms) in times {
                stmt.execute(params![coll.table(), identity, ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How the local `coll` compares with the remote rows added for it.
    pub fn tally(&self, coll: Collection) -> Result<Tally> {
        let t = coll.table();
        // Each local row looks its identity up in the remote rows' primary key (one search
        // per row, never a scan of them per row) and gets one kind, its document hashed once
        // (in the CASE); the kinds are counted. What was found tells how many remote rows are
        // only there: identities are unique on each side (the primary key there, unique `id`
        // and `identifier` here).
        let sql = tally_sql(t);
        let mut tally = Tally::default();
        let mut local = 0;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([t])?;
        while let Some(row) = rows.next()? {
            let n = row.get::<_, i64>(1)? as u64;
            local += n;
            match row.get::<_, i64>(0)? {
                0 => tally.only_local = n,
                1 => tally.same = n,
                2 => tally.undecided = n,
                3 => tally.newer_local = n,
                _ => tally.newer_remote = n,
            }
        }
        let remote: i64 = self.conn.query_row(
            "SELECT count(*) FROM temp.remote_rows WHERE coll = ?1",
            [t],
            |r| r.get(0),
        )?;
        let matched = local - tally.only_local;
        tally.only_remote = (remote as u64).saturating_sub(matched);
        Ok(tally)
    }
}

/// The count of local rows of table `t` by kind: 0 only here, 1 the same, 2 differ
/// undecided, 3 newer here, 4 newer there.
fn tally_sql(t: &str) -> String {
    format!(
        "SELECT CASE
                    WHEN r.identity IS NULL THEN 0
                    WHEN r.hash = content_hash(l.doc) THEN 1
                    WHEN r.modified IS NULL OR r.modified = l.srv_modified THEN 2
                    WHEN l.srv_modified > r.modified THEN 3
                    ELSE 4
                END AS kind,
                count(*)
         FROM main.{t} AS l
         LEFT JOIN temp.remote_rows AS r
             ON r.coll = ?1 AND r.identity = coalesce(l.identifier, l.id)
         WHERE l.is_valid = 1
         GROUP BY kind"
    )
}

/// A document's identity: `identifier`, else `_id`.
pub fn identity(doc: &Value) -> Option<&str> {
    doc.get("identifier")
        .and_then(Value::as_str)
        .or_else(|| doc.get("_id").and_then(Value::as_str))
}

/// A remote document's row (None when it has no identity).
pub fn row(doc: &Value) -> Option<Row> {
    Some(Row {
        identity: identity(doc)?.to_string(),
        hash: content_hash(doc),
        modified: doc.get("srvModified").and_then(Value::as_i64),
    })
}

/// SHA-256 (hex) of `doc` without [`SERVER_FIELDS`] at its top level, keys sorted at every
/// level.
pub fn content_hash(doc: &Value) -> String {
    let mut h = Sha256::new();
    match doc {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o
                .keys()
                .filter(|k| !SERVER_FIELDS.contains(&k.as_str()))
                .collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                feed(&mut h, &Value::String(k.clone()));
                h.update(b":");
                feed(&mut h, &o[k.as_str()]);
                h.update(b",");
            }
            h.update(b"}");
        }
        other => feed(&mut h, other),
    }
    crate::ids::hex(&h.finalize())
}

fn feed(h: &mut Sha256, v: &Value) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                feed(h, &Value::String(k.clone()));
                h.update(b":");
                feed(h, &o[k.as_str()]);
                h.update(b",");
            }
            h.update(b"}");
        }
        Value::Array(a) => {
            h.update(b"[");
            for x in a {
                feed(h, x);
                h.update(b",");
            }
            h.update(b"]");
        }
        other => h.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_comparison_searches_the_remote_rows_by_key_and_counts_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::store::Store::open(dir.path()).unwrap());
        let c = Compare::open(dir.path()).unwrap();
        // One search of the remote rows per local row, never a scan of them (quadratic).
        let plan: Vec<String> = c
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", tally_sql("treatments")))
            .unwrap()
            .query_map(["treatments"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|l| l.contains("SEARCH r USING PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.starts_with("SCAN r")), "{plan:?}");
        let rows = [row(&json!({"_id": "x", "a": 1})).unwrap()];
        c.add(Collection::Treatments, &rows).unwrap();
        let t = c.tally(Collection::Treatments).unwrap();
        assert_eq!((t.only_remote, t.only_local, t.same), (1, 0, 0));
        assert!(c.tally(Collection::Entries).unwrap().in_sync());
    }

    #[test]
    fn the_hash_ignores_key_order_and_server_fields_but_not_content() {
        let a = json!({"_id": "a", "sgv": 1, "x": {"b": 2, "a": 1}, "srvModified": 5});
        let b = json!({"x": {"a": 1, "b": 2}, "sgv": 1, "_id": "b", "isValid": true});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"sgv": 2, "x": {"a": 1, "b": 2}}))
        );
        let r = row(&json!({"_id": "i", "identifier": "u", "srvModified": 7})).unwrap();
        assert_eq!((r.identity.as_str(), r.modified), ("u", Some(7)));
        assert_eq!(row(&json!({"_id": "i"})).unwrap().identity, "i");
        assert!(row(&json!({"sgv": 1})).is_none());
    }
}
