//! The bridges (nightscout-connect's job, built in): one task per source named in
//! CONNECT_SOURCE fetches readings from a vendor's cloud and writes them through
//! src/documents/ like any upload (identity, dedup, srvModified, the change bus).
//! docs/bridges.md is the user's side; research/bridges.md the wire formats.
//!
//! - `engine.rs`: the [`engine::Source`] trait and the loop (session, gap, fetch, store)
//! - `session.rs`: single-flight login, reuse, invalidation
//! - `errors.rs`: the four error classes; `schedule.rs`: alignment, back-off, throttles
//! - `http.rs`: outbound HTTPS with deadlines on the clock; `clock.rs`: real and test time
//! - `status.rs`: what `GET /api/v4/bridges` shows
//! - one file per vendor: `dexcom.rs` (Dexcom Share), `libre.rs` (LibreLinkUp), `glooko.rs`,
//!   `tandem.rs` (Tandem Source; its events in `tandem_events.rs`), `nightscout.rs` (another
//!   Nightscout, through src/remote/), `carelink.rs` (Medtronic CareLink; its imported
//!   tokens in `carelink_tokens.rs`)
//! - `output.rs`: CONNECT_OUTPUT, uploads to a remote Nightscout

mod carelink;
mod carelink_tokens;
pub mod clock;
mod dexcom;
mod engine;
pub(crate) mod errors;
mod glooko;
pub(crate) mod http;
mod libre;
mod nightscout;
mod output;
pub(crate) mod schedule;
mod session;
pub mod status;
mod tandem;
mod tandem_events;

use std::sync::Arc;

use crate::config::bridges::{Bridges, SourceSettings};
use crate::store::Store;
pub use clock::{Clock, ManualClock, SystemClock};
use errors::SourceError;
pub use status::Board;

/// How long a request may take before it counts as a transient error.
const REQUEST_TIMEOUT_MS: i64 = 30_000;

/// The status board with a row per configured source, all idle; sources not built yet are
/// marked stopped there at once.
pub fn board(settings: &Bridges) -> Board {
    let board = Board::default();
    for s in &settings.sources {
        match s {
            SourceSettings::DexcomShare(_) => board.add("dexcomshare", dexcom::DEVICE),
            SourceSettings::LinkUp(_) => board.add("linkup", libre::DEVICE),
            SourceSettings::Glooko(_) => board.add("glooko", glooko::DEVICE),
            SourceSettings::Tandem(_) => board.add("tandem", tandem::DEVICE),
            SourceSettings::Nightscout(_) => board.add("nightscout", nightscout::DEVICE),
            SourceSettings::Carelink(_) => board.add("minimedcarelink", carelink::DEVICE),
        };
    }
    for name in &settings.not_built {
        let row = board.add(name, "");
        row.update(|r| {
            r.state = status::State::Stopped;
            r.last_error = Some((
                crate::dates::now_ms(),
                SourceError::fatal("this source is not available in this version of nightlite"),
            ));
        });
        tracing::warn!(source = %name, "CONNECT_SOURCE: not available in this version; ignored");
    }
    // The output's row comes last (spawn relies on it).
    if settings.output.is_some() {
        board.add(output::NAME, output::NAME);
    }
    board
}

/// Starts one task per configured source on the current (actix) runtime, each updating its
/// row of `board` (made by [`board`] from the same settings). The caller aborts the tasks at
/// shutdown.
pub fn spawn(
    settings: &Bridges,
    store: &Store,
    clock: Arc<dyn Clock>,
    board: &Board,
) -> Vec<tokio::task::JoinHandle<()>> {
    let rows = board.rows();
    let mut tasks = Vec::new();
    for (s, row) in settings.sources.iter().zip(rows) {
        let http = match http::Http::new(clock.clone(), REQUEST_TIMEOUT_MS) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("bridges: {e}");
                return tasks;
            }
        };
        let (store, clock) = (store.clone(), clock.clone());
        let task = match s {
            SourceSettings::DexcomShare(d) => {
                let e = engine::Engine::new(dexcom::Dexcom::new(d), http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
            SourceSettings::LinkUp(l) => {
                let e = engine::Engine::new(libre::Libre::new(l), http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
            SourceSettings::Glooko(g) => {
                let e = engine::Engine::new(glooko::Glooko::new(g), http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
            SourceSettings::Tandem(t) => {
                let e = engine::Engine::new(tandem::Tandem::new(t), http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
            SourceSettings::Carelink(c) => {
                let e = engine::Engine::new(carelink::Carelink::new(c), http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
            SourceSettings::Nightscout(n) => {
                // The source's requests go through src/remote/ with a client of their own.
                let remote_http = match http::Http::new(clock.clone(), REQUEST_TIMEOUT_MS) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!("bridges: {e}");
                        return tasks;
                    }
                };
                let source = nightscout::Nightscout::new(n, remote_http, clock.clone());
                let e = engine::Engine::new(source, http, clock, store, row);
                actix_web::rt::spawn(e.run())
            }
        };
        tasks.push(task);
    }
    if let (Some(site), Some(row)) = (&settings.output, board.rows().pop()) {
        match http::Http::new(clock.clone(), REQUEST_TIMEOUT_MS) {
            Ok(h) => {
                let o = output::Output::new(site, h, clock, store.clone(), row);
                tasks.push(actix_web::rt::spawn(o.run()));
            }
            Err(e) => tracing::error!("bridges: {e}"),
        }
    }
    tasks
}

/// `nightlite bridge`: the bridges and the output on the data directory, without the HTTP
/// server, until `stop` completes. Errors name what could not be opened.
pub async fn run_alone(
    config: &crate::Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    if config.bridges.sources.is_empty() && config.bridges.output.is_none() {
        return Err("CONNECT_SOURCE names no source and CONNECT_OUTPUT is unset".into());
    }
    // As `serve`: one process per data directory.
    let _lock = crate::store::lock::DataDirLock::try_acquire(&config.data_dir)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "another nightlite is using the data directory {}",
                config.data_dir.display()
            )
        })?;
    let store = Store::open(&config.data_dir).map_err(|e| e.to_string())?;
    let board = board(&config.bridges);
    let tasks = spawn(&config.bridges, &store, Arc::new(SystemClock), &board);
    tracing::info!(tasks = tasks.len(), "nightlite bridge: running");
    stop.await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}
