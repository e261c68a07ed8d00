//! Forward-only schema versions, recorded in `PRAGMA user_version`. Version 1 is schema.sql;
//! later versions append a step here and never change an earlier one.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Each step takes the database from version `index` to `index + 1`.
const STEPS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("../../migrations/002-srv-modified-in-writes.sql"),
    include_str!("../../migrations/003-entries-sgv.sql"),
    include_str!("../../migrations/004-state-spans.sql"),
    include_str!("../../migrations/005-status-spans.sql"),
    include_str!("../../migrations/006-sync.sql"),
];

pub fn latest_version() -> u32 {
    u32::try_from(STEPS.len()).unwrap_or(u32::MAX)
}

pub fn current_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// A new in-memory database at schema `version` exactly (restore compares a backup's shape
/// against it).
pub fn reference(version: u32) -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    for step in STEPS.iter().take(version as usize) {
        conn.execute_batch(step)?;
    }
    Ok(conn)
}

/// Applies every missing step, each in its own transaction. Refuses a database written by a
/// newer nightlite rather than guess at its shape.
pub fn migrate(conn: &mut Connection) -> Result<u32> {
    let from = current_version(conn)?;
    let latest = latest_version();
    if from > latest {
        return Err(Error::Internal(format!(
            "the database is at schema version {from}, newer than this nightlite understands \
             ({latest}); run a newer nightlite"
        )));
    }
    for (i, step) in STEPS.iter().enumerate().skip(from as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema version");
    }
    Ok(latest)
}

