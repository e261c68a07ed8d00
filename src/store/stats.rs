//! Glucose statistics for reports (`GET /api/v2/stats`): time in ranges, mean, spread and the
//! ambulatory glucose profile (percentiles by time of day), computed in SQLite in one query.
//!
//! Readings go into 96 buckets of 15 minutes of local time of day. The query reads each sgv
//! once from the `entries_sgv` index alone (the `sgv` column of schema version 3; no document
//! is parsed), as a MATERIALIZED set (so it is read once whatever uses `v`), folds them
//! into a histogram of (bucket, value) counts, and finds each percentile's neighbouring ranks
//! with running sums over that histogram. A histogram has a few thousand rows where the readings
//! are 129,600 for 90 days of 1-minute data, so the only full pass is the read itself; ranking
//! every reading with a window function instead took 2.3 times as long (docs/api-stats.md).

use rusqlite::{params, Connection};

use crate::error::Result;

pub const BUCKET_MINUTES: i64 = 15;
const DAY_MS: i64 = 86_400_000;
/// Dexcom reports values below 39 as error codes (sensor not ready, ???), not as glucose.
pub const MIN_VALID_MGDL: f64 = 39.0;
/// The AGP's percentiles, in the order the query returns them.
pub const PERCENTILES: [f64; 5] = [0.05, 0.25, 0.50, 0.75, 0.95];

/// Range boundaries in mg/dl: very low is below `very_low`, low from there to below `low`, in
/// range from `low` to `high` inclusive, high above `high` up to `very_high` inclusive, very
/// high above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub very_low: f64,
    pub low: f64,
    pub high: f64,
    pub very_high: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct StatsQuery {
    /// Inclusive start, epoch ms.
    pub from: i64,
    /// Exclusive end, epoch ms.
    pub to: i64,
    /// Minutes east of UTC used to place readings on the day (the viewer's own offset).
    pub tz_minutes: i64,
    pub bands: Bands,
}

/// One 15-minute bucket of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Minutes after local midnight where the bucket starts (0, 15, ... 1425).
    pub minute: i64,
    pub count: i64,
    /// Values at [`PERCENTILES`], linear interpolation between closest ranks.
    pub percentiles: [f64; 5],
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub count: i64,
    /// None without readings.
    pub mean: Option<f64>,
    /// Population standard deviation.
    pub sd: Option<f64>,
    /// very low, low, in range, high, very high.
    pub range_counts: [i64; 5],
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub agp: Vec<Bucket>,
    /// Below (key 0), in (1) and above (2) the target range `bands.low..=bands.high`;
    /// ranges without readings are left out.
    pub distribution: Vec<Group>,
    /// All readings as one group (for the overall median); None without readings.
    pub overall: Option<Group>,
}

/// The query, with the expression that puts a reading (`mills`, `?3` the offset in ms) into
/// its group: a bucket of the time of day (`?4` ms long), a local day or a local week.
/// `$more` adds groups folded from the histogram `hist0` (not from the readings again).
macro_rules! stats_sql {
    ($bucket:literal) => {
        stats_sql!($bucket, "")
    };
    ($bucket:literal, $more:literal) => {
        concat!("
WITH readings AS MATERIALIZED (
    SELECT sgv AS v, mills,
           ", $bucket, " AS bucket
    FROM entries
    WHERE sgv IS NOT NULL AND mills >= ?1 AND mills < ?2 AND is_valid = 1
),
hist0 AS MATERIALIZED (
    SELECT bucket, v, count(*) AS c, min(mills) AS first, max(mills) AS last
    FROM readings WHERE v >= ?5 GROUP BY bucket, v
),
hist AS (SELECT * FROM hist0", $more, "),
-- Each histogram row holds the 0-based ranks upto - c .. upto - 1 of its bucket.
cum AS (
    SELECT bucket, v, c, first, last,
           sum(c) OVER (PARTITION BY bucket ORDER BY v ROWS UNBOUNDED PRECEDING) AS upto,
           sum(c) OVER (PARTITION BY bucket) - 1 AS last_i
    FROM hist
)
SELECT bucket, sum(c), sum(v * c), sum(v * v * c), min(first), max(last), min(v), max(v),
       sum(c * (v < ?6)), sum(c * (v >= ?6 AND v < ?7)), sum(c * (v >= ?7 AND v <= ?8)),
       sum(c * (v > ?8 AND v <= ?9)), sum(c * (v > ?9)),
       max(CASE WHEN CAST(last_i * 0.05 AS INTEGER) BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.05 AS INTEGER) + 1 BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.25 AS INTEGER) BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.25 AS INTEGER) + 1 BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.50 AS INTEGER) BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.50 AS INTEGER) + 1 BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.75 AS INTEGER) BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.75 AS INTEGER) + 1 BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.95 AS INTEGER) BETWEEN upto - c AND upto - 1 THEN v END),
       max(CASE WHEN CAST(last_i * 0.95 AS INTEGER) + 1 BETWEEN upto - c AND upto - 1 THEN v END)
