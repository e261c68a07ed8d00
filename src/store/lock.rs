//! One server per data directory: a running server holds an exclusive lock on
//! `<data dir>/nightlite.lock`, so a second server and `nightlite restore` can tell it is there.
//! The kernel drops the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::path::Path;

const LOCK_FILE: &str = "nightlite.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// The lock, or None while another process holds it.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<DataDirLock>> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DataDirLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::try_acquire(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(DataDirLock::try_acquire(dir.path()).unwrap().is_none());
        drop(first);
        assert!(DataDirLock::try_acquire(dir.path()).unwrap().is_some());
    }
}
