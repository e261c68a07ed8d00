//! Fixtures for the plugins' unit tests.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::registry::{compute, Inputs};
use super::shared::{devicestatus, Doc};
use super::{Data, ProfileFn, Settings};
use crate::config::{Thresholds, Units};
use crate::{dates, Config};

/// 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000_000;
pub const MIN: i64 = 60_000;

pub fn doc(v: Value) -> Doc {
    v.as_object().cloned().unwrap_or_default()
}

/// Treatments as (doc, mills), oldest first, from (minutes ago, fields).
pub fn treatments(list: &[(i64, Value)]) -> Vec<(Doc, i64)> {
    let mut out: Vec<(Doc, i64)> = list
        .iter()
        .map(|(ago, v)| {
            let mut d = doc(v.clone());
            d.insert("mills".into(), (NOW - ago * MIN).into());
            (d, NOW - ago * MIN)
        })
        .collect();
    out.sort_by_key(|(_, m)| *m);
    out
}

pub fn data<'a>(
    settings: &'a Settings,
    treatments: &'a [(Doc, i64)],
    ds: &'a [(Doc, i64)],
    profile: Option<&'a ProfileFn<'a>>,
) -> Data<'a> {
    Data {
        now: NOW,
        units: Units::MgDl,
        thresholds: Thresholds {
            bg_high: 260.0,
            bg_target_top: 180.0,
            bg_target_bottom: 80.0,
            bg_low: 55.0,
        },
        alarm_high: true,
        alarm_low: true,
        settings,
        treatments,
        devicestatus: ds,
        profile,
    }
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Config::from_map(&map).unwrap()
}

pub fn docs(v: Value) -> Vec<Doc> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_object().unwrap().clone())
        .collect()
}

pub fn iso(ms: i64) -> String {
    dates::to_iso(ms)
}

/// An sgv entry `ago_ms` before NOW.
pub fn sgv(ago_ms: i64, value: i64, device: &str) -> Value {
    json!({ "type": "sgv", "sgv": value, "date": NOW - ago_ms, "device": device, "direction": "Flat" })
}

/// Properties from entries given oldest first (reversed to the newest-first contract).
pub fn from_entries(units: &str, entries: Vec<Value>) -> Doc {
    let mut entries = docs(Value::Array(entries));
    entries.reverse();
    let c = config(&[("DISPLAY_UNITS", units)]);
    compute_from(&c, &entries)
}

/// Properties at NOW from entries (newest first) alone.
pub fn compute_from(config: &Config, entries: &[Doc]) -> Doc {
    compute(&Inputs {
        now: NOW,
        config,
        entries,
        devicestatus: &[],
        treatments: &[],
        db_size_bytes: 0,
    })
}

pub fn with_mills(v: Value) -> Vec<(Doc, i64)> {
    let mut d = docs(v);
    d.reverse();
    devicestatus(&d)
}
