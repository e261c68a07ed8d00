//! The current properties from the store: the windows of recent documents the plugins read
//! (as Nightscout's data loader holds them) and every property computed from them, for
//! /api/v2/properties, /pebble and the alarm task.

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::bwp::Notice;
use super::{Doc, Inputs, Profiles, EVENT_TYPES};
use crate::error::Result;
use crate::store::recent::{self, EntryKind};
use crate::store::treatment_math;
use crate::store::StoredDoc;
use crate::Config;

/// Readings: Nightscout holds two days; bgnow needs only the newest (four 5-minute buckets),
/// this many leaves room for several uploaders and stray future-dated entries.
const ENTRIES_WINDOW_MS: i64 = 2 * 86_400_000;
const ENTRIES_LIMIT: usize = 100;
/// Device statuses: loop and openaps look back six hours, the others less.
const DEVICESTATUS_WINDOW_MS: i64 = 6 * 3_600_000;
const DEVICESTATUS_LIMIT: usize = 2_000;
/// Site/sensor/insulin/battery changes: Nightscout looks back 62 days.
const TREATMENTS_WINDOW_MS: i64 = 62 * 86_400_000;
/// IOB, COB, basal and BWP: Nightscout's in-memory treatments, the last 2.5 days.
pub const PLUGIN_TREATMENTS_WINDOW_MS: i64 = 60 * 3_600_000;

/// A stored document as Nightscout's in-memory lists hold it: `_id` first, and `mills`.
pub fn runtime_doc(d: StoredDoc) -> Doc {
    let mut out = Map::with_capacity(d.doc.len() + 2);
    out.insert("_id".into(), Value::String(d.id));
    out.extend(d.doc);
    out.entry("mills").or_insert_with(|| d.mills.into());
    out
}

/// Reads the windows and computes every property (on the blocking pool).
pub fn read_all(
    conn: &Connection,
    config: &Config,
    db_path: &std::path::Path,
    now: i64,
) -> Result<Doc> {
    Ok(read_with_notice(conn, config, db_path, now)?.0)
}

/// [`read_all`] and what the bolus wizard preview asks of the alarms (None with `bwp` in
/// DISABLE).
pub fn read_with_notice(
    conn: &Connection,
    config: &Config,
    db_path: &std::path::Path,
    now: i64,
) -> Result<(Doc, Option<Notice>)> {
    let docs = |v: Vec<StoredDoc>| -> Vec<Doc> { v.into_iter().map(runtime_doc).collect() };
    let entries = docs(recent::entries(
        conn,
        EntryKind::Sgv,
        now - ENTRIES_WINDOW_MS,
        ENTRIES_LIMIT,
    )?);
    let devicestatus = docs(recent::devicestatus(
        conn,
        now - DEVICESTATUS_WINDOW_MS,
        DEVICESTATUS_LIMIT,
    )?);
    let treatments = docs(recent::latest_treatments(
        conn,
        EVENT_TYPES,
        now - TREATMENTS_WINDOW_MS,
        now,
    )?);
    let mut all = super::compute(&Inputs {
        now,
        config,
        entries: &entries,
        devicestatus: &devicestatus,
        treatments: &treatments,
        db_size_bytes: crate::store::disk::db_size(db_path),
    });
    let recent = docs(treatment_math::treatments_since(
        conn,
        now - PLUGIN_TREATMENTS_WINDOW_MS,
    )?);
    let profiles = plugin_profiles(conn, now)?;
    let notice = super::extend_with(&mut all, config, now, recent, &devicestatus, &profiles);
    Ok((all, notice))
}

/// The profile documents and Profile Switches in force over the plugins' window.
pub fn plugin_profiles(conn: &Connection, now: i64) -> Result<Profiles> {
    let (docs, switches) =
        crate::profiles::load_stored(conn, now - PLUGIN_TREATMENTS_WINDOW_MS, now)?;
    Ok(Profiles::new(&docs, &switches))
}
