//! The plugins' registry: Nightscout's plugins in its order (lib/plugins/index.js), by the
//! names DISABLE uses, and [`compute`], which runs those that read readings, device statuses
//! and the Care Portal's change events. The treatment-math plugins (ar2, iob and cob from
//! treatments, bwp, basal) run after it, in [`super::extend`]. A new plugin is a file in this
//! folder, a line in `PLUGINS` (or in `extend`) and its name in [`ORDER`].

use serde_json::{json, Value};

use super::bgnow::{self, Sgv};
use super::shared::{devicestatus, oldest_first, Doc};
use super::{ages, cob, dbsize, direction, iob, openaps, pump, r#loop, upbat};
use crate::Config;

/// Nightscout's server plugin order (lib/plugins/index.js): the order of the properties.
pub const ORDER: &[&str] = &[
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

/// The treatment event types whose latest occurrence the plugins need.
pub const EVENT_TYPES: &[&str] = &[
    "Site Change",
    "Sensor Start",
    "Sensor Change",
    "Insulin Change",
    "Pump Battery Change",
    "OpenAPS Offline",
];

/// What the properties are computed from.
pub struct Inputs<'a> {
    pub now: i64,
    pub config: &'a Config,
    /// Entries, newest first, as API v1 returns them (their time is `date`).
    pub entries: &'a [Doc],
    /// Device statuses, newest first; their time is `mills`, else `created_at`.
    pub devicestatus: &'a [Doc],
    /// Treatments, newest first; their time is `mills`, else `created_at`.
    pub treatments: &'a [Doc],
    /// Size of the database files (Nightscout reports MongoDB's data + index size).
    pub db_size_bytes: u64,
}

/// The inputs as the plugins read them, prepared once for all.
struct Context<'a> {
    now: i64,
    config: &'a Config,
    /// Readings oldest first; bgnow marks those it buckets as scaled.
    sgvs: Vec<Sgv>,
    /// Device statuses oldest first, with their time.
    devicestatus: Vec<(Doc, i64)>,
    /// Treatments oldest first, with their time.
    treatments: Vec<(Doc, i64)>,
    db_size_bytes: u64,
}

/// How a plugin is run.
enum Plugin {
    /// One property, under the plugin's name, from the device statuses.
    Statuses(fn(i64, &[(Doc, i64)]) -> Doc),
    /// One property, under the plugin's name, from the change events.
    Events(fn(i64, &[(Doc, i64)]) -> Doc),
    /// Adds its properties itself.
    Other(fn(&mut Context, &mut Doc)),
}

use Plugin::{Events, Other, Statuses};

/// The plugins [`compute`] runs, in Nightscout's order, by the name DISABLE uses.
const PLUGINS: &[(&str, Plugin)] = &[
    ("bgnow", Other(bgnow_delta_buckets)),
    ("direction", Other(direction_if_current)),
    ("upbat", Statuses(upbat::property)),
    ("iob", Statuses(iob::from_devicestatus)),
    ("cob", Statuses(cob::from_devicestatus)),
    ("pump", Other(pump_status)),
    ("openaps", Statuses(openaps::property)),
    ("loop", Statuses(r#loop::property)),
    ("cage", Events(ages::cage)),
    ("sage", Events(ages::sage)),
    ("iage", Events(ages::iage)),
    ("bage", Events(ages::bage)),
    ("dbsize", Other(database_size)),
    ("runtimestate", Other(runtime_state)),
];

fn bgnow_delta_buckets(c: &mut Context, out: &mut Doc) {
    let bg = bgnow::compute(c.now, c.config.units, &mut c.sgvs);
    out.insert("bgnow".into(), Value::Object(bg.bgnow));
    if let Some(d) = bg.delta {
        out.insert("delta".into(), Value::Object(d));
    }
    out.insert("buckets".into(), Value::Array(bg.buckets));
}

fn direction_if_current(c: &mut Context, out: &mut Doc) {
    if let Some(d) = direction::property(c.now, &c.sgvs) {
        out.insert("direction".into(), Value::Object(d));
    }
}

fn pump_status(c: &mut Context, out: &mut Doc) {
    let p = pump::property(c.now, &c.devicestatus, &c.treatments);
    out.insert("pump".into(), Value::Object(p));
}

fn database_size(c: &mut Context, out: &mut Doc) {
    let d = dbsize::property(c.db_size_bytes);
    out.insert("dbsize".into(), Value::Object(d));
}

fn runtime_state(_: &mut Context, out: &mut Doc) {
    out.insert("runtimestate".into(), json!({ "state": "loaded" }));
}

/// Whether DISABLE leaves the plugin `name` on.
pub fn enabled(config: &Config, name: &str) -> bool {
    !config.disable.iter().any(|d| d == name)
}

/// Every property of [`PLUGINS`], keyed by name, in Nightscout's plugin order. Plugins named
/// in DISABLE are left out.
pub fn compute(i: &Inputs) -> Doc {
    let mut c = Context {
        now: i.now,
        config: i.config,
        sgvs: bgnow::sgvs(i.entries),
        devicestatus: devicestatus(i.devicestatus),
        treatments: oldest_first(i.treatments),
        db_size_bytes: i.db_size_bytes,
    };
    let mut out = Doc::new();
    for (name, plugin) in PLUGINS {
        if !enabled(i.config, name) {
            continue;
        }
        let v = match plugin {
            Statuses(f) => f(c.now, &c.devicestatus),
            Events(f) => f(c.now, &c.treatments),
            Other(f) => {
                f(&mut c, &mut out);
                continue;
            }
        };
        out.insert((*name).into(), Value::Object(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{compute_from, config, docs, sgv};

    #[test]
    fn no_data_gives_empty_valid_shapes() {
        let c = config(&[]);
        let p = compute_from(&c, &[]);
        let keys: Vec<&String> = p.keys().collect();
        assert_eq!(
            keys,
            [
                "bgnow",
                "buckets",
                "upbat",
                "iob",
                "cob",
                "pump",
                "openaps",
                "loop",
                "cage",
                "sage",
                "iage",
                "bage",
                "dbsize",
                "runtimestate"
            ]
        );
        assert_eq!(p["bgnow"], json!({}));
        assert_eq!(
            p["buckets"][0],
            json!({ "index": 0, "fromMills": null, "toMills": null, "sgvs": [], "isEmpty": true })
        );
        assert_eq!(p["iob"], json!({}));
        assert_eq!(p["cob"], json!({}));
        assert_eq!(
            p["pump"],
            json!({ "data": { "level": -3, "clock": null, "reservoir": null, "reservoir_display_override": null,
                              "reservoir_level_override": null, "extended": null,
                              "device": { "label": "Device" }, "title": "Pump Status" } })
        );
        assert_eq!(p["openaps"]["seenDevices"], json!({}));
        assert_eq!(p["openaps"]["status"]["code"], "warning");
        assert_eq!(p["runtimestate"], json!({ "state": "loaded" }));
    }

    #[test]
    fn disabled_plugins_are_left_out() {
        let c = config(&[("DISABLE", "pump openaps bgnow")]);
        let entries = docs(json!([sgv(0, 100, "a")]));
        let p = compute_from(&c, &entries);
        for gone in ["pump", "openaps", "bgnow", "delta", "buckets"] {
            assert!(p.get(gone).is_none(), "{gone}");
        }
        assert_eq!(p["direction"]["value"], "Flat");
    }
}
