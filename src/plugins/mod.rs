//! Nightscout's treatment-math plugins (lib/plugins/ar2.js, iob.js, cob.js, basalprofile.js,
//! boluswizardpreview.js): forecasts and on-board amounts computed from readings, treatments
//! and the profile. Each is a pure function of its inputs; where the profile values come from
//! is the caller's business ([`profile::ProfileFn`]).
//!
//! [`extend`] adds their properties to the ones `crate::live::properties::compute` made, in
//! Nightscout's plugin order.

pub mod ar2;
pub mod basal;
pub mod bwp;
pub mod cob;
pub mod iob;
pub mod profile;
pub mod settings;
#[cfg(test)]
mod testing;

use serde_json::Value;

use crate::config::{Thresholds, Units};
use crate::live::properties::Doc;
use crate::Config;
pub use profile::{Field, ProfileFn};
pub use settings::Settings;

/// Everything the plugins read besides the properties already computed.
pub struct Data<'a> {
    pub now: i64,
    pub units: Units,
    pub thresholds: Thresholds,
    /// ALARM_HIGH / ALARM_LOW (ar2 names its event only for those that may sound).
    pub alarm_high: bool,
    pub alarm_low: bool,
    pub settings: &'a Settings,
    /// Treatments of Nightscout's window, oldest first, each with its time.
    pub treatments: &'a [(Doc, i64)],
    /// Device statuses, each with its time, as `crate::live::properties::devicestatus` gives.
    pub devicestatus: &'a [(Doc, i64)],
    /// Profile values at a time; `None` without a profile document.
    pub profile: Option<&'a ProfileFn<'a>>,
}

/// Nightscout's server plugin order (lib/plugins/index.js), for the keys of the result.
const ORDER: &[&str] = &[
    "bgnow",
    "delta",
    "buckets",
    "direction",
    "upbat",
    "ar2",
    "iob",
    "cob",
    "pump",
    "openaps",
    "loop",
    "bwp",
    "cage",
    "sage",
    "iage",
    "bage",
    "basal",
    "dbsize",
    "runtimestate",
];

/// Adds `ar2`, `bwp` and `basal` to `props`, and IOB/COB from treatments to `iob`/`cob`,
/// leaving out plugins named in DISABLE.
pub fn extend(props: &mut Doc, d: &Data, disable: &[String]) {
    let on = |p: &str| !disable.iter().any(|x| x == p);
    if on("ar2") {
        let a = ar2::property(props, d);
        props.insert("ar2".into(), Value::Object(a));
    }
    if on("iob") {
        let device = props.get("iob").and_then(Value::as_object).cloned();
        let i = iob::property(d, device.unwrap_or_default());
        props.insert("iob".into(), Value::Object(i));
    }
    if on("cob") {
        let device = props.get("cob").and_then(Value::as_object).cloned();
        let c = cob::property(d, device.unwrap_or_default());
        props.insert("cob".into(), Value::Object(c));
    }
    if on("bwp") {
        let b = bwp::property(d, props);
        props.insert("bwp".into(), Value::Object(b));
    }
    if on("basal") {
        if let Some(b) = basal::property(d) {
            props.insert("basal".into(), Value::Object(b));
        }
    }
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    let mut all: Vec<(String, Value)> = std::mem::take(props).into_iter().collect();
    all.sort_by_key(|(k, _)| rank(k));
    props.extend(all);
}

/// [`extend`] from the documents as read: treatments and device statuses newest first (each
/// with `mills`), the newest profile document.
pub fn extend_with(
    props: &mut Doc,
    config: &Config,
    now: i64,
    treatments: Vec<Doc>,
    devicestatus: &[Doc],
    profile: Option<&Doc>,
) {
    let mut oldest_first: Vec<(Doc, i64)> = treatments
        .into_iter()
        .filter_map(|t| {
            let mills = t.get("mills")?.as_i64()?;
            Some((t, mills))
        })
        .collect();
    oldest_first.reverse();
    // Nightscout sorts its treatments by time (stable: equal times keep their order).
    oldest_first.sort_by_key(|(_, m)| *m);
    let ds = crate::live::properties::devicestatus(devicestatus);
    let doc = profile.map(profile::ProfileDoc::new);
    let lookup = |t: i64, f: Field| doc.as_ref().and_then(|p| profile::profile_at(p, t, f));
    let d = Data {
        now,
        units: config.units,
        thresholds: config.thresholds,
        alarm_high: config.alarms.high,
        alarm_low: config.alarms.low,
        settings: &config.plugins,
        treatments: &oldest_first,
        devicestatus: &ds,
        profile: doc.as_ref().map(|_| &lookup as &ProfileFn),
    };
    extend(props, &d, &config.disable);
}

/// A JavaScript value that may be a number or undefined, read as Nightscout's arithmetic
/// reads it: undefined is NaN.
pub fn or_nan(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// JavaScript truthiness of a number that may be undefined.
pub fn truthy_num(v: Option<f64>) -> bool {
    v.is_some_and(|x| x != 0.0 && !x.is_nan())
}

/// sandbox.roundInsulinForDisplayFormat (the default rounding style): floors to hundredths.
pub fn round_insulin(insulin: f64) -> String {
    if insulin == 0.0 {
        return "0".into();
    }
    crate::jsnum::to_fixed(((insulin * 100.0 + 1e-9).floor()) / 100.0, 2)
}
