//! Free space on the disk holding the database. New data is refused (507) while less than a
//! reserve is free, so SQLite never fails halfway through a group of writes and the rest of
//! the system (logs, a Pi's OS on the same SD card) keeps room to work. Reads, deletes and
//! retention need no new space worth speaking of and go on; deletes only mark documents, so
//! space comes back through `nightlite compact` (store::compact).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The reserve is the larger of this and 1% of the filesystem.
pub const MIN_RESERVE_BYTES: u64 = 64 * 1024 * 1024;
/// A burst of writes looks at the disk once; statvfs is cheap but not free.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const MB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to this (unprivileged) process.
    pub free: u64,
    pub total: u64,
}

impl Space {
    pub fn reserve(&self) -> u64 {
        MIN_RESERVE_BYTES.max(self.total / 100)
    }

    pub fn is_low(&self) -> bool {
        self.free < self.reserve()
    }
}

/// The space on the filesystem holding `dir`.
pub fn space(dir: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(Space {
        free: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

#[derive(Debug)]
pub struct DiskGuard {
    dir: PathBuf,
    /// Tests pretend the disk is full with this (NIGHTLITE_TEST_DISK_FREE_BYTES, debug builds).
    fake_free: Option<u64>,
    last: Mutex<Option<(Instant, Space)>>,
}

impl DiskGuard {
    pub fn new(dir: &Path, fake_free: Option<u64>) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            fake_free,
            last: Mutex::new(None),
        }
    }

    /// The space now (not cached).
    pub fn space(&self) -> std::io::Result<Space> {
        match self.fake_free {
            Some(free) => Ok(Space {
                free,
                total: space(&self.dir).map_or(0, |s| s.total),
            }),
            None => space(&self.dir),
        }
    }

    /// Err(InsufficientStorage) while the disk is below its reserve; looks at the disk at most
    /// once per second. A filesystem that cannot tell (statvfs fails) is not held against writes.
    pub fn check_writable(&self) -> Result<()> {
        let now = Instant::now();
        let space = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            match *last {
                Some((at, s)) if now.duration_since(at) < CHECK_EVERY => s,
                _ => match self.space() {
                    Ok(s) => {
                        *last = Some((now, s));
                        s
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "free disk space unknown");
                        return Ok(());
                    }
                },
            }
        };
        if space.is_low() {
            return Err(Error::InsufficientStorage(format!(
                "the disk holding the database is nearly full ({} MB free, {} MB kept in \
                 reserve): new data is refused until space is freed (nightlite compact, \
                 see docs/data-care.md); reading still works",
                space.free / MB,
                space.reserve() / MB
            )));
        }
        Ok(())
    }
}

/// Size of the SQLite database at `path` and its write-ahead log (what /api/v1/status and the
/// dbsize property report, and what a backup needs room for).
pub fn db_size(path: &std::path::Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.as_os_str(), wal.as_os_str()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_64_mb_or_one_percent() {
        let small = Space {
            free: 100 * MB,
            total: 1000 * MB,
        };
        assert_eq!(small.reserve(), MIN_RESERVE_BYTES);
        assert!(!small.is_low());
        let big = Space {
            free: 100 * MB,
            total: 20_000 * MB,
        };
        assert_eq!(big.reserve(), 200 * MB);
        assert!(big.is_low());
    }

    #[test]
    fn real_disk_is_read_and_a_fake_full_disk_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let s = space(dir.path()).unwrap();
        assert!(s.total > 0 && s.free <= s.total);
        let full = DiskGuard::new(dir.path(), Some(1000));
        let e = full.check_writable().unwrap_err();
        assert!(matches!(e, Error::InsufficientStorage(_)), "{e}");
        let roomy = DiskGuard::new(dir.path(), Some(u64::MAX / 2));
        assert!(roomy.check_writable().is_ok());
    }
}
