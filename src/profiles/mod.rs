//! Therapy settings over time: from the stored profile documents and `Profile Switch`
//! treatments, which profile, switch and schedules were in force at any moment. Pure logic
//! over documents already read (`store::profiles` reads them); nothing stored is changed.
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

pub use document::{Kind, Profile, ProfileDoc};
pub use schedule::{Schedule, Zone};
pub use switch::ProfileSwitch;
pub use timeline::{effective_at, timeline, Effective, ProfileSource, Segment, Selection};
