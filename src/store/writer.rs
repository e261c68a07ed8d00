//! The single writer: one thread owns the write connection and group-commits. Every job waiting
//! in its queue goes into one transaction (one fsync); each job runs in its own savepoint so a
//! failing job changes nothing and does not spoil the others; a job's caller hears back only
//! after the transaction has committed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::changes::{self, Bus};
use crate::error::{Error, Result};

/// Called once the group's commit is known (Ok) or has failed (Err with its message).
type Reply = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

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
            let result = in_savepoint(conn, f);
            Box::new(move |commit| {
                let out = match commit {
                    Ok(()) => result,
                    Err(msg) => Err(Error::Internal(format!("commit failed: {msg}"))),
                };
                let _ = done_tx.send(out);
            })
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
    match result {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rb) = conn.execute_batch("ROLLBACK TO job; RELEASE job") {
                tracing::error!(error = %rb, "rollback of a failed write failed");
            }
            Err(e)
        }
    }
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
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs closes their reply channels, so each caller gets an error.
            tracing::error!(error = %e, jobs = jobs.len(), "cannot begin a write transaction");
            continue;
        }
        let replies: Vec<Reply> = jobs.into_iter().map(|job| job(&conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if let Err(msg) = &commit {
            tracing::error!(error = %msg, "group commit failed; rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
        if commit.is_ok() {
            publish(&conn, &bus);
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
    tracing::debug!("writer stopped");
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
