//! Data care while the server runs: retention every hour, backups on a schedule
//! (BACKUP_INTERVAL_HOURS) and on SIGUSR1. The SQL lives in `store::retention` and
//! `store::backup`; this module decides when, and names and prunes the backup files.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actix_web::rt::task::JoinHandle;
use actix_web::web;

use crate::store::backup::{self, BackupError};
use crate::store::{retention, Collection, Store};
use crate::{dates, AppState, Config};

/// Under the data directory.
pub const BACKUP_DIR: &str = "backups";
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// The first retention pass comes soon after start-up, not during it.
const RETENTION_FIRST: Duration = Duration::from_secs(3);
/// An overdue scheduled backup waits this long after start-up.
const OVERDUE_BACKUP_DELAY: Duration = Duration::from_secs(60);
const PREFIX: &str = "nightlite-";
const SUFFIX: &str = "Z.sqlite3";

pub fn backup_dir(config: &Config) -> PathBuf {
    config.data_dir.join(BACKUP_DIR)
}

/// `nightlite-20260102T030405Z.sqlite3`: sorts by time, and is a valid name everywhere.
pub fn backup_name(now_ms: i64) -> String {
    let compact: String = dates::to_iso(now_ms)
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{PREFIX}{compact}{SUFFIX}")
}

fn is_backup_name(name: &str) -> bool {
    name.len() == backup_name(0).len() && name.starts_with(PREFIX) && name.ends_with(SUFFIX)
}

/// Backs the database up to `to`, else to a new file in `<data dir>/backups`. Safe while a
/// server writes. Returns the file and its size.
pub fn backup_now(config: &Config, to: Option<&Path>) -> Result<(PathBuf, u64), BackupError> {
    let db = config.data_dir.join(crate::store::DB_FILE);
    let dest = match to {
        Some(p) => {
            refuse_missing_folder(p)?;
            p.to_path_buf()
        }
        None => backup_dir(config).join(backup_name(dates::now_ms())),
    };
    let size = backup::backup_file(&db, &dest)?;
    Ok((dest, size))
}

/// A backup named by the user goes only into a folder that exists: a missing one is more
/// likely an unmounted USB stick than a folder to create on the SD card.
fn refuse_missing_folder(dest: &Path) -> Result<(), BackupError> {
    let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(BackupError::Io {
        context: dir.display().to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such folder (is the drive mounted?); nightlite does not create it",
        ),
    })
}

/// Removes all but the newest `keep` backups named as [`backup_name`] makes them in `dir`;
/// other files there are left alone. Returns the removed files.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for name in names.into_iter().skip(keep) {
        let p = dir.join(name);
        std::fs::remove_file(&p)?;
        removed.push(p);
    }
    Ok(removed)
}

/// A backup file as the admin page lists it.
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    /// When it was written (epoch ms).
    pub modified_ms: i64,
}

/// The backups in `dir` named as [`backup_name`] makes them, newest first; none when the
/// folder does not exist (no backup made yet).
pub fn list_backups(dir: &Path) -> Vec<BackupFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<BackupFile> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if !is_backup_name(&name) {
                return None;
            }
            let meta = e.metadata().ok()?;
            let modified_ms = meta
                .modified()
                .ok()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_millis();
            Some(BackupFile {
                name,
                bytes: meta.len(),
                modified_ms: i64::try_from(modified_ms).unwrap_or(i64::MAX),
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| b.name.cmp(&a.name));
    out
}

/// When the newest backup in `dir` was written.
fn newest_backup(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            is_backup_name(&name).then_some(e)
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// The collections with a retention setting, and their days.
pub fn retention_rules(c: &Config) -> Vec<(Collection, u32)> {
    [
        (Collection::Entries, c.retention.entries),
        (Collection::Treatments, c.retention.treatments),
        (Collection::DeviceStatus, c.retention.devicestatus),
        (Collection::Activity, c.retention.activity),
    ]
    .into_iter()
    .filter(|(_, days)| *days > 0)
    .collect()
}

/// One retention pass: for each rule, batch after batch, each its own writer job so uploads
/// interleave. Returns how many documents were deleted.
pub async fn retention_pass(
    store: &Store,
    rules: &[(Collection, u32)],
    now_ms: i64,
) -> crate::Result<usize> {
    let mut total = 0;
    for &(coll, days) in rules {
        let cutoff = now_ms - i64::from(days) * retention::DAY_MS;
        let mut deleted = 0;
        loop {
            let n = store
                .write_freeing(move |c| retention::delete_older(c, coll, cutoff, retention::BATCH))
                .await?;
            deleted += n;
            if n < retention::BATCH {
                break;
            }
        }
        if deleted > 0 {
            tracing::info!(collection = coll.table(), deleted, days, "retention");
        }
        total += deleted;
    }
    Ok(total)
}

/// Starts the background tasks; the caller aborts them when the server stops.
pub fn spawn(state: web::Data<AppState>) -> Vec<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, before the server answers anyone: SIGUSR1 would otherwise still have
    // its default action, which ends the process.
    let usr1 = match signal(SignalKind::user_defined1()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGUSR1 backups unavailable");
            None
        }
    };
    let mut tasks = vec![actix_web::rt::spawn(backups(state.clone(), usr1))];
    let rules = retention_rules(&state.config);
    if !rules.is_empty() {
        tasks.push(actix_web::rt::spawn(retention_loop(
            state.store.clone(),
            rules,
        )));
    }
    tasks
}

