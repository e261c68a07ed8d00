//! Sync with another Nightscout-compatible site (issue 20, docs/sync.md): `state.rs` (the
//! protocol's states and transitions), `engine.rs` (one run: check, then `download.rs`,
//! `resolve.rs`, `upload.rs`), `content.rs` (identity and content hash), `integrity.rs` (do
//! both sides hold the same after a run), `check.rs` (`nightlite sync --direction check`:
//! compare, change nothing).

pub mod check;
pub mod content;
mod download;
pub mod engine;
pub mod integrity;
pub mod oneshot;
pub mod resolve;
mod settle;
pub mod state;
mod upload;
