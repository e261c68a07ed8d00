//! Nightscout's plugins (lib/plugins/*.js), one file each: the properties (`bgnow`, `delta`,
//! `direction`, `upbat`, `iob`, `cob`, `pump`, `openaps`, `loop`, the ages, `ar2`, `bwp`,
//! `basal`, ...) that /api/v2/properties, /pebble, the alarms and live clients read. Each is a
//! pure function of recent documents; where the documents and the profile values come from is
//! the caller's business ([`profile::ProfileFn`]).
//!
//! Followers decode these objects field by field, so shapes, key order, number formatting and
//! rounding follow Nightscout's plugins and JavaScript's number rules ([`crate::jsnum`]).
//! Where nightlite is simpler, docs/properties.md says how.
//!
//! [`registry::compute`] runs the plugins that read readings, device statuses and change
//! events; [`extend`] then adds the treatment-math ones, in Nightscout's plugin order
//! ([`registry::ORDER`]). iob.js and cob.js each read both device statuses and treatments, so
//! iob.rs and cob.rs hold both parts, as Nightscout's files do. Shared helpers (moments,
//! levels, document accessors) are in [`shared`].

pub mod ages;
pub mod ar2;
pub mod basal;
pub mod bgnow;
pub mod bwp;
pub mod cob;
pub mod current;
pub mod dbsize;
pub mod direction;
pub mod iob;
pub mod r#loop;
pub mod openaps;
pub mod profile;
pub mod pump;
pub mod registry;
pub mod settings;
pub mod shared;
#[cfg(test)]
mod testing;
pub mod upbat;

use serde_json::Value;

use crate::config::{Thresholds, Units};
use crate::Config;
pub use profile::{Field, ProfileFn, Profiles};
pub use registry::{compute, Inputs, EVENT_TYPES};
pub use settings::Settings;
pub use shared::{devicestatus, Doc};

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
    /// Device statuses, each with its time, as [`devicestatus`] gives.
    pub devicestatus: &'a [(Doc, i64)],
    /// Profile values at a time; `None` without a profile document.
    pub profile: Option<&'a ProfileFn<'a>>,
}

/// Adds `ar2`, `bwp` and `basal` to `props`, and IOB/COB from treatments to `iob`/`cob`,
/// leaving out plugins named in DISABLE; returns what bwp asks of the alarms.
fn extend(props: &mut Doc, d: &Data, config: &Config) -> Option<bwp::Notice> {
    let on = |p: &str| registry::enabled(config, p);
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
    let mut notice = None;
    if on("bwp") {
        let b = bwp::property(d, props);
        props.insert("bwp".into(), Value::Object(b));
        notice = bwp::notice(d, props);
    }
    if on("basal") {
        if let Some(b) = basal::property(d) {
            props.insert("basal".into(), Value::Object(b));
        }
    }
    let order = registry::ORDER;
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    let mut all: Vec<(String, Value)> = std::mem::take(props).into_iter().collect();
    all.sort_by_key(|(k, _)| rank(k));
    props.extend(all);
    notice
}

/// [`extend`] from the documents as read: treatments newest first (each with `mills`), device
/// statuses as [`devicestatus`] gives them, the profile documents and switches of the window.
pub fn extend_with(
    props: &mut Doc,
    config: &Config,
    now: i64,
    treatments: Vec<Doc>,
    ds: &[(Doc, i64)],
    profiles: &profile::Profiles,
) -> Option<bwp::Notice> {
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
    let lookup = |t: i64, f: Field| profiles.value(t, f);
    let d = Data {
        now,
        units: config.units,
        thresholds: config.thresholds,
        alarm_high: config.alarms.high,
        alarm_low: config.alarms.low,
        settings: &config.plugins,
        treatments: &oldest_first,
        devicestatus: ds,
        profile: (!profiles.is_empty()).then_some(&lookup as &ProfileFn),
    };
    extend(props, &d, config)
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
