//! The recent documents the current-state properties and /pebble are computed from
//! (`crate::plugins`): Nightscout keeps them in memory (lib/data/dataloader.js); here
//! each request reads just the windows it needs.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::query::SqlFilter;
use super::{list, Collection, ListQuery, StoredDoc};
use crate::error::Result;

/// Which entries to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Entries carrying a reading (`sgv`); the caller applies Nightscout's exact test.
    Sgv,
    /// Calibrations (`type: "cal"`).
    Cal,
}

fn newest(
    conn: &Connection,
    coll: Collection,
    filter: SqlFilter,
    limit: usize,
) -> Result<Vec<StoredDoc>> {
    list(
        conn,
        coll,
        &ListQuery {
            filter,
            order: None,
            limit,
            skip: 0,
            include_deleted: false,
        },
    )
}

/// Entries of `kind` at or after `from_ms` (future ones included, as Nightscout loads them),
/// newest first, at most `limit`.
pub fn entries(
    conn: &Connection,
    kind: EntryKind,
    from_ms: i64,
    limit: usize,
) -> Result<Vec<StoredDoc>> {
    let sql = match kind {
        EntryKind::Sgv => "mills >= ? AND json_extract(doc, '$.sgv') IS NOT NULL",
        EntryKind::Cal => "mills >= ? AND type = 'cal'",
    };
    let filter = SqlFilter {
        sql: sql.into(),
        params: vec![SqlValue::Integer(from_ms)],
    };
    newest(conn, Collection::Entries, filter, limit)
}

/// Device statuses at or after `from_ms`, newest first, at most `limit`.
pub fn devicestatus(conn: &Connection, from_ms: i64, limit: usize) -> Result<Vec<StoredDoc>> {
    let filter = SqlFilter {
        sql: "mills >= ?".into(),
        params: vec![SqlValue::Integer(from_ms)],
    };
    newest(conn, Collection::DeviceStatus, filter, limit)
}

/// The newest device status at or after `from_ms` that reports an uploader (`uploader`, or
/// the older `uploaderBattery`), for /pebble's battery.
pub fn latest_uploader_status(conn: &Connection, from_ms: i64) -> Result<Option<StoredDoc>> {
    let filter = SqlFilter {
        sql: "mills >= ? AND (json_type(doc, '$.uploader') IS NOT NULL \
              OR json_type(doc, '$.uploaderBattery') IS NOT NULL)"
            .into(),
        params: vec![SqlValue::Integer(from_ms)],
    };
    Ok(newest(conn, Collection::DeviceStatus, filter, 1)?
        .into_iter()
        .next())
}

/// For each event type, the newest treatment of exactly that type with its time in
/// `from_ms..=to_ms` (Nightscout's loadLatestSingle); newest first overall.
pub fn latest_treatments(
    conn: &Connection,
    event_types: &[&str],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredDoc>> {
    let mut out = vec![];
    for t in event_types {
        let filter = SqlFilter {
            sql: "eventType = ? AND mills >= ? AND mills <= ?".into(),
            params: vec![
                SqlValue::Text((*t).to_string()),
                SqlValue::Integer(from_ms),
                SqlValue::Integer(to_ms),
            ],
        };
        out.extend(newest(conn, Collection::Treatments, filter, 1)?);
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.mills));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prepare::prepare;
    use crate::store::upsert::{upsert, Merge};
    use serde_json::{json, Value};

    fn put(c: &Connection, coll: Collection, docs: Value) {
        for d in docs.as_array().cloned().unwrap_or_default() {
            for p in prepare(coll, d, "t", 0).unwrap() {
                upsert(c, coll, p, Merge::Replace, 1).unwrap();
            }
        }
    }

    #[test]
    fn windows_kinds_and_latest_per_type() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        put(
            &c,
            Collection::Entries,
            json!([
                { "type": "sgv", "sgv": 100, "date": 1_000 },
                { "type": "sgv", "sgv": 110, "date": 2_000 },
                { "type": "mbg", "mbg": 120, "date": 2_500 },
                { "type": "cal", "slope": 1, "date": 3_000 },
                { "type": "sgv", "sgv": 130, "date": 500 }
            ]),
        );
        put(
            &c,
            Collection::Treatments,
            json!([
                { "eventType": "Site Change", "created_at": "2024-01-01T00:00:00Z" },
                { "eventType": "Site Change", "created_at": "2024-01-03T00:00:00Z" },
                { "eventType": "Site Change", "created_at": "2024-01-09T00:00:00Z" },
                { "eventType": "Sensor Start", "created_at": "2024-01-02T00:00:00Z" },
                { "eventType": "Note", "created_at": "2024-01-04T00:00:00Z" }
            ]),
        );
        put(
            &c,
            Collection::DeviceStatus,
            json!([
                { "device": "a", "uploaderBattery": 50, "created_at": "2024-01-01T00:00:00Z" },
                { "device": "b", "pump": {}, "created_at": "2024-01-02T00:00:00Z" }
            ]),
        );
        let jan = |d: i64| {
            crate::dates::parse_iso(&format!("2024-01-{d:02}"))
                .unwrap()
                .ms
        };

        let sgvs = entries(&c, EntryKind::Sgv, 900, 10).unwrap();
        let mills: Vec<i64> = sgvs.iter().map(|d| d.mills).collect();
        assert_eq!(mills, vec![2_000, 1_000], "window, sgv only, newest first");
        assert_eq!(entries(&c, EntryKind::Cal, 0, 10).unwrap().len(), 1);

        // The 9th is after the window's end; the Note is not asked for.
        let latest = latest_treatments(&c, &["Site Change", "Sensor Start"], 0, jan(5)).unwrap();
        let found: Vec<i64> = latest.iter().map(|d| d.mills).collect();
        assert_eq!(found, vec![jan(3), jan(2)]);

        let uploader = latest_uploader_status(&c, 0).unwrap();
        assert_eq!(uploader.map(|d| d.doc["device"].clone()), Some(json!("a")));
        assert_eq!(devicestatus(&c, 0, 10).unwrap().len(), 2);
        assert_eq!(devicestatus(&c, 0, 1).unwrap()[0].doc["device"], "b");
    }
}
