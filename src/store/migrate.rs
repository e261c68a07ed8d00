//! Forward-only schema versions, recorded in `PRAGMA user_version`. Version 1 is schema.sql;
//! later versions append a step here and never change an earlier one.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Each step takes the database from version `index` to `index + 1`.
const STEPS: &[&str] = &[include_str!("../../schema.sql")];

pub fn latest_version() -> u32 {
    u32::try_from(STEPS.len()).unwrap_or(u32::MAX)
}

pub fn current_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
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

#[cfg(test)]
mod tests {
    use super::*;

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
            migrate(&mut c).unwrap();
            assert_eq!(current_version(&c).unwrap(), latest_version());
        }
    }

    #[test]
    fn newer_database_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(migrate(&mut c).is_err());
    }

    #[test]
    fn srv_modified_strictly_increases_on_insert_and_update() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        for i in 0..5 {
            c.execute(
                "INSERT INTO treatments (id, doc, mills, srv_created) VALUES (?1, '{}', 1, 1)",
                [format!("id{i}")],
            )
            .unwrap();
        }
        c.execute(
            "UPDATE treatments SET doc = '{\"a\":1}' WHERE id = 'id0'",
            [],
        )
        .unwrap();
        let mods: Vec<i64> = c
            .prepare("SELECT srv_modified FROM treatments ORDER BY srv_modified")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(mods.windows(2).all(|w| w[0] < w[1]), "{mods:?}");
        let last: String = c
            .query_row(
                "SELECT id FROM treatments ORDER BY srv_modified DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, "id0", "the updated row is the newest");
    }
}
