//! Sync with another Nightscout-compatible site (issue 20, docs/sync.md): `state.rs` (the
//! protocol's states and transitions), `engine.rs` (one run: check, then `download.rs`,
//! `resolve.rs` and `settle.rs`, `upload.rs`), `content.rs` (identity and content hash),
//! `integrity.rs` (do both sides hold the same after a run), `oneshot.rs` (`nightlite sync
//! --direction both|upload|download`), `check.rs` (`--direction check`: compare, change
//! nothing), `service.rs` (SYNC_URL: the runs' triggers, retries, history and status),
//! `storage_events.rs` (the site's change events as a trigger).

pub mod check;
pub mod content;
mod download;
pub mod engine;
pub mod integrity;
pub mod oneshot;
pub mod resolve;
pub mod service;
mod settle;
pub mod state;
mod storage_events;
mod upload;
