//! The single writer: one thread owns the write connection and group-commits. Every job waiting
//! in its queue goes into one transaction (one fsync); each job runs in its own savepoint so a
//! failing job changes nothing and does not spoil the others; a job's caller hears back only
//! after the transaction has committed.
//!
//! Some errors (SQLITE_FULL on a statement without a statement journal, any I/O error) make
//! SQLite roll back the whole transaction, not just the job's savepoint. The writer notices
//! (a rollback hook; the connection need not be back in autocommit mode: a failed RELEASE
//! leaves it out of it), answers every job of that transaction with the
//! cause (507 for a full disk: nothing of theirs was kept) and runs the jobs still waiting in a
//! fresh transaction, so no job runs outside a transaction and every answer says what is on
//! disk. A commit hook refuses any commit while a job runs: a job that goes on after such a
//! rollback (a v3 batch's next item, in a savepoint of its own) cannot commit behind the
//! writer's back, since outside a transaction its SAVEPOINT would begin one and RELEASE commit.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::changes::{self, Bus};
use crate::error::{Error, Result};

/// Why the transaction a job ran in did not commit.
#[derive(Debug, Clone)]
struct Lost {
    disk_full: bool,
    cause: String,
}

impl Lost {
    fn of(e: &Error) -> Lost {
        match e {
            Error::Sqlite(e) => Lost::of_sqlite(e),
            other => Lost {
                disk_full: false,
                cause: other.to_string(),
            },
        }
    }

    fn of_sqlite(e: &rusqlite::Error) -> Lost {
        Lost {
            disk_full: e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            cause: e.to_string(),
        }
    }

    /// The cause as the client hears it. A job that went on after the rollback (a v3 batch's
    /// next item) hides SQLite's "disk full" behind a later error: a lost transaction on a disk
    /// now below its reserve (store::disk) counts as a full disk.
    fn seen_from(mut self, conn: &Connection) -> Lost {
        if !self.disk_full {
            let dir = conn
                .path()
                .map(std::path::Path::new)
                .and_then(std::path::Path::parent);
            self.disk_full = dir
                .and_then(|d| super::disk::space(d).ok())
                .is_some_and(|s| s.is_low());
        }
        self
    }

    /// The answer for a job that succeeded in a transaction that was then lost.
    fn error(&self) -> Error {
        if self.disk_full {
            Error::InsufficientStorage(
                "the disk holding the database filled up during this write; nothing of it was \
                 stored"
                    .into(),
            )
        } else {
            Error::Internal(format!(
                "the write transaction was rolled back: {}",
                self.cause
            ))
        }
    }
}

/// Called once the job's transaction has committed (None) or is known lost (Some).
type Reply = Box<dyn FnOnce(Option<&Lost>) + Send>;
/// A job run (Some connection, inside the open transaction) or refused unrun (None).
type Job = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

struct Ran {
    reply: Reply,
    /// The job's own error, if it failed.
    failed: Option<Lost>,
}

/// What the connection's hooks share with the writer thread.
#[derive(Default)]
struct Hooks {
    /// A job is running: no commit may happen.
    in_job: Arc<AtomicBool>,
    /// The transaction was rolled back (by SQLite, a refused commit, or the writer).
    rolled_back: Arc<AtomicBool>,
}

