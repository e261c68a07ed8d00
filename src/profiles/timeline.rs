//! Which settings were in force when: the profile document, the switch and the profile it
//! names, and the schedules after the switch's percentage and timeshift.
//!
//! The rules (docs/api-v4.md, "Decisions"):
//! - the document in force at T is the newest with `startDate <= T` (later stored wins a tie);
//!   before the first document, the first document;
//! - a switch counts at T if it started at or before T, not before that document's start
//!   (a new document resets to its `defaultProfile`, as in Nightscout), and its duration (if
//!   any) has not run out; of those the latest start wins, a tie going to the later stored.
//!   So when a temporary switch ends, the switch in force before it applies again;
//! - the profile is the switch's `profileJson` when it holds one, else the store's profile of
//!   the switch's `profile` name, else of its `originalProfileName`, else the default profile.

use super::document::{Kind, Profile, ProfileDoc};
use super::schedule::{Schedule, Zone};
use super::switch::ProfileSwitch;

/// Where the profile in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSource {
    /// The document's `defaultProfile` (no switch, or one naming no known profile).
    Default,
    /// The document's store, under the switch's name.
    Store,
    /// The switch's own `profileJson`.
    ProfileJson,
}

impl ProfileSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileSource::Default => "defaultProfile",
            ProfileSource::Store => "store",
            ProfileSource::ProfileJson => "profileJson",
        }
    }
}

/// The choice at one moment, borrowing from the inputs.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub doc: &'a ProfileDoc,
    pub switch: Option<&'a ProfileSwitch>,
    /// The name of the profile in force: a store key, or the switch's `profile`.
    pub name: &'a str,
    pub profile: Option<&'a Profile>,
    pub source: ProfileSource,
}

impl Selection<'_> {
    /// Whether two selections are the same settings (for merging timeline segments).
    fn same(&self, o: &Selection) -> bool {
        self.doc.id == o.doc.id
            && self.switch.map(|s| &s.id) == o.switch.map(|s| &s.id)
            && self.source == o.source
            && self.name == o.name
    }
}

/// The document in force at `t`.
pub fn document_at(docs: &[ProfileDoc], t: i64) -> Option<&ProfileDoc> {
    let key = |d: &&ProfileDoc| (d.mills, d.seq);
    docs.iter()
        .filter(|d| d.mills <= t)
        .max_by_key(key)
        .or_else(|| docs.iter().min_by_key(key))
}

/// The profile document, switch and profile in force at `t`; None without documents.
pub fn select<'a>(
    docs: &'a [ProfileDoc],
    switches: &'a [ProfileSwitch],
    t: i64,
) -> Option<Selection<'a>> {
    let doc = document_at(docs, t)?;
    let switch = switches
        .iter()
        .filter(|s| s.mills >= doc.mills && s.covers(t))
        .max_by_key(|s| (s.mills, s.seq));
    let by_name = |name: Option<&'a String>| {
        let name = name?;
        doc.profile(name).map(|p| (name.as_str(), p))
    };
    let chosen = switch.and_then(|s| match (&s.profile_json, &s.profile) {
        (Some(p), Some(name)) => Some((name.as_str(), Some(p), ProfileSource::ProfileJson)),
        (Some(p), None) => Some((
            s.original_profile_name.as_deref().unwrap_or(""),
            Some(p),
            ProfileSource::ProfileJson,
        )),
        _ => by_name(s.profile.as_ref())
            .or_else(|| by_name(s.original_profile_name.as_ref()))
            .map(|(n, p)| (n, Some(p), ProfileSource::Store)),
    });
    let (name, profile, source) = chosen.unwrap_or_else(|| {
        (
            doc.default_profile.as_str(),
            doc.profile(&doc.default_profile),
            ProfileSource::Default,
        )
    });
    Some(Selection {
        doc,
        switch,
        name,
        profile,
        source,
    })
}

/// The settings in force at one moment, schedules already adjusted.
#[derive(Debug, Clone)]
pub struct Effective {
    pub at: i64,
    pub document_id: String,
    pub document_start: i64,
    pub default_profile: String,
    pub profile_name: String,
    pub profile_source: ProfileSource,
    pub switch: Option<ProfileSwitch>,
    /// Applied percentage (100 without a switch).
    pub percentage: f64,
    /// Applied timeshift, ms (0 without a switch).
    pub timeshift_ms: i64,
    pub units: Option<String>,
    /// The profile's `timezone` as stored.
    pub timezone: Option<String>,
    /// The zone the schedules are read in.
    pub zone: Zone,
    pub dia: Option<f64>,
    /// Per [`Kind`], in [`Kind::ALL`] order: basal × p/100, carb ratio and sensitivity ×
    /// 100/p, targets unscaled; all moved by the timeshift. Times are local wall-clock times
    /// in [`Effective::zone`].
    pub schedules: [Option<Schedule>; 5],
}