/// The schema at the latest version as SQL: every table, index, trigger and view as SQLite
/// keeps it, one statement each, in name order (docs/schema-current.sql holds it, checked by a
/// test, so the current shape can be read without replaying the migrations).
pub fn dump_latest() -> Result<String> {
    let conn = reference(latest_version())?;
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' \
         ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, tbl_name, name",
    )?;
    let statements = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = format!(
        "-- nightlite schema version {}: the shape a database has after schema.sql and every\n\
         -- step in migrations/ (src/store/migrate.rs). Generated, not applied: schema.sql and\n\
         -- migrations/ are what runs. A test compares this file with the schema the steps make;\n\
         -- after adding a step, regenerate it with\n\
         --   NIGHTLITE_WRITE_SCHEMA=1 cargo test --lib schema_dump\n\
         -- Column meanings: the header of schema.sql and the migrations' headers.\n",
        latest_version()
    );
    for sql in statements {
        out.push('\n');
        out.push_str(&sql);
        out.push_str(";\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_dump_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema-current.sql");
        let dump = dump_latest().unwrap();
        if std::env::var_os("NIGHTLITE_WRITE_SCHEMA").is_some() {
            std::fs::write(path, &dump).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == dump,
            "docs/schema-current.sql differs from the schema the migrations make; regenerate \
             it: NIGHTLITE_WRITE_SCHEMA=1 cargo test --lib schema_dump"
        );
    }

    #[test]
    fn fresh_database_reaches_latest_and_stays() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(current_version(&c).unwrap(), 0);
        migrate(&mut c).unwrap();
        assert_eq!(current_version(&c).unwrap(), latest_version());
        // A second start applies nothing and keeps the data.
        c.execute(
            "INSERT INTO entries (id, doc, mills, srv_created) VALUES ('a', '{}', 1, 1)",
            [],
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn every_earlier_version_upgrades() {
        for start in 0..latest_version() {
            let mut c = Connection::open_in_memory().unwrap();
            for (i, step) in STEPS.iter().enumerate().take(start as usize) {
                c.execute_batch(step).unwrap();
                c.pragma_update(None, "user_version", i + 1).unwrap();
            }
            if start >= 1 {
                c.execute(
                    "INSERT INTO entries (id, doc, mills, srv_created) VALUES ('a', '{}', 1, 1)",
                    [],
                )
                .unwrap();
            }
            migrate(&mut c).unwrap();
            assert_eq!(current_version(&c).unwrap(), latest_version());
            let n: i64 = c
                .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                n,
                i64::from(start >= 1),
                "rows survive from version {start}"
            );
            assert!(triggers(&c).is_empty(), "from version {start}");
        }
    }

    #[test]
    fn newer_database_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(migrate(&mut c).is_err());
    }

    fn triggers(c: &Connection) -> Vec<String> {
        c.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn srv_modified(c: &Connection, table: &str) -> Vec<(String, i64, i64)> {
        c.prepare(&format!(
            "SELECT id, srv_created, srv_modified FROM {table} ORDER BY srv_modified"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Every write path sets srv_modified itself (schema version 2 has no triggers): strictly
    /// increasing in write order, srv_created the first one, many rows deleted at once each
    /// getting their own.
    #[test]
    fn srv_modified_strictly_increases_on_insert_update_and_delete() {
        use crate::store::{self, query::SqlFilter, upsert, Collection};
        use serde_json::{json, Map, Value};
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        assert!(triggers(&c).is_empty(), "{:?}", triggers(&c));
        let coll = Collection::Treatments;
        let doc = |n: i64| -> Map<String, Value> {
            let Value::Object(m) = json!({ "n": n }) else {
                unreachable!()
            };
            m
        };
        let mut ids = vec![];
        for i in 0..5 {
            let (id, created, modified) =
                upsert::insert_row(&c, coll, None, &doc(i), 1, 0, false).unwrap();
            assert_eq!(created, modified, "srv_created is the first srv_modified");
            ids.push(id);
        }
        let (_, m) = upsert::update_row(&c, coll, 1, &doc(9), 1).unwrap();
        let rows = srv_modified(&c, "treatments");
        assert!(rows.windows(2).all(|w| w[0].2 < w[1].2), "{rows:?}");
        let last = rows.last().unwrap();
        assert_eq!(
            (&last.0, last.2),
            (&ids[0], m),
            "the updated row is the newest"
        );
        assert!(last.1 < last.2, "srv_created stays: {rows:?}");
        assert!(rows.iter().all(|r| r.1 > 1_600_000_000_000), "{rows:?}");
        // Socket.IO's dbUpdate goes through update_row as well.
        assert!(store::merge_fields(&c, coll, &ids[1], &doc(7), &[]).unwrap());
        assert_eq!(srv_modified(&c, "treatments").last().unwrap().0, ids[1]);
        // One statement deleting four rows: four new, distinct, increasing values after the
        // previous newest.
        let before = srv_modified(&c, "treatments").last().unwrap().2;
        let all = SqlFilter {
            sql: "seq > 1".into(),
            params: vec![],
        };
        assert_eq!(store::soft_delete(&c, coll, &all).unwrap(), 4);
        let rows = srv_modified(&c, "treatments");
        assert!(rows.windows(2).all(|w| w[0].2 < w[1].2), "{rows:?}");
        let deleted: Vec<i64> = rows.iter().filter(|r| r.2 > before).map(|r| r.2).collect();
        assert_eq!(deleted.len(), 4, "{rows:?}");
        // Deleting nothing bumps nothing.
        assert_eq!(store::soft_delete(&c, coll, &all).unwrap(), 0);
        assert_eq!(srv_modified(&c, "treatments"), rows);
    }

    /// A version 1 database (triggers set srv_modified) keeps its rows and their srv_modified
    /// when upgraded, loses the triggers, and later writes continue after its newest value.
    #[test]
    fn version_1_data_upgrades_and_history_continues() {
        use crate::store::{upsert, Collection};
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(STEPS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        // Far in the future, so the next write must continue from it rather than the clock.
        let future = 4_000_000_000_000_i64;
        c.execute_batch(&format!(
            "INSERT INTO entries (id, doc, mills, srv_created) VALUES ('a', '{{}}', 1, 1);
             UPDATE entries SET srv_modified = {future} WHERE id = 'a';"
        ))
        .unwrap();
        assert_eq!(triggers(&c).len(), 14);
        let v1_rows = srv_modified(&c, "entries");
        // Version 1's update trigger fires on doc and is_valid only, so this value stands.
        assert_eq!(v1_rows[0].2, future);
        migrate(&mut c).unwrap();
        assert!(triggers(&c).is_empty());
        assert_eq!(srv_modified(&c, "entries"), v1_rows);
        let doc = serde_json::Map::new();
        let (_, created, m) =
            upsert::insert_row(&c, Collection::Entries, None, &doc, 2, 0, false).unwrap();
        assert_eq!((created, m), (future + 1, future + 1));
    }
}
