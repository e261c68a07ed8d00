//! `nightlite compact`: gives disk space back, with the server stopped. Deleting through the API
//! frees nothing (a delete only marks the document, which API v3 history then reports as
//! deleted) and the write-ahead log keeps its largest size, so on a full disk this is the way
//! back:
//! 1. the WAL is checkpointed into the database and truncated to nothing;
//! 2. documents deleted through the API (or Socket.IO) more than N days ago are removed for
//!    good, in batches, the WAL truncated after each so it never grows;
//! 3. when the disk has room for it, VACUUM rewrites the file without its free pages, and the
//!    file shrinks. Without the room, the freed pages stay inside the file, where new documents
//!    fill them before the file grows again.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::backup::BackupError;
use super::collection::Collection;
use super::lock::DataDirLock;
use super::{disk, DB_FILE};

/// Rows removed per transaction: bounds the WAL between two truncations.
const BATCH: i64 = 5000;
const DAY_MS: i64 = 86_400_000;
/// Room kept on top of what VACUUM needs.
const VACUUM_MARGIN: u64 = 16 * 1024 * 1024;

/// What a compaction did.
#[derive(Debug, Clone)]
pub struct Compacted {
    /// Bytes of the database file and its WAL, before and after.
    pub before: u64,
    pub after: u64,
    /// Soft-deleted documents removed for good, per collection (those with any).
    pub removed: Vec<(Collection, usize)>,
    pub vacuum: Vacuum,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vacuum {
    Done,
    /// The file had no free pages to give back.
    NotNeeded,
    /// VACUUM needs about `needed` bytes free on the disk; `free` were.
    NoRoom {
        needed: u64,
        free: u64,
    },
}

fn size(db: &Path) -> u64 {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    len(db) + len(Path::new(&wal))
}

/// Folds the WAL into the database and cuts the WAL file to zero bytes.
fn truncate_wal(conn: &Connection) -> rusqlite::Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("another connection kept the WAL from being checkpointed".into()),
        ));
    }
    Ok(())
}

/// Compacts the database in `data_dir`: see the module comment. Documents soft-deleted more
/// than `older_than_days` ago (by their srvModified) are removed; refuses while a server holds
/// the data directory.
pub fn compact(
    data_dir: &Path,
    older_than_days: u32,
    now_ms: i64,
) -> Result<Compacted, BackupError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(BackupError::NoDatabase(db.display().to_string()));
    }
    let _lock = DataDirLock::try_acquire(data_dir)
        .map_err(|source| BackupError::Io {
            context: data_dir.display().to_string(),
            source,
        })?
        .ok_or_else(|| BackupError::ServerRunning(data_dir.display().to_string()))?;
    let before = size(&db);
    let conn = Connection::open(&db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    truncate_wal(&conn)?;

    // 0 days is every deleted document: right after a burst of deletes their srvModified can
    // be ahead of the clock (it rises by at least 1 ms per document), and they would be kept.
    let cutoff = match older_than_days {
        0 => i64::MAX,
        days => now_ms - i64::from(days) * DAY_MS,
    };
    let mut removed = Vec::new();
    for coll in Collection::ALL {
        let t = coll.table();
        let sql = format!(
            "DELETE FROM {t} WHERE seq IN \
             (SELECT seq FROM {t} WHERE is_valid = 0 AND srv_modified < ?1 LIMIT {BATCH})"
        );
        let mut total = 0;
        loop {
            let n = conn.execute(&sql, [cutoff])?;
            truncate_wal(&conn)?;
            total += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
                break;
            }
        }
        if total > 0 {
            removed.push((coll, total));
        }
    }

    let pages = |pragma: &str| -> rusqlite::Result<u64> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
    };
    let (page_size, page_count, free_pages) = (
        pages("page_size")?,
        pages("page_count")?,
        pages("freelist_count")?,
    );
    let vacuum = if free_pages == 0 {
        Vacuum::NotNeeded
    } else {
        // VACUUM builds the new file beside the old one (a temporary copy, then the WAL that
        // carries it back): about twice the live pages at the peak.
        let needed = 2 * (page_count - free_pages) * page_size + VACUUM_MARGIN;
        let free = disk::space(data_dir).map_or(0, |s| s.free);
        if free < needed {
            Vacuum::NoRoom { needed, free }
        } else {
            conn.execute_batch("VACUUM")?;
            truncate_wal(&conn)?;
            Vacuum::Done
        }
    };
    drop(conn);
    Ok(Compacted {
        before,
        after: size(&db),
        removed,
        vacuum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{migrate, upsert};
    use serde_json::{json, Map, Value};

    const NOW: i64 = 1_800_000_000_000;

    fn doc(i: i64) -> Map<String, Value> {
        match json!({ "type": "sgv", "sgv": 100, "date": i, "pad": "x".repeat(2000) }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn compact_removes_old_soft_deletes_keeps_the_rest_and_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        let mut c = Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        migrate::migrate(&mut c).unwrap();
        // Keep the WAL from being checkpointed, as a busy server's readers do.
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch("BEGIN").unwrap();
        for i in 0..3000 {
            upsert::insert_row(&c, Collection::Entries, None, &doc(i), i, 0, false).unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
        // 2,000 deleted 40 days ago, 500 deleted yesterday, 500 live.
        c.execute(
            "UPDATE entries SET is_valid = 0, srv_modified = ?1 WHERE mills < 2000",
            [NOW - 40 * DAY_MS],
        )
        .unwrap();
        c.execute(
            "UPDATE entries SET is_valid = 0, srv_modified = ?1 WHERE mills >= 2000 AND mills < 2500",
            [NOW - DAY_MS],
        )
        .unwrap();
        // Never closed, as by a server killed with -9: the WAL stays, with every row in it.
        std::mem::forget(c);
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let wal_before = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(wal_before > 6_000_000, "{wal_before}");

        let held = DataDirLock::try_acquire(dir.path()).unwrap();
        let e = compact(dir.path(), 30, NOW).unwrap_err();
        assert!(matches!(e, BackupError::ServerRunning(_)), "{e}");
        drop(held);

        let done = compact(dir.path(), 30, NOW).unwrap();
        assert_eq!(done.removed, vec![(Collection::Entries, 2000)]);
        assert_eq!(done.vacuum, Vacuum::Done);
        assert!(
            done.after * 2 < done.before,
            "{} → {} bytes (WAL was {wal_before})",
            done.before,
            done.after
        );
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        let c = Connection::open(&db).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            count("SELECT count(*) FROM entries WHERE is_valid = 1"),
            500
        );
        assert_eq!(
            count("SELECT count(*) FROM entries WHERE is_valid = 0"),
            500
        );
        assert_eq!(count("SELECT min(mills) FROM entries"), 2000);
        assert_eq!(count("PRAGMA freelist_count"), 0);
        drop(c);
        // 0 days: every deleted document, even one stamped after the clock (a burst).
        let c = Connection::open(&db).unwrap();
        c.execute(
            "UPDATE entries SET srv_modified = ?1 WHERE is_valid = 0",
            [NOW + 500],
        )
        .unwrap();
        drop(c);
        let all = compact(dir.path(), 0, NOW).unwrap();
        assert_eq!(all.removed, vec![(Collection::Entries, 500)]);
        let c = Connection::open(&db).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM entries WHERE is_valid = 0"), 0);
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn compact_needs_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let e = compact(dir.path(), 30, NOW).unwrap_err();
        assert!(matches!(e, BackupError::NoDatabase(_)), "{e}");
        assert!(!dir.path().join(DB_FILE).exists());
    }
}
