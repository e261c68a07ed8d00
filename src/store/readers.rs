//! The read side: [`READERS`] threads started with the store, each owning one read-only
//! connection for its whole life, taking jobs from one queue.
//!
//! Reads used to run on actix's blocking threads with connections from an r2d2 pool. Those
//! threads come and go (tokio ends an idle one after 10 s) and grow in number with the busiest
//! moment seen, up to four per HTTP worker; each new thread got its own malloc arena, and a
//! reader connection's page cache ended up spread over whichever threads had used it. In the
//! load soak a thread born after the first minute brought a new arena of 3.2 MB
//! (docs/PERFORMANCE.md, "Load soak"). Fixed threads keep the set of arenas, and where each
//! connection's memory lives, the same from start to end, and no read waits for a thread to
//! be started.
//!
//! Every read has a time budget ([`READ_BUDGET`]) and ends early when its caller goes away
//! (the HTTP request was dropped): SQLite's progress handler checks both every few thousand
//! virtual-machine steps and interrupts the statement. So an expensive query (a regular
//! expression over every document, say) holds a reader thread for at most the budget, and not
//! at all once its client has left.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{sqlfn, READERS, READER_CACHE_KIB};
use crate::error::{Error, Result};

/// How long one read may run. Reports over 90 days take about 0.15 s here
/// (docs/api-stats.md), a few times that on a Pi; a v1 list reads a bounded page per job.
pub(crate) const READ_BUDGET: Duration = Duration::from_secs(20);

/// SQLite virtual-machine steps between two checks of the budget and the caller.
const CHECK_EVERY_STEPS: i32 = 10_000;

struct Job {
    run: Box<dyn FnOnce(&Connection) + Send>,
    /// Set when the caller stopped waiting (its future was dropped).
    abandoned: Arc<AtomicBool>,
}

/// What the progress handler of one connection checks: the running job's deadline and
/// whether its caller is still there.
#[derive(Default)]
struct Watch {
    current: Mutex<Option<(Instant, Arc<AtomicBool>)>>,
}

impl Watch {
    fn set(&self, job: Option<(Instant, Arc<AtomicBool>)>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = job;
    }

    /// Whether the running statement must stop.
    fn expired(&self) -> bool {
        match &*self.current.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((deadline, abandoned)) => {
                abandoned.load(Ordering::Relaxed) || Instant::now() >= *deadline
            }
            None => false,
        }
    }
}

/// Marks a read abandoned when the future waiting for it is dropped before the answer.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The queue into the reader threads; clones share them. The threads end when the last clone
/// is dropped.
#[derive(Clone)]
pub(crate) struct Readers {
    jobs: mpsc::Sender<Job>,
}

impl Readers {
    /// Opens [`READERS`] connections, each on its own thread; fails if any cannot be opened.
    pub fn start(path: &Path) -> Result<Readers> {
        Readers::start_with_budget(path, READ_BUDGET)
    }

    /// [`Readers::start`] with another time budget per read (tests).
    pub fn start_with_budget(path: &Path, budget: Duration) -> Result<Readers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (opened_tx, opened) = mpsc::channel::<Result<()>>();
        for n in 0..READERS {
            let queue = queue.clone();
            let opened = opened_tx.clone();
            let path = path.to_path_buf();
            std::thread::Builder::new()
                .name(format!("nightlite-read-{n}"))
                // Opened on the thread itself, so the connection's memory is in its arena.
                .spawn(move || match open(&path) {
                    Ok(conn) => {
                        let _ = opened.send(Ok(()));
                        drop(opened);
                        serve(&conn, &queue, budget);
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                    }
                })?;
        }
        drop(opened_tx);
        for _ in 0..READERS {
            opened
                .recv()
                .map_err(|_| Error::Internal("a reader thread ended while opening".into()))??;
        }
        Ok(Readers { jobs })
    }

    /// Runs `f` on the next free reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let run = Box::new(move |conn: &Connection| {
            // As the writer does: a panicking read answers its caller with an error and leaves
            // the thread serving.
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(Error::Internal("a read panicked".into())))
                .map_err(over_budget);
            let _ = tx.send(result);
        });
        let stopped = || Error::Internal("the reader threads have stopped".into());
        let job = Job {
            run,
            abandoned: abandoned.clone(),
        };
        self.jobs.send(job).map_err(|_| stopped())?;
        let _abandon = AbandonOnDrop(abandoned);
        rx.await.map_err(|_| stopped())?
    }
}

