//! The single writer: one thread owns the write connection and group-commits. Every job waiting
//! in its queue goes into one transaction (one fsync); each job runs in its own savepoint so a
//! failing job changes nothing and does not spoil the others; a job's caller hears back only
//! after the transaction has committed.
//!
//! Some errors (SQLITE_FULL on a statement without a statement journal, any I/O error) make
//! SQLite roll back the whole transaction, not just the job's savepoint. The writer notices
//! (the connection is back in autocommit mode), answers every job of that transaction with the
//! cause (507 for a full disk: nothing of theirs was kept) and runs the jobs still waiting in a
//! fresh transaction, so no job runs outside a transaction and every answer says what is on
//! disk.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

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
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("nightlite-writer".into())
            .spawn(move || run(conn, rx, bus))?;
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

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>, bus: Bus) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        run_group(&conn, jobs, &bus);
    }
    tracing::debug!("writer stopped");
}

/// Runs the jobs in one transaction, or in several when SQLite rolls one back under a job.
fn run_group(conn: &Connection, jobs: Vec<Job>, bus: &Bus) {
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
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
            let ran = job(Some(conn));
            replies.push(ran.reply);
            if conn.is_autocommit() {
                lost = Some(ran.failed.unwrap_or_else(|| Lost {
                    disk_full: false,
                    cause: "the transaction ended inside a write".into(),
                }));
                break;
            }
        }
        let lost = match lost {
            Some(lost) => {
                tracing::error!(error = %lost.cause, jobs = replies.len(),
                    "SQLite rolled back a group transaction; its writes are answered as failed");
                Some(lost)
            }
            None => commit(conn),
        };
        if lost.is_none() {
            publish(conn, bus);
        }
        for reply in replies {
            reply(lost.as_ref());
        }
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
    Some(Lost::of_sqlite(&e))
}

/// Hands what the commit changed to the live layer (before the writers hear back, so a client
/// that reads right after its write sees the delta already sent). Nobody listening: forget it.
fn publish(conn: &Connection, bus: &Bus) {
    let result = if bus.receiver_count() == 0 {
        changes::clear(conn)
    } else {
        changes::drain(conn).map(|set| {
            if !set.changes.is_empty() {
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

    /// An entry; `big` adds a 1 MB row to a table without triggers or unique keys, whose
    /// single-row INSERT has no statement journal: SQLITE_FULL there rolls back the whole
    /// transaction, as a full disk does when a write of the WAL fails.
    async fn insert(w: Writer, date: i64, big: bool) -> Result<String> {
        let doc = entry(date);
        w.write(move |c| {
            let (id, _, _) =
                upsert::insert_row(c, Collection::Entries, None, &doc, date, 0, false)?;
            if big {
                c.execute("INSERT INTO filler VALUES (zeroblob(1048576))", [])?;
            }
            Ok(id)
        })
        .await
    }

    /// SQLite answers SQLITE_FULL (here: the database may not grow past max_page_count) in the
    /// middle of a group: every answer must say what the database holds afterwards.
    #[tokio::test]
    async fn a_full_disk_mid_group_answers_each_job_as_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Room for the small writes, never for a 1 MB document.
        store
            .writer
            .write(|c| {
                c.execute_batch("CREATE TABLE filler (b BLOB)")?;
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.query_row(
                    &format!("PRAGMA max_page_count = {}", pages + 64),
                    [],
                    |_| Ok(()),
                )?;
                Ok(())
            })
            .await
            .unwrap();
        // Hold the writer so that the jobs below queue and go into one group.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let w = store.writer.clone();
        let hold = tokio::spawn(async move {
            w.write(move |_| {
                let _ = held.recv();
                Ok(())
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut jobs = Vec::new();
        for i in 0..9i64 {
            let big = i % 3 == 1;
            jobs.push((
                i,
                tokio::spawn(insert(store.writer.clone(), 1_000 + i, big)),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        hold.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for (i, job) in jobs {
            answers.push((i, job.await.unwrap()));
        }
        let stored: Vec<i64> = store
            .read(|c| {
                let mut s = c.prepare("SELECT mills FROM entries ORDER BY mills")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        for (i, answer) in &answers {
            let is_stored = stored.contains(&(1_000 + i));
            assert_eq!(
                answer.is_ok(),
                is_stored,
                "job {i}: {answer:?}, stored: {stored:?}"
            );
        }
        for (i, answer) in &answers {
            if let Err(e) = answer {
                let status = actix_web::ResponseError::status_code(e).as_u16();
                assert_eq!(status, 507, "job {i}: {e:?}");
            }
        }
        let failed = answers.iter().filter(|(_, a)| a.is_err()).count();
        assert!(failed >= 3, "the big writes cannot fit: {answers:?}");
        assert!(
            !stored.is_empty(),
            "a small write after the last big one fits: {answers:?}"
        );
        // The writer goes on: a write after the full disk is answered and stored.
        insert(store.writer.clone(), 2_000, false).await.unwrap();
    }
}