async fn retention_loop(store: Store, rules: Vec<(Collection, u32)>) {
    tokio::time::sleep(RETENTION_FIRST).await;
    loop {
        if let Err(e) = retention_pass(&store, &rules, dates::now_ms()).await {
            tracing::warn!(error = %e, "retention pass failed; next try in an hour");
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

/// Scheduled backups and SIGUSR1, one at a time.
async fn backups(state: web::Data<AppState>, mut usr1: Option<tokio::signal::unix::Signal>) {
    let every = match state.config.backup_interval_hours {
        0 => None,
        h => Some(Duration::from_secs(u64::from(h) * 3600)),
    };
    // After a restart, the schedule goes on from the newest backup rather than starting over,
    // so a device that reboots more often than the interval still gets its backups.
    let mut next = every.map(|every| {
        let wait = newest_backup(&backup_dir(&state.config))
            .and_then(|t| (t + every).duration_since(SystemTime::now()).ok())
            .unwrap_or(OVERDUE_BACKUP_DELAY);
        tokio::time::Instant::now() + wait
    });
    loop {
        let scheduled = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let signalled = async {
            match usr1.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            _ = scheduled => "scheduled",
            _ = signalled => "SIGUSR1",
        };
        server_backup(&state, why).await;
        if why == "scheduled" {
            next = every.map(|every| tokio::time::Instant::now() + every);
        }
    }
}

/// One backup by the server into the backups folder, then pruning to BACKUP_KEEP. Skipped
/// when the copy would eat into the disk reserve that keeps uploads working.
async fn server_backup(state: &web::Data<AppState>, why: &'static str) {
    let config = state.config.clone();
    let store = state.store.clone();
    // The space check (stat calls) and the copy are file-system work: off the async workers.
    // Err((free, needed)): skipped, the copy would eat into the disk reserve.
    let result = web::block(move || {
        let needed = store.db_size();
        if let Ok(space) = store.disk().space() {
            if space.free.saturating_sub(needed) < space.reserve() {
                return Err((space.free, needed));
            }
        }
        let made = backup_now(&config, None);
        let pruned = match &made {
            Ok(_) => prune(&backup_dir(&config), config.backup_keep),
            Err(_) => Ok(Vec::new()),
        };
        Ok((made, pruned))
    })
    .await;
    match result {
        Ok(Err((free, needed))) => tracing::warn!(
            why,
            free,
            needed,
            "backup skipped: not enough free disk space"
        ),
        Ok(Ok((Ok((path, bytes)), pruned))) => {
            tracing::info!(why, file = %path.display(), bytes, "backup written");
            match pruned {
                Ok(old) if !old.is_empty() => {
                    tracing::info!(removed = old.len(), "old backups removed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not remove old backups"),
            }
        }
        Ok(Ok((Err(e), _))) => tracing::error!(why, error = %e, "backup failed"),
        Err(e) => tracing::error!(why, error = %e, "backup task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_pruning_keeps_the_newest() {
        assert_eq!(
            backup_name(1_767_323_045_678),
            "nightlite-20260102T030405Z.sqlite3"
        );
        let dir = tempfile::tempdir().unwrap();
        for day in 0..5 {
            let name = backup_name(1_767_323_045_678 + day * 86_400_000);
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("mine.sqlite3"), b"x").unwrap();
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "mine.sqlite3",
                "nightlite-20260105T030405Z.sqlite3",
                "nightlite-20260106T030405Z.sqlite3"
            ]
        );
    }
}