FROM cum
GROUP BY bucket
ORDER BY bucket")
    };
}
// ?4 is bound for every grouping; the day and week queries leave it unused.
const SQL_TIME_OF_DAY: &str = stats_sql!("((mills + ?3) % 86400000 + 86400000) % 86400000 / ?4");
// Integer division truncates toward zero: fine, readings before 1970 are not glucose.
const SQL_DAY: &str = stats_sql!("(mills + ?3) / 86400000");
// Day 0 (1970-01-01) was a Thursday: +3 makes weeks start on Monday.
const SQL_WEEK: &str = stats_sql!("((mills + ?3) / 86400000 + 3) / 7");
/// Where [`stats`]' query numbers its glucose distribution groups: below the target range
/// (`?7`), in it (up to `?8` inclusive), above it (the same bounds as `range_counts`), then
/// every reading.
const RANGE_KEY: i64 = 1000;
// The AGP's buckets, then Nightscout's glucose distribution: its groups are summed from the
// buckets' histogram (a few thousand rows), so the readings are still read once.
const SQL_AGP: &str = stats_sql!(
    "((mills + ?3) % 86400000 + 86400000) % 86400000 / ?4",
    " UNION ALL
    SELECT 1000 + CASE WHEN v < ?7 THEN 0 WHEN v <= ?8 THEN 1 ELSE 2 END, v, sum(c), min(first),
           max(last)
    FROM hist0 GROUP BY 1, v
    UNION ALL SELECT 1003, v, sum(c), min(first), max(last) FROM hist0 GROUP BY v"
);

/// The value at fraction `p` of `last_i + 1` sorted values, given the values at the floor rank
/// and the next one (None past the end): linear interpolation between closest ranks, as
/// numpy's default and R's type 7 compute it.
fn interpolate(last_i: i64, p: f64, lo: f64, hi: Option<f64>) -> f64 {
    let h = last_i as f64 * p;
    let frac = h - h.floor();
    match hi {
        Some(hi) if frac > 0.0 => lo + frac * (hi - lo),
        _ => lo,
    }
}

/// How readings are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Buckets of the local time of day, this many minutes long (a divisor of 1440).
    TimeOfDay(i64),
    /// Local days (key: days since 1970-01-01 in the offset's local time).
    Day,
    /// Local weeks from Monday (key: (day + 3) / 7).
    Week,
}

/// The numbers of one group of readings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// The bucket number, the local day number or the local week number (see [`Grouping`]).
    pub key: i64,
    pub count: i64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
    pub first: i64,
    pub last: i64,
    /// very low, low, in range, high, very high.
    pub range_counts: [i64; 5],
    /// Values at [`PERCENTILES`], linear interpolation between closest ranks.
    pub percentiles: [f64; 5],
}

impl Group {
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Population standard deviation; max(0) absorbs rounding when every value is the same.
    pub fn sd(&self) -> f64 {
        population_sd(self.count, self.sum, self.sum_sq)
    }
}

fn population_sd(n: i64, sum: f64, sum_sq: f64) -> f64 {
    let n = n as f64;
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0).sqrt()
}

/// The readings of the window grouped by `by`, in key order; groups without readings are
/// left out. Memory is one row per group: the readings are folded inside SQLite.
pub fn groups(conn: &Connection, q: &StatsQuery, by: Grouping) -> Result<Vec<Group>> {
    let (sql, bucket_ms) = match by {
        Grouping::TimeOfDay(minutes) => (SQL_TIME_OF_DAY, minutes.max(1) * 60_000),
        Grouping::Day => (SQL_DAY, DAY_MS),
        Grouping::Week => (SQL_WEEK, DAY_MS),
    };
    run(conn, q, sql, bucket_ms)
}