/// Jobs taken into one transaction at most; bounds the latency of the first one.
const MAX_GROUP: usize = 512;
const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: Connection, bus: Bus) -> Result<Writer> {
        changes::install(&conn)?;
        let hooks = Hooks::default();
        let in_job = hooks.in_job.clone();
        // true turns the commit into a rollback.
        conn.commit_hook(Some(move || in_job.load(Ordering::Relaxed)));
        let rolled_back = hooks.rolled_back.clone();
        conn.rollback_hook(Some(move || rolled_back.store(true, Ordering::Relaxed)));
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("nightlite-writer".into())
            .spawn(move || run(conn, rx, bus, &hooks))?;
        Ok(Writer { tx })
    }

    /// Runs `f` inside the next group transaction and returns its result after the commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(Error::Internal("cannot begin a write transaction".into())),
            };
            let failed = result.as_ref().err().map(Lost::of);
            Ran {
                failed,
                reply: Box::new(move |lost| {
                    let out = match (result, lost) {
                        (Ok(_), Some(lost)) => Err(lost.error()),
                        // A storage error of a job on a full disk is the full disk's doing
                        // (a refusal of the job's own, a 4xx, stays as it is).
                        (Err(e), Some(lost)) if lost.disk_full && is_storage(&e) => {
                            Err(lost.error())
                        }
                        (result, _) => result,
                    };
                    let _ = done_tx.send(out);
                }),
            }
        });
        self.tx.send(job).await.map_err(|_| Error::WriterGone)?;
        done_rx.await.map_err(|_| Error::WriterGone)?
    }
}

fn is_storage(e: &Error) -> bool {
    matches!(e, Error::Sqlite(_) | Error::Internal(_))
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(r) => r,
        Err(_) => Err(Error::Internal(
            "a write panicked; it was rolled back".into(),
        )),
    };
    let result = result.and_then(|v| {
        conn.execute_batch("RELEASE job")?;
        Ok(v)
    });
    // With the transaction gone there is no savepoint left to undo: the writer sees that.
    if result.is_err() && !conn.is_autocommit() {
        if let Err(rb) = conn.execute_batch("ROLLBACK TO job; RELEASE job") {
            tracing::error!(error = %rb, "rollback of a failed write failed");
        }
    }
    result
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>, bus: Bus, hooks: &Hooks) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        run_group(&conn, jobs, &bus, hooks);
    }
    tracing::debug!("writer stopped");
}

/// Runs the jobs in one transaction, or in several when SQLite rolls one back under a job.
fn run_group(conn: &Connection, jobs: Vec<Job>, bus: &Bus, hooks: &Hooks) {
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        hooks.rolled_back.store(false, Ordering::Relaxed);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, jobs = jobs.len(), "cannot begin a write transaction");
            for job in jobs {
                (job(None).reply)(None);
            }
            return;
        }
        let mut replies: Vec<Reply> = Vec::new();
        let mut lost = None;
        for job in jobs.by_ref() {
            hooks.in_job.store(true, Ordering::Relaxed);
            let ran = job(Some(conn));
            hooks.in_job.store(false, Ordering::Relaxed);
            replies.push(ran.reply);
            if hooks.rolled_back.load(Ordering::Relaxed) || conn.is_autocommit() {
                // Whatever the job began after the rollback goes too.
                if !conn.is_autocommit() {
                    if let Err(e) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "rollback after a lost transaction failed");
                    }
                }
                let cause = ran.failed.unwrap_or_else(|| Lost {
                    disk_full: false,
                    cause: "the transaction ended inside a write".into(),
                });
                lost = Some(cause.seen_from(conn));
                break;
            }
        }
        let lost = match lost {
            Some(lost) => {
                tracing::error!(error = %lost.cause, jobs = replies.len(),
                    "SQLite rolled back a group transaction; its writes are answered as failed");
                Some(lost)
            }
            None => {
                upkeep(conn);
                commit(conn)
            }
        };
        if lost.is_none() {
            publish(conn, bus);
        }
        for reply in replies {
            reply(lost.as_ref());
        }
    }
}

/// Derived tables that follow the documents, brought up to date inside the transaction before
/// it commits (the state spans: store/spans.rs). Their failure never costs a write: the
/// upkeep is rolled back alone, logged, and the spans marked for a rebuild at the next start.
fn upkeep(conn: &Connection) {
    let run = || -> Result<()> {
        conn.execute_batch("SAVEPOINT upkeep")?;
        match super::spans::refresh(conn) {
            Ok(()) => conn.execute_batch("RELEASE upkeep")?,
            Err(e) => {
                tracing::error!(error = %e, "state span upkeep failed; spans rebuild at the next start");
                conn.execute_batch(
                    "ROLLBACK TO upkeep; RELEASE upkeep; UPDATE span_status SET built = 0",
                )?;
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        tracing::error!(error = %e, "state span upkeep could not be rolled back");
    }
}

/// Commits the open transaction; on failure makes sure it is rolled back.
fn commit(conn: &Connection) -> Option<Lost> {
    let e = conn.execute_batch("COMMIT").err()?;
    tracing::error!(error = %e, "group commit failed; rolled back");
    if !conn.is_autocommit() {
        if let Err(rb) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %rb, "rollback after a failed commit failed");
        }
    }
    Some(Lost::of_sqlite(&e).seen_from(conn))
}

