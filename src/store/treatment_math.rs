//! Reads for the treatment-math plugins (src/plugins/): the treatments of Nightscout's
//! in-memory window and the older device statuses of its day (the profiles:
//! `profiles::load_stored`).

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::query::SqlFilter;
use super::{list_raw, Collection, ListQuery, RawDoc};
use crate::error::Result;

/// More treatments than 2.5 days of any realistic use (a loop's temp basal every 5 minutes
/// is 720).
const TREATMENTS_LIMIT: usize = 5_000;

/// Device statuses from `from_ms` to before `to_ms`, newest first (at most `limit`), their
/// documents still JSON text (the math reads their IOB reports only: `plugins::current`).
pub fn devicestatus_between(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<RawDoc>> {
    let query = ListQuery {
        filter: SqlFilter {
            sql: "mills >= ? AND mills < ?".into(),
            params: vec![SqlValue::Integer(from_ms), SqlValue::Integer(to_ms)],
        },
        order: None,
        limit,
        skip: 0,
        include_deleted: false,
    };
    list_raw(conn, Collection::DeviceStatus, &query)
}

/// Treatments at or after `from_ms` (future ones included, as Nightscout loads them), newest
/// first, their documents still JSON text (the math reads a few fields of each:
/// `plugins::current`).
pub fn treatments_since(conn: &Connection, from_ms: i64) -> Result<Vec<RawDoc>> {
    let query = ListQuery {
        filter: SqlFilter {
            sql: "mills >= ?".into(),
            params: vec![SqlValue::Integer(from_ms)],
        },
        order: None,
        limit: TREATMENTS_LIMIT,
        skip: 0,
        include_deleted: false,
    };
    list_raw(conn, Collection::Treatments, &query)
}
