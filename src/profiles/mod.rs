//! Therapy settings over time: from the stored profile documents and `Profile Switch`
//! treatments, which profile, switch and schedules were in force at any moment. Pure logic
//! over documents already read ([`load`] reads them through `store::profiles`); nothing stored
//! is changed.
//!
//! - [`document`]: the profile document model (store of named profiles, default, schedules);
//! - [`schedule`]: time-of-day schedules and their lookup in the profile's zone;
//! - [`switch`]: a Profile Switch with its durations and timeshift normalised;
//! - [`timeline`]: the rules choosing what is in force ([`effective_at`], [`timeline()`]).
//!
//! Decisions (percentage, timeshift sign, AndroidAPS's ms durations, ties) are documented in
//! docs/api-v4.md.

pub mod document;
pub mod schedule;
pub mod switch;
pub mod timeline;

#[cfg(test)]
mod tests;

pub use document::{Kind, ProfileDoc};
pub use switch::ProfileSwitch;
pub use timeline::{effective_at, timeline, Effective, Segment};

use rusqlite::Connection;

use crate::error::Result;
use crate::store::StoredDoc;

/// The documents and switches that decide what is in force from `from` to `to` (epoch ms,
/// inclusive), read on `conn`: the live profile documents in force in that range, and the live
/// Profile Switch treatments from the newest permanent one at or before `from` (not older than
/// the document in force then) up to `to`. Give them to [`effective_at`] or [`timeline()`]
/// with a `t` (or range) inside `from..=to`.
pub fn load(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<(Vec<ProfileDoc>, Vec<ProfileSwitch>)> {
    let (docs, switches) = load_stored(conn, from, to)?;
    Ok((
        docs.iter().map(ProfileDoc::from_stored).collect(),
        switches.iter().map(ProfileSwitch::from_stored).collect(),
    ))
}

/// [`load`]'s documents and switches as stored (the plugins read values from the documents'
/// own JSON: src/plugins/profile.rs).
pub fn load_stored(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<(Vec<StoredDoc>, Vec<StoredDoc>)> {
    let stored = crate::store::profiles::documents(conn, from, to)?;
    let docs: Vec<ProfileDoc> = stored.iter().map(ProfileDoc::from_stored).collect();
    let floor = timeline::document_at(&docs, from).map_or(i64::MIN, |d| d.mills);
    let switches = crate::store::profiles::switches(conn, floor, from, to, |d| {
        ProfileSwitch::is_permanent(&d.doc)
    })?;
    Ok((stored, switches))
}
