//! The state spans table (migrations/004-state-spans.sql, 005-status-spans.sql), kept up to
//! date by the writer.
//!
//! Upkeep runs in every group transaction that changed a treatment or a device status, just
//! before the commit (store/writer.rs), and in each retention batch, so spans change in the
//! same commit as the documents they come from, whoever wrote them. It re-derives a category
//! from an anchor (the earliest moment the change can affect: for one-at-a-time categories the
//! start of the span in force just before the change; for profiles, which resume after a
//! temporary switch, the newest switch without an end before it) up to where the stored spans
//! hold again; and the runs of a device's statuses from its status before the change. Tests
//! check that this gives the same table as a full rebuild.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::query::SqlFilter;
use crate::error::Result;
use crate::spans::{derive, rules, status, Category, Event, Layering, OriginKind, Span, Status};

/// The rows of `table` a transaction changed, by `seq` (the change bus' notes,
/// src/store/changes.rs).
fn changed(conn: &Connection, table: &str) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT seq FROM temp.changes WHERE tbl = ? ORDER BY seq")?;
    let seqs = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(seqs)
}

/// Whether an event starts a state with no end of its own (it holds until something ends it).
fn holds_open(effect: &rules::Effect) -> bool {
    matches!(effect, rules::Effect::Start { duration: None, .. })
}

/// A live treatment's category and time, and whether it holds open, if it feeds a category.
fn classified(conn: &Connection, seq: i64) -> Result<Option<(Category, i64, bool)>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT doc, mills FROM treatments WHERE seq = ? AND is_valid = 1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((doc, mills)) = row else {
        return Ok(None);
    };
    let doc: Map<String, Value> = serde_json::from_str(&doc)?;
    Ok(rules::classify(&doc).map(|(c, e)| (c, mills, holds_open(&e))))
}

/// Brings the spans up to date with the treatments and device statuses this transaction
/// changed. Runs on the writer's connection inside the open transaction.
pub fn refresh(conn: &Connection) -> Result<()> {
    let treatments = changed(conn, "treatments")?;
    let statuses = changed(conn, "devicestatus")?;
    refresh_rows(conn, &treatments, &statuses)
}

/// Keeps the earliest moment per key.
fn earliest<K: Ord>(map: &mut BTreeMap<K, i64>, k: K, t: i64) {
    let e = map.entry(k).or_insert(t);
    *e = (*e).min(t);
}

/// Keeps the earliest and the latest moment per key.
fn widen<K: Ord>(map: &mut BTreeMap<K, (i64, i64)>, k: K, t: i64) {
    let e = map.entry(k).or_insert((t, t));
    *e = (e.0.min(t), e.1.max(t));
}

/// Brings the spans up to date with these treatment and devicestatus rows (changed, added or
/// gone): the writer's upkeep, and retention for the rows it deletes.
pub fn refresh_rows(conn: &Connection, treatments: &[i64], statuses: &[i64]) -> Result<()> {
    // The earliest and latest changed moment per category: the old time and the new one both
    // count.
    let mut from: BTreeMap<Category, (i64, i64)> = BTreeMap::new();
    for &seq in treatments {
        let old: Option<(String, i64)> = conn
            .prepare_cached("SELECT category, mills FROM span_sources WHERE seq = ?")?
            .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((c, t)) = old {
            if let Some(c) = Category::from_name(&c) {
                widen(&mut from, c, t);
            }
        }
        match classified(conn, seq)? {
            Some((c, t, open)) => {
                widen(&mut from, c, t);
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO span_sources (seq, category, mills, holds_open)
                     VALUES (?, ?, ?, ?)",
                )?
                .execute(params![seq, c.name(), t, open])?;
            }
            None => {
                conn.prepare_cached("DELETE FROM span_sources WHERE seq = ?")?
                    .execute([seq])?;
            }
        }
    }
    // Where the spans of a category that device statuses also feed may have changed, for
    // their shadows.
    let mut changed_from: BTreeMap<Category, i64> = BTreeMap::new();
    for (c, (t, until)) in from {
        let anchor = rederive(conn, c, t, until)?;
        earliest(&mut changed_from, c, anchor);
    }
    let mut runs: BTreeMap<(Category, String), (i64, i64)> = BTreeMap::new();
    for &seq in statuses {
        let old = status_sources_of(conn, seq)?;
        conn.prepare_cached("DELETE FROM status_sources WHERE seq = ?")?
            .execute([seq])?;
        for (c, device, t) in old.into_iter().chain(sample(conn, seq)?) {
            widen(&mut runs, (c, device), t);
        }
    }
    for ((c, device), (t, until)) in runs {
        let anchor = rederive_runs(conn, c, &device, t, until)?;
        earliest(&mut changed_from, c, anchor);
    }
    for (c, t) in changed_from {
        if status::CATEGORIES.contains(&c) {
            shadow(conn, c, t)?;
        }
    }
    Ok(())
}

/// The (category, device, time) of the samples a devicestatus row gave when last derived.
fn status_sources_of(conn: &Connection, seq: i64) -> Result<Vec<(Category, String, i64)>> {
    let rows = conn
        .prepare_cached("SELECT category, device, mills FROM status_sources WHERE seq = ?")?
        .query_map([seq], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, d, t)| Category::from_name(&c).map(|c| (c, d, t)))
        .collect())
}

