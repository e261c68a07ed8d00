//! Sync with another Nightscout-compatible site (issue 20, docs/sync.md). Built so far: only
//! `nightlite sync --direction check`, which compares without changing either side.

pub mod check;