/// Hands what the commit changed to the live layer (before the writers hear back, so a client
/// that reads right after its write sees the delta already sent). Nobody listening: forget it.
fn publish(conn: &Connection, bus: &Bus) {
    let result = if bus.receiver_count() == 0 {
        changes::clear(conn)
    } else {
        changes::drain(conn).map(|set| {
            if !set.is_empty() {
                // A send fails only when every receiver is gone.
                let _ = bus.send(Arc::new(set));
            }
        })
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "reading the changes of a commit failed");
        let _ = changes::clear(conn);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{upsert, Collection, Store};
    use super::*;
    use serde_json::{json, Map, Value};

    fn entry(date: i64) -> Map<String, Value> {
        match json!({ "type": "sgv", "sgv": 100, "date": date }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// Inserts an entry dated `date`.
    fn add(c: &Connection, date: i64) -> Result<String> {
        Ok(upsert::insert_row(c, Collection::Entries, None, &entry(date), date, 0, false)?.0)
    }

    /// A 1 MB row in a table without triggers or unique keys, whose single-row INSERT has no
    /// statement journal: SQLITE_FULL there rolls back the whole transaction, as a full disk
    /// does when a write of the WAL fails.
    fn fill(c: &Connection) -> Result<()> {
        c.execute("INSERT INTO filler VALUES (zeroblob(1048576))", [])?;
        Ok(())
    }

    /// A store whose database has room for small writes, never for [`fill`] (max_page_count:
    /// SQLite answers SQLITE_FULL as on a full disk).
    async fn nearly_full() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = nearly_full_in(dir.path()).await;
        (dir, store)
    }

    async fn nearly_full_in(dir: &std::path::Path) -> Store {
        let store = Store::open(dir).unwrap();
        store
            .writer
            .write(|c| {
                c.execute_batch("CREATE TABLE filler (b BLOB)")?;
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                let limit = format!("PRAGMA max_page_count = {}", pages + 64);
                c.query_row(&limit, [], |_| Ok(()))?;
                Ok(())
            })
            .await
            .unwrap();
        store
    }

    type TestJob<T> = Box<dyn FnOnce(&Connection) -> Result<T> + Send>;

    /// Runs `jobs` as one group: the writer is held until all of them are queued.
    async fn as_one_group<T: Send + 'static>(w: &Writer, jobs: Vec<TestJob<T>>) -> Vec<Result<T>> {
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold = tokio::spawn({
            let w = w.clone();
            async move {
                w.write(move |_| {
                    let _ = started_tx.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
            }
        });
        while started.try_recv().is_err() {
            tokio::task::yield_now().await;
        }
        let n = jobs.len();
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|f| {
                let w = w.clone();
                tokio::spawn(async move { w.write(f).await })
            })
            .collect();
        while QUEUE - w.tx.capacity() < n {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        hold.await.unwrap().unwrap();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    async fn stored_dates(store: &Store) -> Vec<i64> {
        store
            .read(|c| {
                let mut s = c.prepare("SELECT mills FROM entries ORDER BY mills")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap()
    }

    /// SQLite answers SQLITE_FULL in the middle of a group: every answer must say what the
    /// database holds afterwards.
    #[tokio::test]
    async fn a_full_disk_mid_group_answers_each_job_as_it_is_stored() {
        let (_dir, store) = nearly_full().await;
        let jobs = (0..9i64)
            .map(|i| {
                Box::new(move |c: &Connection| {
                    let id = add(c, 1_000 + i)?;
                    if i % 3 == 1 {
                        fill(c)?;
                    }
                    Ok(id)
                }) as TestJob<String>
            })
            .collect();
        let answers = as_one_group(&store.writer, jobs).await;
        let stored = stored_dates(&store).await;
        for (i, answer) in answers.iter().enumerate() {
            let is_stored = stored.contains(&(1_000 + i as i64));
            assert_eq!(
                answer.is_ok(),
                is_stored,
                "job {i}: {answer:?}, stored: {stored:?}"
            );
        }
        for (i, answer) in answers.iter().enumerate() {
            if let Err(e) = answer {
                let status = actix_web::ResponseError::status_code(e).as_u16();
                assert_eq!(status, 507, "job {i}: {e:?}");
            }
        }
        // Jobs 0-7 went with a rolled-back transaction; job 8 ran in a fresh one.
        assert_eq!(stored, vec![1_008], "{answers:?}");
        // The writer goes on: a later write is answered and stored.
        store.writer.write(|c| add(c, 2_000)).await.unwrap();
        assert_eq!(stored_dates(&store).await, vec![1_008, 2_000]);
    }

    /// Three jobs; the second, like v3's batch create, goes on with its next item (in a
    /// savepoint of its own) after SQLite rolled the transaction back under it.
    fn batch_after_a_rollback() -> Vec<TestJob<()>> {
        vec![
            Box::new(|c: &Connection| {
                add(c, 1_000)?;
                Ok(())
            }),
            Box::new(|c: &Connection| {
                add(c, 1_001)?;
                // The failure is one item's; the job carries on with the next item.
                assert!(fill(c).is_err());
                c.execute_batch("SAVEPOINT item")?;
                add(c, 1_002)?;
                c.execute_batch("RELEASE item")?;
                Ok(())
            }),
            Box::new(|c: &Connection| {
                add(c, 1_003)?;
                Ok(())
            }),
        ]
    }

    /// The same on a disk that is really nearly full (a small tmpfs; needs root): the job
    /// whose own error hides the cause still makes the others hear 507, not 500.
    #[tokio::test]
    async fn a_lost_group_on_a_nearly_full_disk_is_answered_507() {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return;
        }
        let store = nearly_full_in(dir.path()).await;
        let answers = as_one_group(&store.writer, batch_after_a_rollback()).await;
        drop(store);
        // Lazily: the writer thread lets go of the files a moment after the store is dropped.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(dir.path())
            .status();
        let status = |a: &Result<()>| match a {
            Ok(()) => 200,
            Err(e) => actix_web::ResponseError::status_code(e).as_u16(),
        };
        let statuses: Vec<u16> = answers.iter().map(status).collect();
        assert_eq!(statuses, [507, 507, 200], "{answers:?}");
    }

    /// A job that goes on writing after SQLite rolled the transaction back under it (as v3's
    /// batch create does, item after item in savepoints of its own) must not commit anything
    /// on its own: only the writer's COMMIT may.
    #[tokio::test]
    async fn nothing_commits_behind_the_writer_after_a_rollback() {
        let (_dir, store) = nearly_full().await;
        let jobs = batch_after_a_rollback();
        let answers = as_one_group(&store.writer, jobs).await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [false, false, true], "{answers:?}");
        assert_eq!(stored_dates(&store).await, vec![1_003], "{answers:?}");
        // A job's own failure (its savepoint rolled back) still spoils no other job.
        let jobs = vec![
            Box::new(|c: &Connection| {
                add(c, 1_004)?;
                Ok(())
            }) as TestJob<()>,
            Box::new(|c: &Connection| {
                add(c, 1_005)?;
                Err(Error::bad_request("no"))
            }),
            Box::new(|c: &Connection| {
                add(c, 1_006)?;
                Ok(())
            }),
        ];
        let answers = as_one_group(&store.writer, jobs).await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true], "{answers:?}");
        assert_eq!(stored_dates(&store).await, vec![1_003, 1_004, 1_006]);
    }
}
