//! Backup and restore of the database file.
//!
//! A backup is SQLite's online backup API run on a connection of its own, all pages in one
//! step: that step reads one snapshot, so the copy holds exactly the transactions committed
//! when it started, and in WAL mode the server's writer goes on meanwhile. The copy is written
//! under a temporary name, checked, synced and then renamed, so a backup file that exists is
//! complete.
//!
//! A restore checks the file first (SQLite's integrity check, then that it is a nightlite
//! database this version can open), refuses while a server holds the data directory, copies
//! the file in the same way, and keeps the database it replaces as `nightlite.sqlite3.bak`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::lock::DataDirLock;
use super::{migrate, DB_FILE};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}")]
    NoDatabase(String),
    #[error("{0} already exists; choose another name or remove it first")]
    Exists(String),
    #[error("the copy in {path} failed its check ({problem}); it was removed")]
    BadCopy { path: String, problem: String },
    #[error("{0} is not a SQLite database")]
    NotSqlite(String),
    #[error("{path} is damaged and was not restored: {problems}")]
    Damaged { path: String, problems: String },
    #[error("{path} is not a nightlite database ({why})")]
    NotNightlite { path: String, why: String },
    #[error(
        "{path} is at schema version {version}, newer than this nightlite understands \
         ({latest}); restore it with a newer nightlite"
    )]
    TooNew {
        path: String,
        version: u32,
        latest: u32,
    },
    #[error("{0} is the database itself; name a backup file")]
    SameFile(String),
    #[error(
        "a nightlite server is running on {0}; stop it first (for example \
         `systemctl stop nightlite`), then restore"
    )]
    ServerRunning(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// `path` with `suffix` appended to its file name (`x.sqlite3` → `x.sqlite3.partial`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Copies every page of `src` into a new database at `dest` in one step (one snapshot), then
/// makes it a self-contained rollback-journal file.
fn copy_db(src: &Connection, dest: &Path) -> rusqlite::Result<()> {
    let mut out = Connection::open(dest)?;
    {
        let backup = Backup::new(src, &mut out)?;
        // Busy only while another process recovers the WAL; give it a moment, then give up.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed busy".into()),
                    ))
                }
            }
        }
    }
    out.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// Writes `path`'s data to disk and its name into its directory.
fn sync_file_and_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Copies the database `db` (which a server may be writing) to `dest`, which must not exist.
/// Returns the copy's size in bytes.
pub fn backup_file(db: &Path, dest: &Path) -> Result<u64, BackupError> {
    if !db.is_file() {
        return Err(BackupError::NoDatabase(show(db)));
    }
    if dest.exists() {
        return Err(BackupError::Exists(show(dest)));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(show(dir)))?;
    }
    let partial = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        let src = open_read_only(db)?;
        copy_db(&src, &partial)?;
        let check = Connection::open_with_flags(&partial, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let verdict: String = check.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        Ok::<_, BackupError>(verdict)
    })();
    let verdict = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if verdict != "ok" {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::BadCopy {
            path: show(dest),
            problem: verdict,
        });
    }
    sync_file_and_dir(&partial).map_err(io_err(show(&partial)))?;
    std::fs::rename(&partial, dest).map_err(io_err(show(dest)))?;
    sync_file_and_dir(dest).map_err(io_err(show(dest)))?;
    Ok(std::fs::metadata(dest).map_or(0, |m| m.len()))
}

/// What a checked backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub schema_version: u32,
    pub entries: i64,
    pub treatments: i64,
    pub devicestatus: i64,
}

