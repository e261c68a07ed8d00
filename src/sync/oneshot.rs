//! `nightlite sync --url URL --direction upload|download|both`: one run of the engine on a
//! stopped server's database (the data directory is locked, as `import` locks it), with a
//! progress line on stderr: rewritten in place on a terminal, a line every 10 seconds in a
//! log.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::engine::{Engine, Report, Watch};
use super::state::State;
use crate::config::sync::{Mode, SyncSettings};
use crate::connect::errors::ErrorClass;
use crate::error::{Error, Result};
use crate::store::Collection;

/// Runs the sync once (after forgetting where it stood with the site, with `forget`); the
/// report, or the failure's message (never a credential).
pub fn run(data_dir: &Path, settings: SyncSettings, mode: Mode, forget: bool) -> Result<Report> {
    let (_lock, store) = crate::import::open(data_dir)?;
    if forget {
        let key = settings.remote_key().to_string();
        actix_web::rt::System::new()
            .block_on(store.write(move |conn| crate::store::sync::forget(conn, &key)))?;
    }
    let clock: Arc<dyn crate::connect::Clock> = Arc::new(crate::connect::SystemClock);
    let http = crate::connect::http::Http::new(clock.clone(), crate::import::from_site::TIMEOUT_MS)
        .map_err(Error::Internal)?;
    let engine = Engine::new(settings, store, http, clock);
    let line = Line::new();
    let outcome = actix_web::rt::System::new().block_on(async {
        let mut attempt = 0;
        loop {
            match engine.run(mode, &line).await {
                // A run goes on from where the last stopped: after a network error, a 5xx or
                // a 429, the whole run again, a few times, waiting longer each time (a
                // Retry-After as the site asks, at most a minute).
                Err(e)
                    if attempt + 1 < ATTEMPTS
                        && matches!(e.class, ErrorClass::Transient | ErrorClass::Throttle) =>
                {
                    attempt += 1;
                    let wait = e
                        .retry_after_ms
                        .unwrap_or(500 << (attempt - 1))
                        .clamp(0, 60_000);
                    line.end();
                    eprintln!("{}; trying again in {} s", e.message, wait / 1000);
                    actix_web::rt::time::sleep(Duration::from_millis(
                        u64::try_from(wait).unwrap_or(0) + jitter_ms(),
                    ))
                    .await;
                }
                other => return other,
            }
        }
    });
    line.end();
    outcome.map_err(|e| Error::Internal(e.message))
}

/// Runs tried at most (the first and its retries).
const ATTEMPTS: u32 = 4;

/// Up to half a second more, so many appliances failing together do not retry together.
fn jitter_ms() -> u64 {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    u64::from(u16::from_le_bytes(b)) % 500
}

/// The progress line.
struct Line {
    terminal: bool,
    at: Mutex<(State, Option<Collection>, u64, Option<Instant>)>,
}

impl Line {
    fn new() -> Line {
        Line {
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            at: Mutex::new((State::Idle, None, 0, None)),
        }
    }

    fn show(&self, force: bool) {
        let Ok(mut at) = self.at.lock() else { return };
        let every = if self.terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        if !force && at.3.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        at.3 = Some(Instant::now());
        let what = match at.1 {
            Some(c) => format!("{}: {} {}", at.0, c.table(), at.2),
            None => at.0.to_string(),
        };
        let mut err = std::io::stderr();
        let _ = if self.terminal {
            write!(err, "\r\x1b[K{what}")
        } else {
            writeln!(err, "{what}")
        };
    }

    fn end(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl Watch for Line {
    fn state(&self, state: State) {
        if let Ok(mut at) = self.at.lock() {
            *at = (state, None, 0, None);
        }
        self.show(true);
    }

    fn progress(&self, coll: Collection, done: u64) {
        if let Ok(mut at) = self.at.lock() {
            at.1 = Some(coll);
            at.2 = done;
        }
        self.show(false);
    }
}