/// An interrupted statement is a read that ran out of its budget (an abandoned one has no
/// caller left to tell).
fn over_budget(e: Error) -> Error {
    match &e {
        Error::Sqlite(s)
            if s.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
        {
            Error::Unprocessable(format!(
                "the query ran longer than its {} s budget and was stopped; narrow the time \
                 range, lower count, or simplify the regular expression",
                READ_BUDGET.as_secs()
            ))
        }
        _ => e,
    }
}

/// A read-only connection with nightlite's settings and SQL functions.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    sqlfn::register(&conn)?;
    Ok(conn)
}

/// Takes jobs until every sender is gone. Whoever holds the lock waits for the next job;
/// the others wait for the lock, so each job goes to exactly one idle thread.
fn serve(conn: &Connection, queue: &Mutex<mpsc::Receiver<Job>>, budget: Duration) {
    let watch = Arc::new(Watch::default());
    let check = watch.clone();
    conn.progress_handler(CHECK_EVERY_STEPS, Some(move || check.expired()));
    loop {
        let next = match queue.lock() {
            Ok(q) => q.recv(),
            // Jobs catch their own panics and run after the lock is released, so it is never
            // poisoned; taking it back anyway costs nothing.
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else { return };
        if job.abandoned.load(Ordering::Relaxed) {
            // Its caller left while it waited in the queue: nobody reads the answer.
            continue;
        }
        watch.set(Some((Instant::now() + budget, job.abandoned)));
        (job.run)(conn);
        watch.set(None);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DB_FILE);
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        (dir, path)
    }

    #[test]
    fn reader_connections_have_the_small_page_cache() {
        let (_dir, path) = database();
        let size: i64 = open(&path)
            .unwrap()
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(size, READER_CACHE_KIB);
    }

    #[tokio::test]
    async fn reads_run_on_the_fixed_threads_and_survive_a_panicking_read() {
        let (_dir, path) = database();
        let readers = Readers::start(&path).unwrap();
        let panicked = readers
            .read(|_| -> Result<()> { panic!("a bug in a read") })
            .await;
        assert!(
            matches!(&panicked, Err(Error::Internal(m)) if m.contains("panicked")),
            "{panicked:?}"
        );
        // More reads than threads, at once: every one answered, all on reader threads.
        let reads = (0..3 * READERS).map(|_| {
            readers.read(|c| {
                let sum: i64 = c.query_row("SELECT sum(x) FROM t", [], |r| r.get(0))?;
                let thread = std::thread::current().name().unwrap_or("").to_string();
                Ok((sum, thread))
            })
        });
        for r in futures_util::future::join_all(reads).await {
            let (sum, thread) = r.unwrap();
            assert_eq!(sum, 6);
            assert!(thread.starts_with("nightlite-read-"), "{thread}");
        }
    }

    /// A statement that would run for hours.
    fn endless(c: &Connection) -> Result<i64> {
        Ok(c.query_row(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
             SELECT count(*) FROM n",
            [],
            |r| r.get(0),
        )?)
    }

    #[tokio::test]
    async fn a_read_over_its_budget_is_stopped_with_a_clear_error() {
        let (_dir, path) = database();
        let readers = Readers::start_with_budget(&path, Duration::from_millis(200)).unwrap();
        let r = readers.read(endless).await;
        assert!(
            matches!(&r, Err(Error::Unprocessable(m)) if m.contains("budget")),
            "{r:?}"
        );
        // The thread goes on serving.
        let sum: i64 = readers
            .read(|c| Ok(c.query_row("SELECT sum(x) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(sum, 6);
    }

    #[tokio::test]
    async fn a_read_whose_caller_left_stops_and_frees_its_thread() {
        let (_dir, path) = database();
        // A budget far longer than the test: only abandonment can free the threads.
        let readers = Readers::start_with_budget(&path, Duration::from_secs(3600)).unwrap();
        for _ in 0..READERS {
            let read = readers.read(endless);
            // The caller gives up (as actix drops a handler when its client disconnects).
            assert!(tokio::time::timeout(Duration::from_millis(50), read)
                .await
                .is_err());
        }
        let sum = tokio::time::timeout(
            Duration::from_secs(30),
            readers.read(|c| Ok(c.query_row("SELECT sum(x) FROM t", [], |r| r.get::<_, i64>(0))?)),
        )
        .await
        .expect("every reader is still held by an abandoned read")
        .unwrap();
        assert_eq!(sum, 6);
    }

    #[test]
    fn a_database_that_cannot_be_opened_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("db.sqlite3");
        assert!(Readers::start(&missing).is_err());
    }
}