/// Records what a live devicestatus row reports (status_sources); returns the categories it
/// feeds with its device and time.
fn sample(conn: &Connection, seq: i64) -> Result<Vec<(Category, String, i64)>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT doc, mills FROM devicestatus WHERE seq = ? AND is_valid = 1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((doc, mills)) = row else {
        return Ok(Vec::new());
    };
    let doc: Map<String, Value> = serde_json::from_str(&doc)?;
    let device = status::device(&doc);
    let mut out = Vec::new();
    for (c, reading) in status::classify(&doc) {
        let (state, key, metadata) = match &reading {
            Some(r) => (
                Some(r.state.as_str()),
                Some(r.key.as_str()),
                Some(serde_json::to_string(&r.metadata)?),
            ),
            None => (None, None, None),
        };
        conn.prepare_cached(
            "INSERT OR REPLACE INTO status_sources (seq, category, device, mills, state, key, metadata)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![seq, c.name(), device, mills, state, key, metadata])?;
        out.push((c, device.clone(), mills));
    }
    Ok(out)
}

const SPAN_COLUMNS: &str = "id, category, state, start_mills, end_mills, source, origin,
    origin_seq, superseded_by, superseded_at, ended_by, metadata, origin_kind, shadowed_by";

/// The sample of a device before a moment.
const PREV_SAMPLE: &str = "SELECT mills, key FROM status_sources
    WHERE category = ? AND device = ? AND mills < ? ORDER BY mills DESC, seq DESC LIMIT 1";

/// The newest run of a device starting by a moment.
const RUN_AT: &str = "FROM state_spans WHERE category = ? AND device = ? AND start_mills <= ?
    ORDER BY start_mills DESC, origin_seq DESC LIMIT 1";

/// The runs of a device starting in a range, and the run in force before it.
const DELETE_RUNS: &str = "DELETE FROM state_spans WHERE category = ?1 AND device = ?2
    AND ((start_mills >= ?3 AND start_mills <= ?4) OR id = ?5)";

/// The run of a device that one sample starts.
const DELETE_RUN_FROM: &str = "DELETE FROM state_spans
    WHERE category = ? AND device = ? AND start_mills = ? AND origin_seq = ?";

/// The samples of a device from a moment on.
const SAMPLES_FROM: &str =
    "SELECT s.seq, s.mills, coalesce(d.identifier, d.id), s.state, s.key, s.metadata
     FROM status_sources s JOIN devicestatus d ON d.seq = s.seq
     WHERE s.category = ? AND s.device = ? AND s.mills >= ? ORDER BY s.mills, s.seq";

/// The runs of a category reaching a moment or later: two index ranges of (category,
/// end_mills); `+device` keeps the planner on them.
const RUNS_REACHING: &str = "SELECT id, start_mills, end_mills FROM state_spans
    WHERE category = ?1 AND end_mills IS NULL AND +device IS NOT NULL
    UNION ALL
    SELECT id, start_mills, end_mills FROM state_spans
    WHERE category = ?1 AND end_mills >= ?2 AND +device IS NOT NULL";

/// The newest span from treatments (device NULL) of a category starting by a moment.
const TREATMENT_SPAN_AT: &str = "SELECT id, end_mills FROM state_spans
    WHERE category = ?1 AND device IS NULL AND start_mills <= ?2
    ORDER BY start_mills DESC, origin_seq DESC, id LIMIT 1";

/// The first span from treatments of a category starting in a range.
const TREATMENT_SPAN_IN: &str = "SELECT id FROM state_spans
    WHERE category = ?1 AND device IS NULL AND start_mills >= ?2 AND start_mills < ?3
    ORDER BY start_mills, origin_seq, id LIMIT 1";