/// Checks that `file` is an undamaged nightlite database this version can open.
pub fn check(file: &Path) -> Result<Checked, BackupError> {
    let name = show(file);
    if !file.is_file() {
        return Err(BackupError::Io {
            context: name,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let classify = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => BackupError::NotSqlite(name.clone()),
        Some(ErrorCode::DatabaseCorrupt) => BackupError::Damaged {
            path: name.clone(),
            problems: e.to_string(),
        },
        _ => BackupError::Sqlite(e),
    };
    let conn = open_read_only(file).map_err(classify)?;
    let problems = conn
        .prepare("PRAGMA integrity_check(10)")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(classify)?;
    if problems != ["ok"] {
        return Err(BackupError::Damaged {
            path: name,
            problems: problems.join("; "),
        });
    }
    let version = migrate::current_version(&conn).map_err(|e| BackupError::NotNightlite {
        path: name.clone(),
        why: e.to_string(),
    })?;
    let latest = migrate::latest_version();
    if version == 0 {
        return Err(BackupError::NotNightlite {
            path: name,
            why: "it has no nightlite schema version".into(),
        });
    }
    if version > latest {
        return Err(BackupError::TooNew {
            path: name,
            version,
            latest,
        });
    }
    if let Some(why) = shape_problem(&conn, version)? {
        return Err(BackupError::NotNightlite { path: name, why });
    }
    let count = |t: &str| -> Result<i64, BackupError> {
        Ok(conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?)
    };
    Ok(Checked {
        schema_version: version,
        entries: count("entries")?,
        treatments: count("treatments")?,
        devicestatus: count("devicestatus")?,
    })
}

/// What `conn` lacks of the schema at `version`: every table with every column (generated
/// ones too), every index and trigger, by name. More is allowed (a later ANALYZE's tables).
/// None when nothing is missing.
fn shape_problem(conn: &Connection, version: u32) -> Result<Option<String>, BackupError> {
    let reference = migrate::reference(version)?;
    let objects = |c: &Connection| -> rusqlite::Result<Vec<(String, String)>> {
        c.prepare(
            "SELECT type, name FROM sqlite_master
             WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
    };
    let columns = |c: &Connection, table: &str| -> rusqlite::Result<Vec<String>> {
        c.prepare("SELECT name FROM pragma_table_xinfo(?1)")?
            .query_map([table], |r| r.get(0))?
            .collect()
    };
    let have = objects(conn)?;
    for (kind, name) in objects(&reference)? {
        if !have.iter().any(|(k, n)| *k == kind && *n == name) {
            return Ok(Some(format!("it has no '{name}' {kind}")));
        }
        if kind == "table" {
            let present = columns(conn, &name)?;
            let missing: Vec<String> = columns(&reference, &name)?
                .into_iter()
                .filter(|c| !present.contains(c))
                .collect();
            if !missing.is_empty() {
                return Ok(Some(format!(
                    "its '{name}' table lacks the column(s) {}",
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(None)
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub checked: Checked,
    pub database: PathBuf,
    /// Where the replaced database now is, when there was one.
    pub previous: Option<PathBuf>,
}

/// Replaces the database in `data_dir` with a copy of `file`, after [`check`]; refuses while
/// a server runs on `data_dir`. The replaced database (with its WAL, if any) is kept as
/// `nightlite.sqlite3.bak`, replacing an older `.bak`.
pub fn restore(data_dir: &Path, file: &Path) -> Result<Restored, BackupError> {
    let checked = check(file)?;
    let db = data_dir.join(DB_FILE);
    if let (Ok(a), Ok(b)) = (file.canonicalize(), db.canonicalize()) {
        if a == b {
            return Err(BackupError::SameFile(show(file)));
        }
    }
    let _lock = DataDirLock::try_acquire(data_dir)
        .map_err(io_err(show(data_dir)))?
        .ok_or_else(|| BackupError::ServerRunning(show(data_dir)))?;

    let incoming = with_suffix(&db, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    let copied = open_read_only(file).and_then(|src| copy_db(&src, &incoming));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&incoming);
        return Err(e.into());
    }
    sync_file_and_dir(&incoming).map_err(io_err(show(&incoming)))?;

    // The old database goes aside with its WAL renamed alongside, so that the pair still opens
    // as one database even if it was left mid-checkpoint; the shared-memory index is rebuilt.
    let bak = with_suffix(&db, ".bak");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&bak, suffix));
    }
    let previous = if db.exists() {
        std::fs::rename(&db, &bak).map_err(io_err(show(&db)))?;
        let wal = with_suffix(&db, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&bak, "-wal")).map_err(io_err(show(&wal)))?;
        }
        Some(bak)
    } else {
        None
    };
    let _ = std::fs::remove_file(with_suffix(&db, "-shm"));
    std::fs::rename(&incoming, &db).map_err(io_err(show(&db)))?;
    sync_file_and_dir(&db).map_err(io_err(show(&db)))?;
    Ok(Restored {
        checked,
        database: db,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nightlite_db(path: &Path, rows: usize) {
        let mut c = Connection::open(path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        migrate::migrate(&mut c).unwrap();
        for i in 0..rows {
            c.execute(
                "INSERT INTO entries (id, doc, mills, srv_created) VALUES (?1, ?2, ?3, 0)",
                rusqlite::params![
                    format!("{i:024x}"),
                    format!(
                        r#"{{"type":"sgv","sgv":100,"date":{i},"pad":"{}"}}"#,
                        "x".repeat(200)
                    ),
                    i64::try_from(i).unwrap()
                ],
            )
            .unwrap();
        }
    }

    #[test]
    fn backup_copies_a_database_with_its_wal_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        nightlite_db(&db, 50);
        // Keep a connection open so the rows are (partly) still in the WAL.
        let _live = Connection::open(&db).unwrap();
        let dest = dir.path().join("backups/one.sqlite3");
        assert!(backup_file(&db, &dest).unwrap() > 0);
        assert_eq!(check(&dest).unwrap().entries, 50);
        assert!(!with_suffix(&dest, "-wal").exists());
        let e = backup_file(&db, &dest).unwrap_err();
        assert!(matches!(e, BackupError::Exists(_)), "{e}");
        let e = backup_file(&dir.path().join("none.sqlite3"), &dest).unwrap_err();
        assert!(matches!(e, BackupError::NoDatabase(_)), "{e}");
    }

    #[test]
    fn check_refuses_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello, this is not a database at all ".repeat(100)).unwrap();
        assert!(matches!(check(&text), Err(BackupError::NotSqlite(_))));

        let other = dir.path().join("other.sqlite3");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let e = check(&other).unwrap_err();
        assert!(matches!(e, BackupError::NotNightlite { .. }), "{e}");
    }

    #[test]
    fn check_refuses_a_database_missing_part_of_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        nightlite_db(&data.join(DB_FILE), 3);
        for (i, (damage, why)) in [
            (
                "DROP TABLE auth_subjects",
                "it has no 'auth_subjects' table",
            ),
            (
                "DROP TABLE entries; CREATE TABLE entries (id TEXT, doc TEXT)",
                "its 'entries' table lacks the column(s) seq",
            ),
            (
                "DROP INDEX treatments_identifier",
                "it has no 'treatments_identifier' index",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let file = dir.path().join(format!("broken{i}.sqlite3"));
            nightlite_db(&file, 5);
            Connection::open(&file)
                .unwrap()
                .execute_batch(damage)
                .unwrap();
            let e = check(&file).unwrap_err();
            assert!(
                matches!(e, BackupError::NotNightlite { .. }),
                "{damage}: {e}"
            );
            assert!(e.to_string().contains(why), "{damage}: {e}");
            let e = restore(&data, &file).unwrap_err();
            assert!(
                matches!(e, BackupError::NotNightlite { .. }),
                "{damage}: {e}"
            );
            assert_eq!(
                check(&data.join(DB_FILE)).unwrap().entries,
                3,
                "nothing replaced"
            );
            assert!(!with_suffix(&data.join(DB_FILE), ".bak").exists());
        }
        // Every version this nightlite knows is its own reference.
        for version in 1..=migrate::latest_version() {
            let file = dir.path().join(format!("v{version}.sqlite3"));
            let c = Connection::open(&file).unwrap();
            c.execute_batch(&format!("PRAGMA user_version = {version}"))
                .unwrap();
            let reference = migrate::reference(version).unwrap();
            reference
                .backup(rusqlite::DatabaseName::Main, &file, None)
                .unwrap();
            drop(c);
            Connection::open(&file)
                .unwrap()
                .pragma_update(None, "user_version", version)
                .unwrap();
            assert_eq!(check(&file).unwrap().schema_version, version);
        }
    }

    #[test]
    fn restore_keeps_the_old_database_and_respects_a_running_server() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        nightlite_db(&data.join(DB_FILE), 3);
        let backup = dir.path().join("b.sqlite3");
        nightlite_db(&backup, 7);

        let held = DataDirLock::try_acquire(&data).unwrap();
        let e = restore(&data, &backup).unwrap_err();
        assert!(matches!(e, BackupError::ServerRunning(_)), "{e}");
        drop(held);

        let r = restore(&data, &backup).unwrap();
        assert_eq!(r.checked.entries, 7);
        assert_eq!(check(&data.join(DB_FILE)).unwrap().entries, 7);
        let bak = r.previous.unwrap();
        assert_eq!(check(&bak).unwrap().entries, 3);
        let e = restore(&data, &data.join(DB_FILE)).unwrap_err();
        assert!(matches!(e, BackupError::SameFile(_)), "{e}");
    }
}
