//! Sync with another Nightscout-compatible site (issue 20, docs/sync.md): `state.rs` (the
//! protocol's states and transitions), `engine.rs` (one run: check, download, resolve,
//! upload), `integrity.rs` (do both sides hold the same after a run), `check.rs` (`nightlite
//! sync --direction check`: compare, change nothing), `service.rs` (SYNC_URL: the runs' triggers,
//! retries, history and status), `storage_events.rs` (the site's change events as a trigger).

pub mod check;
pub mod engine;
pub mod integrity;
pub mod service;
pub mod state;
mod storage_events;