/// One of the [`stats_sql`] queries, `bucket_ms` bound to `?4`.
fn run(conn: &Connection, q: &StatsQuery, sql: &str, bucket_ms: i64) -> Result<Vec<Group>> {
    let b = q.bands;
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![
            q.from,
            q.to,
            q.tz_minutes * 60_000,
            bucket_ms,
            MIN_VALID_MGDL,
            b.very_low,
            b.low,
            b.high,
            b.very_high
        ],
        |r| {
            let count: i64 = r.get(1)?;
            let mut percentiles = [0f64; 5];
            for (k, p) in PERCENTILES.iter().enumerate() {
                let lo = r.get::<_, Option<f64>>(13 + 2 * k)?.unwrap_or(0.0);
                let hi = r.get::<_, Option<f64>>(14 + 2 * k)?;
                percentiles[k] = interpolate(count - 1, *p, lo, hi);
            }
            let mut range_counts = [0i64; 5];
            for (k, c) in range_counts.iter_mut().enumerate() {
                *c = r.get(8 + k)?;
            }
            Ok(Group {
                key: r.get(0)?,
                count,
                sum: r.get(2)?,
                sum_sq: r.get(3)?,
                first: r.get(4)?,
                last: r.get(5)?,
                min: r.get(6)?,
                max: r.get(7)?,
                range_counts,
                percentiles,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn stats(conn: &Connection, q: &StatsQuery) -> Result<Stats> {
    let mut out = Stats::default();
    let (mut sum, mut sum_sq) = (0f64, 0f64);
    for mut g in run(conn, q, SQL_AGP, BUCKET_MINUTES * 60_000)? {
        if g.key >= RANGE_KEY {
            g.key -= RANGE_KEY;
            if g.key == 3 {
                out.overall = Some(g);
            } else {
                out.distribution.push(g);
            }
            continue;
        }
        out.count += g.count;
        sum += g.sum;
        sum_sq += g.sum_sq;
        out.first = Some(out.first.map_or(g.first, |f| f.min(g.first)));
        out.last = Some(out.last.map_or(g.last, |l| l.max(g.last)));
        for (total, c) in out.range_counts.iter_mut().zip(g.range_counts) {
            *total += c;
        }
        out.agp.push(Bucket {
            minute: g.key * BUCKET_MINUTES,
            count: g.count,
            percentiles: g.percentiles,
        });
    }
    if out.count > 0 {
        out.mean = Some(sum / out.count as f64);
        out.sd = Some(population_sd(out.count, sum, sum_sq));
    }
    Ok(out)
}

/// The mean of one hour of one local week (Nightscout's week-to-week curves).
#[derive(Debug, Clone, PartialEq)]
pub struct WeekHour {
    /// The local week from Monday, as [`Grouping::Week`] keys it.
    pub week: i64,
    /// Hours since the week's Monday midnight, 0..=167.
    pub hour: i64,
    pub mean: f64,
}

// From the `entries_sgv` index alone, like the other stats queries; one row per hour of the
// window that has readings.
const SQL_WEEK_HOURS: &str = "
WITH r AS (
    SELECT (mills + ?3) / 86400000 AS day, ((mills + ?3) % 86400000) / 3600000 AS hour, sgv
    FROM entries
    WHERE sgv IS NOT NULL AND mills >= ?1 AND mills < ?2 AND is_valid = 1 AND sgv >= ?4
)
SELECT (day + 3) / 7 AS week, (day + 3) % 7 * 24 + hour AS h, avg(sgv)
FROM r GROUP BY week, h ORDER BY week, h";

/// Each local week's hourly mean glucose, in week and hour order.
pub fn week_hours(conn: &Connection, q: &StatsQuery) -> Result<Vec<WeekHour>> {
    let mut stmt = conn.prepare_cached(SQL_WEEK_HOURS)?;
    let rows = stmt.query_map(
        params![q.from, q.to, q.tz_minutes * 60_000, MIN_VALID_MGDL],
        |r| {
            Ok(WeekHour {
                week: r.get(0)?,
                hour: r.get(1)?,
                mean: r.get(2)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Loop analysis: one hour of the local day, over the window's device statuses that carry a
/// loop's IOB or COB (OpenAPS/AndroidAPS `openaps`, Loop `loop`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoopHour {
    pub hour: i64,
    pub statuses: i64,
    /// Mean insulin on board, U; None when no status of the hour has one.
    pub iob: Option<f64>,
    /// Mean carbs on board, g.
    pub cob: Option<f64>,
    /// Statuses whose enacted change the pump received.
    pub enacted: i64,
}

// The documents are parsed here (device statuses have no plain columns): one pass over the
// window by `devicestatus_mills`, folded into 24 rows.
const SQL_LOOP: &str = "
WITH s AS (
    SELECT ((mills + ?3) % 86400000 + 86400000) % 86400000 / 3600000 AS hour,
           coalesce(json_extract(doc, '$.openaps.iob.iob'), json_extract(doc, '$.openaps.iob[0].iob'),
                    json_extract(doc, '$.loop.iob.iob')) AS iob,
           coalesce(json_extract(doc, '$.openaps.suggested.COB'), json_extract(doc, '$.openaps.enacted.COB'),
                    json_extract(doc, '$.loop.cob.cob')) AS cob,
           coalesce(json_extract(doc, '$.openaps.enacted.received'),
                    json_extract(doc, '$.openaps.enacted.recieved'),
                    json_extract(doc, '$.loop.enacted.received')) AS enacted
    FROM devicestatus
    WHERE mills >= ?1 AND mills < ?2 AND is_valid = 1
)
SELECT hour, count(*), avg(iob), avg(cob), coalesce(sum(enacted = 1), 0)
FROM s WHERE iob IS NOT NULL OR cob IS NOT NULL
GROUP BY hour ORDER BY hour";

pub fn loop_hours(conn: &Connection, from: i64, to: i64, tz_minutes: i64) -> Result<Vec<LoopHour>> {
    let mut stmt = conn.prepare_cached(SQL_LOOP)?;
    let rows = stmt.query_map(params![from, to, tz_minutes * 60_000], |r| {
        Ok(LoopHour {
            hour: r.get(0)?,
            statuses: r.get(1)?,
            iob: r.get(2)?,
            cob: r.get(3)?,
            enacted: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The window `[to - days, to)` in ms.
pub fn window(days: i64, to: i64) -> (i64, i64) {
    (to - days * DAY_MS, to)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The real schema, written through the server's own insert (which keeps `sgv`).
    fn db(values: &[(i64, f64)]) -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        for (mills, v) in values {
            insert(&conn, &format!(r#"{{"type":"sgv","sgv":{v}}}"#), *mills);
        }
        conn
    }

    fn insert(conn: &Connection, doc: &str, mills: i64) {
        let serde_json::Value::Object(doc) = serde_json::from_str(doc).unwrap() else {
            panic!("not an object: {doc}")
        };
        crate::store::upsert::insert_row(
            conn,
            crate::store::Collection::Entries,
            None,
            &doc,
            mills,
            0,
            false,
        )
        .unwrap();
    }

    #[test]
    fn only_sgv_entries_count_and_strings_are_numbers() {
        let conn = db(&[(1000, 100.0)]);
        insert(&conn, r#"{"type":"sgv","sgv":"150"}"#, 2000);
        insert(&conn, r#"{"type":"mbg","mbg":300,"sgv":300}"#, 3000);
        insert(&conn, r#"{"type":"sgv","sgv":null}"#, 4000);
        insert(&conn, r#"{"type":"cal","slope":1}"#, 5000);
        let s = stats(&conn, &query(0)).unwrap();
        assert_eq!(s.count, 2, "{s:?}");
        assert_eq!(s.mean, Some(125.0));
        // A replaced document keeps the column in step with it.
        conn.execute("UPDATE entries SET is_valid = 0 WHERE mills = 2000", [])
            .unwrap();
        assert_eq!(stats(&conn, &query(0)).unwrap().count, 1);
        let seq: i64 = conn
            .query_row("SELECT seq FROM entries WHERE mills = 1000", [], |r| {
                r.get(0)
            })
            .unwrap();
        let serde_json::Value::Object(doc) = serde_json::json!({"type": "sgv", "sgv": 180}) else {
            unreachable!()
        };
        crate::store::upsert::update_row(&conn, crate::store::Collection::Entries, seq, &doc, 1000)
            .unwrap();
        assert_eq!(stats(&conn, &query(0)).unwrap().mean, Some(180.0));
    }

    #[test]
    fn week_hours_follow_the_time_zone() {
        // Sunday 1970-01-04 23:30 UTC: hour 6 × 24 + 23 of week 0 in UTC, Monday 00:30 (hour 0
        // of week 1) at UTC+1.
        let t = 3 * DAY_MS + 23 * 3_600_000 + 30 * 60_000;
        let conn = db(&[(t, 100.0), (t + 60_000, 120.0), (t + 120_000, 20.0)]);
        let at = |tz| {
            week_hours(&conn, &query(tz))
                .unwrap()
                .iter()
                .map(|w| (w.week, w.hour, w.mean))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(0), [(0, 167, 110.0)]);
        assert_eq!(at(60), [(1, 0, 110.0)]);
    }

    #[test]
    fn the_query_reads_the_index_alone() {
        let conn = db(&[]);
        // Each query with as many of these parameters as it takes.
        let values = [0.0, 1.0, 0.0, DAY_MS as f64, 39.0, 1.0, 2.0, 3.0, 4.0];
        for (sql, n) in [
            (SQL_TIME_OF_DAY, 9),
            (SQL_DAY, 9),
            (SQL_WEEK, 9),
            (SQL_AGP, 9),
            (SQL_WEEK_HOURS, 4),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(&values[..n]), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter()
                    .any(|p| p.contains("USING COVERING INDEX entries_sgv")),
                "{plan:#?}"
            );
        }
    }

    const BANDS: Bands = Bands {
        very_low: 54.0,
        low: 70.0,
        high: 180.0,
        very_high: 250.0,
    };

    fn query(tz_minutes: i64) -> StatsQuery {
        StatsQuery {
            from: 0,
            to: 10 * DAY_MS,
            tz_minutes,
            bands: BANDS,
        }
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        // One bucket (00:00-00:15 UTC) holding 10, 20, ..., 110; the 39 floor drops 10, 20
        // and 30, leaving 40..110: eight values, last index 7.
        let values: Vec<(i64, f64)> = (1..=11).map(|k| (k * 1000, k as f64 * 10.0)).collect();
        let s = stats(&db(&values), &query(0)).unwrap();
        assert_eq!(s.count, 8);
        assert_eq!(s.agp.len(), 1);
        let p = s.agp[0].percentiles;
        // h = 7p: 0.35 → 40 + 0.35*10; 1.75 → 50 + 7.5; 3.5 → 75; 5.25 → 92.5; 6.65 → 106.5
        let want = [43.5, 57.5, 75.0, 92.5, 106.5];
        for (got, want) in p.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{p:?}");
        }
        assert_eq!(s.mean, Some(75.0));
        // 40, 50 very low (< 54); 60 low; 70..110 in range.
        assert_eq!(s.range_counts, [2, 1, 5, 0, 0]);
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        // 23:50 UTC is 00:50 at UTC+1: bucket 00:45.
        let s = stats(&db(&[(23 * 3_600_000 + 50 * 60_000, 100.0)]), &query(60)).unwrap();
        assert_eq!(s.agp[0].minute, 45);
        let s = stats(&db(&[(10 * 60_000, 100.0)]), &query(-60)).unwrap();
        assert_eq!(s.agp[0].minute, 23 * 60);
    }

    #[test]
    fn days_and_weeks_follow_the_time_zone() {
        // Sunday 1970-01-04 23:30 UTC is Monday 00:30 at UTC+1: day 4, week 1 (from Monday 5th)
        // there, day 3 and week 0 in UTC.
        let t = 3 * DAY_MS + 23 * 3_600_000 + 30 * 60_000;
        let conn = db(&[(t, 100.0), (t + 60_000, 120.0)]);
        let key = |tz, by| {
            let g = groups(&conn, &query(tz), by).unwrap();
            assert_eq!(g.len(), 1);
            assert_eq!(
                (g[0].count, g[0].min, g[0].max, g[0].mean()),
                (2, 100.0, 120.0, 110.0)
            );
            assert_eq!(g[0].sd(), 10.0);
            g[0].key
        };
        assert_eq!(key(0, Grouping::Day), 3);
        assert_eq!(key(60, Grouping::Day), 4);
        assert_eq!(key(0, Grouping::Week), 0);
        assert_eq!(key(60, Grouping::Week), 1);
        assert_eq!(key(60, Grouping::TimeOfDay(60)), 0);
        assert_eq!(key(0, Grouping::TimeOfDay(60)), 23);
    }

    #[test]
    fn distribution_splits_at_the_target_range() {
        // 60 low; 70, 100, 180 in range (bounds inclusive); 181, 300 high.
        let values: Vec<(i64, f64)> = [60.0, 70.0, 100.0, 180.0, 181.0, 300.0]
            .iter()
            .enumerate()
            .map(|(k, v)| (k as i64 * 60_000, *v))
            .collect();
        let s = stats(&db(&values), &query(0)).unwrap();
        let d: Vec<(i64, i64, f64)> = s
            .distribution
            .iter()
            .map(|g| (g.key, g.count, g.percentiles[2]))
            .collect();
        assert_eq!(d, [(0, 1, 60.0), (1, 3, 100.0), (2, 2, 240.5)]);
        let all = s.overall.unwrap();
        assert_eq!((all.count, all.percentiles[2]), (6, 140.0));
    }

    #[test]
    fn empty_window() {
        let s = stats(&db(&[]), &query(0)).unwrap();
        assert_eq!(s.count, 0);
        assert_eq!(s.mean, None);
        assert!(s.agp.is_empty());
    }
}