/// Derives the runs of `device` in `c` from its last sample before `t` on again (samples from
/// `t` to `until` changed). Returns the earliest moment whose spans may have changed.
///
/// An upload in time order reads two samples (the one before and the new one) by index. Past
/// `until` the samples are as before, so the derivation stops at the first of them after which
/// the state is the one stored: a sample reporting no state, or one inside the run stored for
/// it. A backfilled or deleted sample thus re-reads the samples up to the end of the run it
/// touched (small rows of status_sources, no document parsed), not the history after it.
fn rederive_runs(conn: &Connection, c: Category, device: &str, t: i64, until: i64) -> Result<i64> {
    let prev: Option<(i64, Option<String>)> = conn
        .prepare_cached(PREV_SAMPLE)?
        .query_row(params![c.name(), device, t], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut current: Option<(Span, String)> = None;
    if let Some((at, Some(key))) = &prev {
        // The run the sample before belongs to: the newest one of this device starting by then.
        let sql = format!("SELECT {SPAN_COLUMNS} {RUN_AT}");
        let run = conn
            .prepare_cached(&sql)?
            .query_row(params![c.name(), device, at], span_row)
            .optional()?;
        if let Some(run) = run {
            let mut run = parsed(run)?;
            run.end = None;
            run.superseded_by = None;
            run.superseded_at = None;
            run.ended_by = None;
            run.shadowed_by = None;
            current = Some((run, key.clone()));
        }
    }
    let kept = current
        .as_ref()
        .map(|(s, _)| s.id.clone())
        .unwrap_or_default();
    conn.prepare_cached(DELETE_RUNS)?
        .execute(params![c.name(), device, t, until, kept])?;
    let run_at = format!("SELECT id {RUN_AT}");
    let mut fold = status::RunFold::new(c, device, current);
    let mut stmt = conn.prepare_cached(SAMPLES_FROM)?;
    let mut rows = stmt.query(params![c.name(), device, t])?;
    while let Some(r) = rows.next()? {
        let state: Option<String> = r.get(3)?;
        let key: Option<String> = r.get(4)?;
        let metadata: Option<String> = r.get(5)?;
        let reading = match (state, key, metadata) {
            (Some(state), Some(key), Some(metadata)) => Some(status::Reading {
                state,
                key,
                metadata: serde_json::from_str(&metadata)?,
            }),
            _ => None,
        };
        let s = status::Sample {
            seq: r.get(0)?,
            mills: r.get(1)?,
            origin: r.get(2)?,
            reading,
        };
        if let Some(span) = fold.push(&s) {
            insert(conn, &span)?;
        }
        if s.mills > until {
            let Some(id) = fold.current_id() else {
                // No state after this sample, whatever came before: as stored from here on.
                return Ok(prev.map_or(t, |(at, _)| at));
            };
            let stored: Option<String> = conn
                .prepare_cached(&run_at)?
                .query_row(params![c.name(), device, s.mills], |r| r.get(0))
                .optional()?;
            if stored.as_deref() == Some(id) {
                return Ok(prev.map_or(t, |(at, _)| at));
            }
            // Not the stored state yet: a run stored as starting here is no longer one.
            conn.prepare_cached(DELETE_RUN_FROM)?.execute(params![
                c.name(),
                device,
                s.mills,
                s.seq
            ])?;
        }
    }
    if let Some(span) = fold.finish() {
        insert(conn, &span)?;
    }
    Ok(prev.map_or(t, |(at, _)| at))
}

/// Precedence: a span from device statuses that a span from treatments of the same category
/// overlaps is hidden behind it (`shadowed_by`), so the same suspension or override uploaded
/// both ways is listed once. Recomputed for the status spans of `c` that reach `from` or later
/// (a span ends at or after its start, so one starting after `from` is among them).
fn shadow(conn: &Connection, c: Category, from: i64) -> Result<()> {
    let runs = conn
        .prepare_cached(RUNS_REACHING)?
        .query_map(params![c.name(), from], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, start, end) in runs {
        // Treatment spans of these categories follow one another (one at a time): the one in
        // force at the run's start, else the first starting inside it.
        let before: Option<(String, Option<i64>)> = conn
            .prepare_cached(TREATMENT_SPAN_AT)?
            .query_row(params![c.name(), start], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let covering = before
            .filter(|(_, e)| e.is_none_or(|e| e > start))
            .map(|(id, _)| id);
        let inside = || -> Result<Option<String>> {
            Ok(conn
                .prepare_cached(TREATMENT_SPAN_IN)?
                .query_row(params![c.name(), start, end.unwrap_or(i64::MAX)], |r| {
                    r.get(0)
                })
                .optional()?)
        };
        let by = match covering {
            Some(id) => Some(id),
            None => inside()?,
        };
        conn.prepare_cached("UPDATE state_spans SET shadowed_by = ? WHERE id = ?")?
            .execute(params![by, id])?;
    }
    Ok(())
}

/// The earliest moment from which a change at `t` makes `c` derive differently.
fn anchor(conn: &Connection, c: Category, t: i64) -> Result<i64> {
    Ok(match c.layering() {
        // The newest switch without an end before `t` holds at every later moment no newer
        // switch covers, so the switches before it no longer matter: from it on.
        Layering::Stack => conn
            .prepare_cached(
                "SELECT max(mills) FROM span_sources
                 WHERE category = ? AND holds_open = 1 AND mills < ?",
            )?
            .query_row(params![c.name(), t], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(i64::MIN),
        Layering::Independent => t,
        Layering::Replace => {
            let before: Option<i64> = conn
                .prepare_cached(
                    "SELECT max(start_mills) FROM state_spans
                     WHERE category = ? AND device IS NULL AND start_mills < ?",
                )?
                .query_row(params![c.name(), t], |r| r.get(0))?;
            before.map_or(t, |b| b.min(t))
        }
    })
}

/// Derives the spans of `c` from treatments starting at or after the anchor of a change at `t`
/// again, up to the first event after `until` (the latest changed moment): from there on
/// nothing changed, since the span an event of a one-at-a-time or independent category opens
/// depends on that event alone. So a backfilled treatment, or retention deleting the oldest,
/// re-reads a few events, not the history after them. Returns the anchor.
fn rederive(conn: &Connection, c: Category, t: i64, until: i64) -> Result<i64> {
    let from = anchor(conn, c, t)?;
    if c.layering() == Layering::Stack {
        // A switch can hold again after any later one ends: all of them from the anchor (the
        // piece in force before it ends at the anchor, superseded by the open switch there).
        conn.prepare_cached(
            "DELETE FROM state_spans WHERE category = ? AND device IS NULL AND start_mills >= ?",
        )?
        .execute(params![c.name(), from])?;
        let mut events = Vec::new();
        each_event(conn, c, from, |e| {
            events.push(e);
            Ok(true)
        })?;
        for span in derive::derive(c, &events) {
            insert(conn, &span)?;
        }
        return Ok(from);
    }
    conn.prepare_cached(
        "DELETE FROM state_spans
         WHERE category = ? AND device IS NULL AND start_mills >= ? AND start_mills <= ?",
    )?
    .execute(params![c.name(), from, until])?;
    // One event at a time: years of temp basals are never held at once.
    let mut fold = derive::Fold::new(c);
    let mut stopped = false;
    each_event(conn, c, from, |e| {
        if let Some(span) = fold.push(&e) {
            insert(conn, &span)?;
        }
        // The span this event opened is stored already, ended by the events after it.
        stopped = e.mills > until;
        Ok(!stopped)
    })?;
    if !stopped {
        if let Some(span) = fold.finish() {
            insert(conn, &span)?;
        }
    }
    Ok(from)
}

/// The live treatments feeding `c` from `from` on, in (mills, seq) order, each handed to
/// `each` as it is read, until it answers false.
fn each_event(
    conn: &Connection,
    c: Category,
    from: i64,
    mut each: impl FnMut(Event) -> Result<bool>,
) -> Result<()> {
    // In span_sources' index order (its mills are the treatment's), so rows stream.
    let mut stmt = conn.prepare_cached(
        "SELECT t.seq, t.mills, coalesce(t.identifier, t.id), t.doc
         FROM span_sources s JOIN treatments t ON t.seq = s.seq
         WHERE s.category = ? AND s.mills >= ? AND t.is_valid = 1
         ORDER BY s.mills, s.seq",
    )?;
    let mut rows = stmt.query(params![c.name(), from])?;
    while let Some(r) = rows.next()? {
        let doc: String = r.get(3)?;
        let more = each(Event {
            seq: r.get(0)?,
            mills: r.get(1)?,
            origin: r.get(2)?,
            doc: serde_json::from_str(&doc)?,
        })?;
        if !more {
            break;
        }
    }
    Ok(())
}

fn insert(conn: &Connection, s: &Span) -> Result<()> {
    let device = match s.origin_kind {
        OriginKind::Treatment => None,
        OriginKind::DeviceStatus => Some(
            s.metadata
                .get("device")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
    };
    conn.prepare_cached(
        "INSERT OR REPLACE INTO state_spans (id, category, state, start_mills, end_mills, source,
             origin, origin_seq, superseded_by, superseded_at, ended_by, metadata, origin_kind,
             device, shadowed_by, adjusts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        s.id,
        s.category.name(),
        s.state,
        s.start,
        s.end,
        s.source,
        s.origin,
        s.origin_seq,
        s.superseded_by,
        s.superseded_at,
        s.ended_by,
        serde_json::to_string(&s.metadata)?,
        s.origin_kind.name(),
        device,
        s.shadowed_by,
        crate::spans::adjust::adjusts(s),
    ])?;
    Ok(())
}

/// A state_spans row as read ([`SPAN_COLUMNS`]), before its text columns are parsed.
type SpanRow = (Span, String, String, String);

fn span_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpanRow> {
    Ok((
        Span {
            id: r.get(0)?,
            category: Category::Profile,
            state: r.get(2)?,
            start: r.get(3)?,
            end: r.get(4)?,
            source: r.get(5)?,
            metadata: Map::new(),
            origin: r.get(6)?,
            origin_seq: r.get(7)?,
            origin_kind: OriginKind::Treatment,
            superseded_by: r.get(8)?,
            superseded_at: r.get(9)?,
            ended_by: r.get(10)?,
            shadowed_by: r.get(13)?,
        },
        r.get(1)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

/// The span of a row; an error for a category or origin this nightlite does not know.
fn parsed((mut span, category, metadata, kind): SpanRow) -> Result<Span> {
    span.category = Category::from_name(&category)
        .ok_or_else(|| crate::Error::Internal(format!("unknown span category {category:?}")))?;
    span.origin_kind = OriginKind::from_name(&kind)
        .ok_or_else(|| crate::Error::Internal(format!("unknown span origin {kind:?}")))?;
    span.metadata = serde_json::from_str(&metadata)?;
    Ok(span)
}

/// Derives every span from the stored treatments again (`nightlite rebuild-spans`, and the
/// first start after the upgrade that added spans). Returns how many spans there are.
pub fn rebuild(conn: &Connection) -> Result<usize> {
    conn.execute_batch(
        "DELETE FROM state_spans; DELETE FROM span_sources; DELETE FROM status_sources;",
    )?;
    let placeholders = vec!["?"; rules::EVENT_TYPES.len()].join(", ");
    let sql = format!(
        "SELECT seq, mills, doc FROM treatments WHERE is_valid = 1 AND eventType IN ({placeholders})"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(rules::EVENT_TYPES.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut sources = Vec::new();
    for row in rows {
        let (seq, mills, doc) = row?;
        let doc: Map<String, Value> = serde_json::from_str(&doc)?;
        if let Some((c, e)) = rules::classify(&doc) {
            sources.push((seq, c, mills, holds_open(&e)));
        }
    }
    drop(stmt);
    for (seq, c, mills, open) in &sources {
        conn.prepare_cached(
            "INSERT INTO span_sources (seq, category, mills, holds_open) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![seq, c.name(), mills, open])?;
    }
    for c in Category::ALL {
        rederive(conn, c, i64::MIN, i64::MAX)?;
    }
    // Device statuses: the samples that report a state, then their runs per device.
    let seqs = conn
        .prepare(
            "SELECT seq FROM devicestatus WHERE is_valid = 1
               AND (json_type(doc, '$.pump') = 'object' OR json_type(doc, '$.override') = 'object')",
        )?
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    for seq in seqs {
        sample(conn, seq)?;
    }
    let runs = conn
        .prepare("SELECT DISTINCT category, device FROM status_sources ORDER BY category, device")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (c, device) in runs {
        if let Some(c) = Category::from_name(&c) {
            rederive_runs(conn, c, &device, i64::MIN, i64::MAX)?;
        }
    }
    for c in status::CATEGORIES {
        shadow(conn, c, i64::MIN)?;
    }
    conn.execute_batch("UPDATE span_status SET built = 1")?;
    Ok(conn.query_row("SELECT count(*) FROM state_spans", [], |r| r.get(0))?)
}

/// `nightlite rebuild-spans`: derives every span of the database in `data_dir` again, with
/// the server stopped (it holds the data directory). Returns how many spans there are.
pub fn rebuild_at(data_dir: &std::path::Path) -> Result<usize> {
    let db = data_dir.join(super::DB_FILE);
    if !db.is_file() {
        return Err(crate::Error::NotFound(format!(
            "no database at {}",
            db.display()
        )));
    }
    let _lock = super::lock::DataDirLock::try_acquire(data_dir)?.ok_or_else(|| {
        crate::Error::Internal(format!(
            "a nightlite server is running on {}; stop it first",
            data_dir.display()
        ))
    })?;
    let mut conn = Connection::open(&db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    super::migrate::migrate(&mut conn)?;
    let tx = conn.transaction()?;
    let n = rebuild(&tx)?;
    tx.commit()?;
    Ok(n)
}

/// Whether the spans of the treatments stored before spans existed have been derived.
pub fn built(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row("SELECT built FROM span_status", [], |r| r.get::<_, i64>(0))? == 1)
}

/// What a span query asks for (docs/state-spans.md).
#[derive(Debug, Clone, Default)]
pub struct SpanQuery {
    /// Spans overlapping [from, to]: `start <= to` and (`end` NULL or `end > from`).
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Any of these; all when empty.
    pub categories: Vec<Category>,
    pub source: Option<String>,
    /// Some(now): in force at `now` (true) or not (false).
    pub active: Option<(bool, i64)>,
    /// Some((status, now)): only spans with that status at `now` ([`Status::of`]'s rules).
    pub status: Option<(Status, i64)>,
    /// Only the spans that change targets or insulin (spans::adjust::adjusts, computed when the
    /// span is stored).
    pub adjustments_only: bool,
    pub limit: usize,
    pub offset: usize,
}

/// Spans matching `q`, newest start first.
pub fn list(conn: &Connection, q: &SpanQuery) -> Result<Vec<Span>> {
    let mut f = SqlFilter {
        sql: "1".into(),
        params: vec![],
    };
    let mut and = |sql: &str, params: Vec<rusqlite::types::Value>| {
        f.sql = format!("{} AND ({sql})", f.sql);
        f.params.extend(params);
    };
    use rusqlite::types::Value as V;
    if let Some(from) = q.from {
        and("end_mills IS NULL OR end_mills > ?", vec![V::Integer(from)]);
    }
    if let Some(to) = q.to {
        and("start_mills <= ?", vec![V::Integer(to)]);
    }
    if !q.categories.is_empty() {
        let marks = vec!["?"; q.categories.len()].join(", ");
        and(
            &format!("category IN ({marks})"),
            q.categories
                .iter()
                .map(|c| V::Text(c.name().into()))
                .collect(),
        );
    }
    if let Some(source) = &q.source {
        and("source = ?", vec![V::Text(source.clone())]);
    }
    if let Some((active, now)) = q.active {
        let in_force = "start_mills <= ? AND (end_mills IS NULL OR end_mills > ?)";
        let sql = if active {
            in_force.to_string()
        } else {
            format!("NOT ({in_force})")
        };
        and(&sql, vec![V::Integer(now), V::Integer(now)]);
    }
    if let Some((status, now)) = q.status {
        let open = "superseded_by IS NULL AND ended_by IS NULL";
        let (sql, params) = match status {
            Status::Superseded => ("superseded_by IS NOT NULL".to_string(), vec![]),
            Status::Cancelled => (
                "superseded_by IS NULL AND ended_by IS NOT NULL".to_string(),
                vec![],
            ),
            Status::Scheduled => (format!("{open} AND start_mills > ?"), vec![V::Integer(now)]),
            Status::Active => (
                format!("{open} AND start_mills <= ? AND (end_mills IS NULL OR end_mills > ?)"),
                vec![V::Integer(now), V::Integer(now)],
            ),
            Status::Expired => (
                format!("{open} AND start_mills <= ? AND end_mills IS NOT NULL AND end_mills <= ?"),
                vec![V::Integer(now), V::Integer(now)],
            ),
        };
        and(&sql, params);
    }
    if q.adjustments_only {
        and("adjusts = 1", vec![]);
    }
    // A status span behind a treatment span is not listed (precedence: [`shadow`]).
    let sql = format!(
        "SELECT {SPAN_COLUMNS} FROM state_spans WHERE shadowed_by IS NULL AND {}
         ORDER BY start_mills DESC, id LIMIT ? OFFSET ?",
        f.sql
    );
    let mut params = f.params;
    params.push(V::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    params.push(V::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), span_row)?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if Category::from_name(&row.1).is_none() || OriginKind::from_name(&row.3).is_none() {
            // Written by a newer nightlite: not shown rather than shown as something else.
            continue;
        }
        out.push(parsed(row)?);
    }
    Ok(out)
}

/// The live treatments with these `seq`s (the origins of spans), parsed.
pub fn origins(conn: &Connection, seqs: &[i64]) -> Result<Vec<super::StoredDoc>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; seqs.len()].join(", ");
    let sql = format!(
        "SELECT {} FROM treatments WHERE seq IN ({marks}) AND is_valid = 1",
        super::COLUMNS
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        rusqlite::params_from_iter(seqs.iter()),
        super::StoredDoc::from_row,
    )?;
    rows.map(|r| super::StoredDoc::parse(r?)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::store::{prepare, query, upsert, Collection, Store};

    const T0: i64 = 1_765_094_400_000;
    const MIN: i64 = 60_000;
    const T: Collection = Collection::Treatments;

    /// A small deterministic generator (no dependency for tests).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    fn everything() -> SpanQuery {
        SpanQuery {
            limit: 100_000,
            ..SpanQuery::default()
        }
    }

    async fn all_spans(store: &Store) -> Vec<Span> {
        let mut spans = store.read(|c| list(c, &everything())).await.unwrap();
        spans.sort_by(|a, b| a.id.cmp(&b.id));
        spans
    }

    fn treatment(r: &mut Lcg) -> Value {
        const TYPES: [&str; 9] = [
            "Temporary Override",
            "Temporary Target",
            "Temp Basal",
            "Profile Switch",
            "Suspend Pump",
            "Resume Pump",
            "Sensor Start",
            "Exercise",
            "Meal Bolus",
        ];
        let at = T0 + i64::try_from(r.below(24 * 60)).unwrap() * MIN;
        let mut doc = json!({
            "eventType": TYPES[usize::try_from(r.below(9)).unwrap()],
            "created_at": crate::dates::to_iso(at),
            "enteredBy": "test",
            "profile": "P",
        });
        let durations = [None, Some(0), Some(15), Some(30), Some(120)];
        if let Some(d) = durations[usize::try_from(r.below(5)).unwrap()] {
            doc["duration"] = json!(d);
        }
        doc
    }

    /// A store in a new temporary directory (kept while the TempDir lives).
    fn opened() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// Random writes, out of time order, some grouped in one transaction, with moves and
    /// deletes: the spans kept up to date commit by commit equal the spans derived afresh.
    #[tokio::test]
    async fn upkeep_on_every_commit_equals_a_rebuild() {
        let (_dir, store) = opened();
        let mut r = Lcg(7);
        let mut ids: Vec<String> = Vec::new();
        for round in 0..120 {
            let ops: Vec<(u64, Value, u64)> = (0..=r.below(3))
                .map(|_| (r.below(10), treatment(&mut r), r.below(1_000)))
                .collect();
            let known = ids.clone();
            let added = store
                .write(move |c| {
                    let mut added = Vec::new();
                    for (kind, doc, pick) in ops {
                        let target = (!known.is_empty())
                            .then(|| known[usize::try_from(pick).unwrap() % known.len()].clone());
                        match (kind, target) {
                            (0..=1, Some(id)) => {
                                // Moved in time and given another duration.
                                let mut set = Map::new();
                                set.insert("created_at".into(), doc["created_at"].clone());
                                set.insert("duration".into(), json!(pick % 90));
                                store_merge(c, &id, set);
                            }
                            (2, Some(id)) => {
                                let f = query::id_filter(T, &id).unwrap();
                                crate::store::soft_delete(c, T, &f).unwrap();
                            }
                            _ => {
                                for d in prepare::prepare(T, doc, "t", T0).unwrap() {
                                    let w = upsert::upsert(c, T, d, upsert::Merge::Replace, T0)
                                        .unwrap();
                                    added.push(w.id);
                                }
                            }
                        }
                    }
                    Ok(added)
                })
                .await
                .unwrap();
            ids.extend(added);
            if round % 40 == 39 {
                let kept = all_spans(&store).await;
                store.write(rebuild).await.unwrap();
                assert_eq!(kept, all_spans(&store).await, "after round {round}");
            }
        }
        assert!(all_spans(&store).await.len() > 20, "the test makes spans");
    }

    const D: Collection = Collection::DeviceStatus;

    /// Every stored span, hidden ones included, by id.
    async fn all_rows(store: &Store) -> Vec<Span> {
        store
            .read(|c| {
                let sql = format!("SELECT {SPAN_COLUMNS} FROM state_spans ORDER BY id");
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map([], span_row)?;
                rows.map(|r| parsed(r?)).collect::<Result<Vec<Span>>>()
            })
            .await
            .unwrap()
    }

    /// A device status as Loop (`pump.suspended`, `override`) or OpenAPS/Trio
    /// (`pump.status`) upload it, from one of two devices.
    fn status(r: &mut Lcg) -> Value {
        let at = T0 + i64::try_from(r.below(12 * 60)).unwrap() * MIN;
        let suspended = r.below(3) == 0;
        if r.below(2) == 0 {
            let mut doc = json!({
                "device": "loop://iPhone",
                "created_at": crate::dates::to_iso(at),
                "pump": { "clock": crate::dates::to_iso(at), "suspended": suspended, "reservoir": 100 },
                "loop": { "timestamp": crate::dates::to_iso(at) },
            });
            let over = r.below(3);
            doc["override"] = if over == 0 {
                json!({ "active": false, "timestamp": crate::dates::to_iso(at) })
            } else {
                json!({ "active": true, "name": format!("P{over}"), "multiplier": 0.8,
                    "timestamp": crate::dates::to_iso(T0 + i64::try_from(over).unwrap() * 60 * MIN),
                    "currentCorrectionRange": { "minValue": 140, "maxValue": 160 }, "duration": 3600 })
            };
            doc
        } else {
            let s = if suspended { "suspended" } else { "normal" };
            json!({
                "device": "openaps://rig",
                "created_at": crate::dates::to_iso(at),
                "pump": { "clock": crate::dates::to_iso(at),
                    "status": { "status": s, "suspended": suspended, "bolusing": false } },
            })
        }
    }

    fn write_one(c: &Connection, coll: Collection, doc: Value) -> Vec<String> {
        prepare::prepare(coll, doc, "t", T0)
            .unwrap()
            .into_iter()
            .map(|d| {
                upsert::upsert(c, coll, d, upsert::Merge::Replace, T0)
                    .unwrap()
                    .id
            })
            .collect()
    }

    /// Device statuses and the treatments that hold the same states, written out of time
    /// order, moved and deleted: the runs, their supersessions and which treatment hides
    /// which run, kept commit by commit, equal a rebuild.
    #[tokio::test]
    async fn status_upkeep_on_every_commit_equals_a_rebuild() {
        let (_dir, store) = opened();
        let mut r = Lcg(3);
        let mut ids: Vec<(Collection, String)> = Vec::new();
        for round in 0..150 {
            let ops: Vec<(u64, Value, Value, u64)> = (0..=r.below(4))
                .map(|_| {
                    (
                        r.below(12),
                        status(&mut r),
                        treatment(&mut r),
                        r.below(1_000),
                    )
                })
                .collect();
            let known = ids.clone();
            let added = store
                .write(move |c| {
                    let mut added = Vec::new();
                    for (kind, status, treatment, pick) in ops {
                        let target = (!known.is_empty())
                            .then(|| known[usize::try_from(pick).unwrap() % known.len()].clone());
                        match (kind, target) {
                            (0, Some((coll, id))) => {
                                let mut set = Map::new();
                                set.insert("created_at".into(), status["created_at"].clone());
                                crate::store::merge_fields(c, coll, &id, &set, &[]).unwrap();
                            }
                            (1, Some((coll, id))) => {
                                let f = query::id_filter(coll, &id).unwrap();
                                crate::store::soft_delete(c, coll, &f).unwrap();
                            }
                            (2..=3, _) => {
                                for id in write_one(c, T, treatment) {
                                    added.push((T, id));
                                }
                            }
                            _ => {
                                for id in write_one(c, D, status) {
                                    added.push((D, id));
                                }
                            }
                        }
                    }
                    Ok(added)
                })
                .await
                .unwrap();
            ids.extend(added);
            if round % 30 == 29 {
                let kept = all_rows(&store).await;
                store.write(rebuild).await.unwrap();
                assert_eq!(kept, all_rows(&store).await, "after round {round}");
            }
        }
        let rows = all_rows(&store).await;
        let from_status = |k: &Span| k.origin_kind == OriginKind::DeviceStatus;
        assert!(rows.iter().filter(|s| from_status(s)).count() > 10, "runs");
        assert!(
            rows.iter()
                .any(|s| from_status(s) && s.shadowed_by.is_some()),
            "some runs are behind treatments"
        );
        assert!(
            rows.iter()
                .any(|s| from_status(s) && s.shadowed_by.is_none()),
            "some runs are listed"
        );
    }

    /// Retention deleting the oldest treatments and statuses takes their spans with it: the
    /// spans left equal a rebuild of what is left.
    #[tokio::test]
    async fn retention_removes_the_spans_of_what_it_deletes() {
        let (_dir, store) = opened();
        let mut r = Lcg(5);
        let docs: Vec<(Value, Value)> = (0..200)
            .map(|_| (treatment(&mut r), status(&mut r)))
            .collect();
        store
            .write(move |c| {
                for (t, d) in docs {
                    write_one(c, T, t);
                    write_one(c, D, d);
                }
                Ok(())
            })
            .await
            .unwrap();
        let before = all_rows(&store).await;
        let cutoff = T0 + 6 * 60 * MIN;
        for coll in [T, D] {
            store
                .write(move |c| crate::store::retention::delete_older(c, coll, cutoff, 50))
                .await
                .unwrap();
        }
        let kept = all_rows(&store).await;
        store.write(rebuild).await.unwrap();
        assert_eq!(kept, all_rows(&store).await);
        assert!(kept.len() < before.len(), "spans went with their origins");
        let origins: Vec<i64> = store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT seq FROM treatments UNION ALL SELECT -seq FROM devicestatus",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
            })
            .await
            .unwrap();
        for s in &kept {
            let seq = match s.origin_kind {
                OriginKind::Treatment => s.origin_seq,
                OriginKind::DeviceStatus => -s.origin_seq,
            };
            assert!(origins.contains(&seq), "{s:?} outlived its origin");
        }
    }

    /// The statements the upkeep of one device status runs are index searches: none scans a
    /// table or sorts more than the rows of one moment, so a status costs the same with a day or
    /// years of history (docs/state-spans.md "Cost").
    #[test]
    fn status_upkeep_statements_are_index_searches() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        let statements = [
            PREV_SAMPLE.to_string(),
            format!("SELECT {SPAN_COLUMNS} {RUN_AT}"),
            DELETE_RUNS.to_string(),
            DELETE_RUN_FROM.to_string(),
            SAMPLES_FROM.to_string(),
            RUNS_REACHING.to_string(),
            TREATMENT_SPAN_AT.to_string(),
            TREATMENT_SPAN_IN.to_string(),
            "SELECT category, device, mills FROM status_sources WHERE seq = ?".to_string(),
        ];
        for sql in statements {
            let n = c.prepare(&sql).unwrap().parameter_count();
            let params = vec![rusqlite::types::Value::Integer(0); n];
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            for step in &plan {
                // A search on the category alone reads all of the category's rows.
                assert!(
                    !step.starts_with("SCAN")
                        && !step.ends_with("(category=?)")
                        && !step.contains("USE TEMP B-TREE FOR ORDER BY"),
                    "{sql}\n{plan:?}"
                );
            }
            assert!(
                plan.iter().any(|p| p.starts_with("SEARCH")),
                "{sql}\n{plan:?}"
            );
        }
    }

    /// Not a test: prints what one device status costs to store after a short and a long
    /// history (docs/state-spans.md "Cost"). Run with
    /// `cargo test --release --lib status_upkeep_cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore]
    async fn status_upkeep_cost() {
        for history in [1_000_i64, 100_000] {
            let (_dir, store) = opened();
            let loop_status = |i: i64| {
                let at = crate::dates::to_iso(T0 + i * 5 * MIN);
                json!({ "device": "loop://iPhone", "created_at": at,
                    "pump": { "clock": at, "suspended": i % 50 < 5 },
                    "override": { "active": i % 40 < 10, "name": "Run",
                        "timestamp": crate::dates::to_iso(T0 + i / 40 * 200 * MIN), "duration": 3600 } })
            };
            store
                .write(move |c| {
                    for i in 0..history {
                        write_one(c, D, loop_status(i));
                    }
                    Ok(())
                })
                .await
                .unwrap();
            // Baseline: statuses that report no state (no span upkeep beyond reading them).
            for with_state in [false, true] {
                let n = 500;
                let started = std::time::Instant::now();
                for i in 0..n {
                    let mut doc = loop_status(history + i + if with_state { n } else { 0 });
                    if !with_state {
                        doc = json!({ "device": "loop://iPhone", "created_at": doc["created_at"],
                            "uploader": { "battery": 50 } });
                    }
                    store
                        .write(move |c| {
                            write_one(c, D, doc);
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
                let each = started.elapsed() / u32::try_from(n).unwrap();
                println!(
                    "history {history} statuses, with state {with_state}: {each:?} per status"
                );
            }
        }
    }

    /// A span's `status` is computed in Rust for the reply (`Status::of`) and selected in SQL
    /// for `?status=`: both give the same spans, at any moment.
    #[tokio::test]
    async fn status_selected_in_sql_is_the_status_each_span_is_given() {
        let (_dir, store) = opened();
        let mut r = Lcg(13);
        let docs: Vec<Value> = (0..40).map(|_| treatment(&mut r)).collect();
        store
            .write(move |c| {
                for d in docs {
                    write_one(c, T, d);
                }
                Ok(())
            })
            .await
            .unwrap();
        let spans = all_spans(&store).await;
        // Every span's bounds, and a moment on each side of them.
        let mut nows: Vec<i64> = spans
            .iter()
            .flat_map(|s| [Some(s.start), s.end])
            .flatten()
            .flat_map(|t| [t - 1, t, t + 1])
            .collect();
        nows.sort_unstable();
        nows.dedup();
        for now in nows {
            for status in Status::ALL {
                let q = SpanQuery {
                    status: Some((status, now)),
                    ..everything()
                };
                let mut selected: Vec<String> = store
                    .read(move |c| list(c, &q))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.id)
                    .collect();
                selected.sort();
                let given: Vec<String> = spans
                    .iter()
                    .filter(|s| Status::of(s, now) == status)
                    .map(|s| s.id.clone())
                    .collect();
                assert_eq!(selected, given, "{status:?} at {now}");
            }
        }
    }

    fn store_merge(c: &Connection, id: &str, set: Map<String, Value>) {
        crate::store::merge_fields(c, T, id, &set, &[]).unwrap();
    }

    #[tokio::test]
    async fn the_rebuild_command_derives_what_upkeep_kept() {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let store = Store::open(dir.path()).unwrap();
            let mut r = Lcg(11);
            let docs: Vec<Value> = (0..30).map(|_| treatment(&mut r)).collect();
            store
                .write(move |c| {
                    for doc in docs {
                        for d in prepare::prepare(T, doc, "t", T0)? {
                            upsert::upsert(c, T, d, upsert::Merge::Replace, T0)?;
                        }
                    }
                    Ok(())
                })
                .await
                .unwrap();
            all_spans(&store).await
        };
        assert!(!kept.is_empty());
        assert_eq!(rebuild_at(dir.path()).unwrap(), kept.len());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(all_spans(&store).await, kept);
    }

    #[tokio::test]
    async fn a_version_3_database_with_treatments_gets_its_spans_at_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = crate::store::migrate::reference(3).unwrap();
            let doc = r#"{"eventType":"Temp Basal","created_at":"2025-12-07T08:00:00Z","duration":30,"absolute":0.5}"#;
            c.execute(
                "INSERT INTO treatments (id, doc, mills, srv_created, srv_modified)
                 VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', ?, ?, 1, 1)",
                rusqlite::params![doc, T0],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 3).unwrap();
            c.execute(
                "VACUUM INTO ?",
                [dir.path().join(crate::store::DB_FILE).to_str().unwrap()],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let spans = all_spans(&store).await;
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].category, Category::TempBasal);
        assert_eq!(spans[0].end, Some(T0 + 30 * MIN));
    }

    /// Version 5 adds spans from device statuses and the stored `adjusts` flag: a version-4
    /// database gets both at its first start (the migration marks the spans for a rebuild).
    #[tokio::test]
    async fn a_version_4_database_gets_status_spans_and_adjusts_at_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = crate::store::migrate::reference(4).unwrap();
            let ps = r#"{"eventType":"Profile Switch","created_at":"2025-12-07T08:00:00Z","profile":"P","percentage":80}"#;
            c.execute(
                "INSERT INTO treatments (id, doc, mills, srv_created, srv_modified)
                 VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', ?, ?, 1, 1)",
                rusqlite::params![ps, T0],
            )
            .unwrap();
            // As version 4 kept it: the switch's span, built.
            c.execute(
                "INSERT INTO state_spans (id, category, state, start_mills, source, origin,
                     origin_seq, metadata) VALUES ('x', 'Profile', 'Active', ?, 'P', 'a', 1, '{}')",
                [T0],
            )
            .unwrap();
            c.execute("UPDATE span_status SET built = 1", []).unwrap();
            let ds = r#"{"device":"loop://iPhone","created_at":"2025-12-07T08:05:00Z","pump":{"clock":"2025-12-07T08:05:00Z","suspended":true}}"#;
            c.execute(
                "INSERT INTO devicestatus (id, doc, mills, srv_created, srv_modified)
                 VALUES ('bbbbbbbbbbbbbbbbbbbbbbbb', ?, ?, 1, 1)",
                rusqlite::params![ds, T0 + 5 * MIN],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute(
                "VACUUM INTO ?",
                [dir.path().join(crate::store::DB_FILE).to_str().unwrap()],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let spans = all_spans(&store).await;
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!(
            spans
                .iter()
                .any(|s| s.category == Category::PumpMode
                    && s.origin_kind == OriginKind::DeviceStatus)
        );
        let q = SpanQuery {
            adjustments_only: true,
            ..everything()
        };
        let adjusting = store.read(move |c| list(c, &q)).await.unwrap();
        assert_eq!(adjusting.len(), 1, "the 80 % switch: {adjusting:?}");
    }

    #[tokio::test]
    async fn a_database_from_before_spans_gets_them_at_its_first_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let doc = json!({ "eventType": "Temporary Target", "created_at": "2025-12-07T08:00:00Z",
                "duration": 30, "targetTop": 100, "targetBottom": 100 });
            store
                .write(move |c| {
                    let d = prepare::prepare(T, doc, "t", T0)?.remove(0);
                    upsert::upsert(c, T, d, upsert::Merge::Replace, T0)?;
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(all_spans(&store).await.len(), 1, "upkeep derived it");
            store
                .write(|c| {
                    // As if written before version 4: no spans, not built.
                    c.execute_batch(
                        "DELETE FROM state_spans; DELETE FROM span_sources;
                         UPDATE span_status SET built = 0;",
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            assert!(all_spans(&store).await.is_empty());
        }
        let store = Store::open(dir.path()).unwrap();
        let spans = all_spans(&store).await;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].category, Category::TemporaryTarget);
        assert!(store.read(built).await.unwrap());
    }
}
