//! What each bridge is doing, for `GET /api/v4/bridges` and the log: its state, last success,
//! last error (class and a message without secrets), next poll and counters. Each source's
//! task writes its own row; readers take a copy.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::errors::SourceError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the next poll.
    Idle,
    LoggingIn,
    Polling,
    /// Waiting longer than usual after an error or a throttle.
    BackingOff,
    /// A fatal error: no more requests until the settings change and the server restarts.
    Stopped,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::LoggingIn => "logging in",
            State::Polling => "polling",
            State::BackingOff => "backing off",
            State::Stopped => "stopped: fatal",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub logins: u64,
    pub fetches: u64,
    /// Documents inserted or changed.
    pub stored: u64,
    /// Documents fetched again that were already stored as they are.
    pub duplicates: u64,
    /// Documents the store refused (each refusal, so one fetched again is counted again).
    pub refused: u64,
}

#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// The CONNECT_SOURCE name (`dexcomshare`).
    pub source: String,
    /// The `device` its documents carry.
    pub device: String,
    pub state: State,
    pub last_success: Option<i64>,
    pub last_error: Option<(i64, SourceError)>,
    pub next_poll: Option<i64>,
    pub counters: Counters,
}

impl SourceStatus {
    pub fn to_json(&self) -> Value {
        let iso = |t: Option<i64>| t.map(crate::dates::to_iso);
        json!({
            "source": self.source,
            "device": self.device,
            "state": self.state.name(),
            "lastSuccess": self.last_success,
            "lastSuccessString": iso(self.last_success),
            "lastError": self.last_error.as_ref().map(|(at, e)| json!({
                "class": e.class.name(),
                "message": e.message,
                "at": at,
                "atString": crate::dates::to_iso(*at),
            })),
            "nextPoll": self.next_poll,
            "nextPollString": iso(self.next_poll),
            "counters": {
                "logins": self.counters.logins,
                "fetches": self.counters.fetches,
                "stored": self.counters.stored,
                "duplicates": self.counters.duplicates,
                "refused": self.counters.refused,
            },
        })
    }
}

impl SourceStatus {
    /// The short form `/api/v1/status.json` carries: what a viewer's pill needs.
    pub fn summary_json(&self) -> Value {
        json!({
            "source": self.source,
            "state": self.state.name(),
            "lastSuccess": self.last_success,
            "lastError": self.last_error.as_ref().map(|(at, e)| json!({
                "class": e.class.name(),
                "message": e.message,
                "at": at,
            })),
        })
    }
}

/// Every bridge's row, shared between the tasks and the status route.
#[derive(Debug, Clone, Default)]
pub struct Board {
    rows: Arc<Mutex<Vec<SourceStatus>>>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SourceStatus>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a row for `source`; returns its handle.
    pub fn add(&self, source: &str, device: &str) -> Row {
        let mut rows = self.lock();
        rows.push(SourceStatus {
            source: source.to_string(),
            device: device.to_string(),
            state: State::Idle,
            last_success: None,
            last_error: None,
            next_poll: None,
            counters: Counters::default(),
        });
        Row {
            board: self.clone(),
            index: rows.len() - 1,
        }
    }

    /// A handle on every row, in order.
    pub fn rows(&self) -> Vec<Row> {
        (0..self.lock().len())
            .map(|index| Row {
                board: self.clone(),
                index,
            })
            .collect()
    }

    pub fn snapshot(&self) -> Vec<SourceStatus> {
        self.lock().clone()
    }
}

/// One source's row, for its task to update.
#[derive(Debug, Clone)]
pub struct Row {
    board: Board,
    index: usize,
}

impl Row {
    pub fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        if let Some(row) = self.board.lock().get_mut(self.index) {
            f(row);
        }
    }

    /// After a poll that succeeded at `now`; the next is at `next`.
    pub fn succeeded(&self, now: i64, next: i64) {
        self.update(|r| {
            r.state = State::Idle;
            r.last_success = Some(now);
            r.next_poll = Some(next);
        });
    }

    /// After a failed poll at `now`: backing off until `next`, or stopped (None) for good.
    pub fn failed(&self, now: i64, e: SourceError, next: Option<i64>) {
        self.update(|r| {
            r.state = if next.is_some() {
                State::BackingOff
            } else {
                State::Stopped
            };
            r.next_poll = next;
            r.last_error = Some((now, e));
        });
    }

    pub fn get(&self) -> Option<SourceStatus> {
        self.board.lock().get(self.index).cloned()
    }
}
