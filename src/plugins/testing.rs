//! Fixtures for the plugins' unit tests.

use serde_json::Value;

use super::{Data, ProfileFn, Settings};
use crate::config::{Thresholds, Units};
use crate::live::properties::Doc;

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
