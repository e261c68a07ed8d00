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
use crate::error::{Error, Result};
use crate::store::Collection;

/// Runs the sync once (after forgetting where it stood with the site, with `forget`); the
/// report, or the failure's message (never a credential). A run that fails on a network
/// error, a 5xx or a 429 is run again (it goes on from where the last stopped): 4 runs at
/// most, 0.5 s doubling apart or as the site's Retry-After asks (crate::remote::retrying).
pub fn run(data_dir: &Path, settings: SyncSettings, mode: Mode, forget: bool) -> Result<Report> {
    let (_lock, store) = crate::import::open(data_dir)?;
    let key = settings.remote_key().to_string();
    let clock: Arc<dyn crate::connect::Clock> = Arc::new(crate::connect::SystemClock);
    let http = crate::connect::http::Http::new(clock.clone(), crate::import::from_site::TIMEOUT_MS)
        .map_err(Error::Internal)?;
    let engine = Engine::new(settings, store.clone(), http, clock);
    let line = Line::new();
    let outcome = actix_web::rt::System::new().block_on(async {
        if forget {
            store
                .write(move |conn| crate::store::sync::forget(conn, &key))
                .await?;
        }
        crate::remote::retrying(4, 500, || async {
            let run = engine.run(mode, &line).await;
            line.end();
            run
        })
        .await
        .map_err(|e| Error::Internal(e.message))
    });
    outcome
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