impl Effective {
    pub fn schedule(&self, kind: Kind) -> Option<&Schedule> {
        self.schedules[kind as usize].as_ref()
    }

    /// The value of `kind` at `t`, under this selection (valid while it is in force).
    pub fn value_at(&self, kind: Kind, t: i64) -> Option<f64> {
        Some(self.schedule(kind)?.value_at(self.zone.seconds_of_day(t)))
    }

    /// The value of `kind` at [`Effective::at`].
    pub fn value(&self, kind: Kind) -> Option<f64> {
        self.value_at(kind, self.at)
    }
}

/// The effective profile at `t` (epoch ms): which document, switch and profile are in force
/// and the schedules with the switch's percentage and timeshift applied. `docs` are the live
/// profile documents and `switches` the live `Profile Switch` treatments, in any order
/// ([`ProfileDoc::from_stored`], [`ProfileSwitch::from_stored`]); switches that cannot matter
/// at `t` may be left out (those starting after `t` or before the newest permanent switch at
/// or before `t`). None when there is no profile document.
pub fn effective_at(docs: &[ProfileDoc], switches: &[ProfileSwitch], t: i64) -> Option<Effective> {
    let sel = select(docs, switches, t)?;
    let (percentage, timeshift_ms) = sel
        .switch
        .map_or((100.0, 0), |s| (s.percentage, s.timeshift_ms));
    let default = sel.doc.profile(&sel.doc.default_profile);
    let profile = sel.profile;
    let field = |f: fn(&Profile) -> Option<&String>| {
        profile.and_then(f).or_else(|| default.and_then(f)).cloned()
    };
    let timezone = field(|p| p.timezone.as_ref());
    let units = field(|p| p.units.as_ref()).or_else(|| sel.doc.units.clone());
    let shift_secs = timeshift_ms / 1000;
    let schedules = Kind::ALL.map(|k| {
        let s = profile?.schedule(k)?;
        let factor = match k {
            Kind::Basal => percentage / 100.0,
            Kind::CarbRatio | Kind::Sens => 100.0 / percentage,
            Kind::TargetLow | Kind::TargetHigh => 1.0,
        };
        Some(s.scaled(factor).shifted(shift_secs))
    });
    Some(Effective {
        at: t,
        document_id: sel.doc.id.clone(),
        document_start: sel.doc.mills,
        default_profile: sel.doc.default_profile.clone(),
        profile_name: sel.name.to_string(),
        profile_source: sel.source,
        switch: sel.switch.cloned(),
        percentage,
        timeshift_ms,
        units,
        zone: Zone::resolve(timezone.as_deref()),
        timezone,
        dia: profile
            .and_then(|p| p.dia)
            .or_else(|| default.and_then(|p| p.dia)),
        schedules,
    })
}

/// A stretch of time with one selection.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    pub start: i64,
    /// Exclusive.
    pub end: i64,
    pub selection: Selection<'a>,
}

/// The selections in force from `from` to `to` (exclusive), cut at every document start,
/// switch start and switch end inside the range, neighbours with the same selection merged.
/// The first segment starts at `from` and the last ends at `to`.
pub fn timeline<'a>(
    docs: &'a [ProfileDoc],
    switches: &'a [ProfileSwitch],
    from: i64,
    to: i64,
) -> Vec<Segment<'a>> {
    let inside = |t: i64| t > from && t < to;
    let mut cuts: Vec<i64> = std::iter::once(from)
        .chain(docs.iter().map(|d| d.mills).filter(|t| inside(*t)))
        .chain(switches.iter().map(|s| s.mills).filter(|t| inside(*t)))
        .chain(
            switches
                .iter()
                .filter_map(ProfileSwitch::end)
                .filter(|t| inside(*t)),
        )
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Segment> = Vec::new();
    for (i, &start) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).copied().unwrap_or(to);
        let Some(selection) = select(docs, switches, start) else {
            continue;
        };
        match out.last_mut() {
            Some(prev) if prev.selection.same(&selection) => prev.end = end,
            _ => out.push(Segment {
                start,
                end,
                selection,
            }),
        }
    }
    out
}
