//! State spans: the time ranges in which one state held (a profile, an override, a temporary
//! target, a temp basal, a pump suspension, a sensor session, an activity), derived from the
//! stored treatments and never written back into them (docs/state-spans.md).
//!
//! Pure rules: which treatment feeds which category ([`rules`]) and how a category's events,
//! in time order, become spans ([`derive`]). The store keeps the derived spans up to date on
//! every commit (src/store/spans.rs) so that reads are index lookups.

pub mod adjust;
pub mod derive;
pub mod durations;
pub mod rules;
pub mod status;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

/// The kinds of state a span can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Profile,
    Override,
    TemporaryTarget,
    TempBasal,
    PumpMode,
    PumpConnectivity,
    Sensor,
    Exercise,
    Sleep,
    Illness,
}

/// How the spans of a category relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layering {
    /// The newest event covering a moment is in force; when a temporary one ends, the one it
    /// interrupted holds again (Nightscout's rule for profile switches).
    Stack,
    /// One at a time: a new one ends the one in force (Loop's overrides, AndroidAPS's
    /// temporary targets, temp basals, pump modes, sensor sessions).
    Replace,
    /// Each event is its own span; spans may overlap (activities users record).
    Independent,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Profile,
        Category::Override,
        Category::TemporaryTarget,
        Category::TempBasal,
        Category::PumpMode,
        Category::PumpConnectivity,
        Category::Sensor,
        Category::Exercise,
        Category::Sleep,
        Category::Illness,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Profile => "Profile",
            Category::Override => "Override",
            Category::TemporaryTarget => "TemporaryTarget",
            Category::TempBasal => "TempBasal",
            Category::PumpMode => "PumpMode",
            Category::PumpConnectivity => "PumpConnectivity",
            Category::Sensor => "Sensor",
            Category::Exercise => "Exercise",
            Category::Sleep => "Sleep",
            Category::Illness => "Illness",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn layering(self) -> Layering {
        match self {
            Category::Profile => Layering::Stack,
            Category::Exercise | Category::Sleep | Category::Illness => Layering::Independent,
            _ => Layering::Replace,
        }
    }
}

/// A treatment as the derivation reads it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Storage order: of two events in the same millisecond the later stored one wins.
    pub seq: i64,
    pub mills: i64,
    /// The treatment's identifier (API v3), else its `_id`.
    pub origin: String,
    pub doc: Map<String, Value>,
}

/// One span. `end` is exclusive; None while it holds with no end in sight.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Deterministic: the same treatments always give the same ids.
    pub id: String,
    pub category: Category,
    pub state: String,
    pub start: i64,
    pub end: Option<i64>,
    /// Which client recorded it ("Loop", "AAPS", "Trio", "xDrip+", "careportal", ...).
    pub source: String,
    pub metadata: Map<String, Value>,
    /// The identifier (or `_id`) of the treatment it comes from.
    pub origin: String,
    /// The origin's storage order (what the store maintains spans by).
    pub origin_seq: i64,
    /// Whether the origin is a treatment or (a run of) device statuses.
    pub origin_kind: OriginKind,
    /// The span that ended this one early by starting, and when.
    pub superseded_by: Option<String>,
    pub superseded_at: Option<i64>,
    /// The treatment that ended this one early without a span of its own (a cancel, a resume,
    /// a sensor stop).
    pub ended_by: Option<String>,
    /// A span from device statuses that a span from treatments of the same category overlaps:
    /// that span's id. Kept, but not listed (the treatment is the record).
    pub shadowed_by: Option<String>,
}

/// Where a span comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    Treatment,
    /// A run of consecutive device statuses of one device reporting the same state.
    DeviceStatus,
}

impl OriginKind {
    pub fn name(self) -> &'static str {
        match self {
            OriginKind::Treatment => "treatment",
            OriginKind::DeviceStatus => "devicestatus",
        }
    }

    pub fn from_name(name: &str) -> Option<OriginKind> {
        [OriginKind::Treatment, OriginKind::DeviceStatus]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

impl Span {
    /// In force at `t` (`start <= t < end`).
    pub fn covers(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }
}

/// What became of a span, as of a moment: the overrides' and adjustments' `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// In force at that moment.
    Active,
    /// Ended early by a newer span starting.
    Superseded,
    /// Ended early by a cancel (a treatment without a span of its own).
    Cancelled,
    /// Starts later.
    Scheduled,
    /// Ran its course.
    Expired,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Active,
        Status::Superseded,
        Status::Expired,
        Status::Cancelled,
        Status::Scheduled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Superseded => "superseded",
            Status::Cancelled => "cancelled",
            Status::Scheduled => "scheduled",
            Status::Expired => "expired",
        }
    }

    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The status of `s` at `now` (store::spans selects by the same rules in SQL).
    pub fn of(s: &Span, now: i64) -> Status {
        if s.superseded_by.is_some() {
            Status::Superseded
        } else if s.ended_by.is_some() {
            Status::Cancelled
        } else if s.start > now {
            Status::Scheduled
        } else if s.covers(now) {
            Status::Active
        } else {
            Status::Expired
        }
    }
}
