//! The state spans table (migrations/004-state-spans.sql), kept up to date by the writer.
//!
//! Upkeep runs in every group transaction that changed a treatment, just before the commit
//! (store/writer.rs), so spans change in the same commit as the treatments they come from,
//! whoever wrote them. It re-derives a category from an anchor: the earliest moment the change
//! can affect (for one-at-a-time categories, the start of the span in force just before the
//! change; for profiles, which resume after a temporary switch, everything). A test checks that
//! this gives the same table as a full rebuild.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::query::SqlFilter;
use crate::error::Result;
use crate::spans::{derive, rules, Category, Event, Layering, Span, Status};

/// The treatments a transaction changed, by `seq` (the change bus' notes, src/store/changes.rs).
fn changed_treatments(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq FROM temp.changes WHERE tbl = 'treatments' ORDER BY seq")?;
    let seqs = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(seqs)
}

/// A live treatment's category, time and document, if it feeds one.
fn classified(conn: &Connection, seq: i64) -> Result<Option<(Category, i64)>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT doc, mills FROM treatments WHERE seq = ? AND is_valid = 1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((doc, mills)) = row else {
        return Ok(None);
    };
    let doc: Map<String, Value> = serde_json::from_str(&doc)?;
    Ok(rules::classify(&doc).map(|(c, _)| (c, mills)))
}

/// Brings the spans up to date with the treatments this transaction changed. Runs on the
/// writer's connection inside the open transaction.
pub fn refresh(conn: &Connection) -> Result<()> {
    let seqs = changed_treatments(conn)?;
    if seqs.is_empty() {
        return Ok(());
    }
    // The earliest changed moment per category: the old time and the new one both count.
    let mut from: BTreeMap<Category, i64> = BTreeMap::new();
    let mut touch = |c: Category, t: i64| {
        let e = from.entry(c).or_insert(t);
        *e = (*e).min(t);
    };
    for seq in seqs {
        let old: Option<(String, i64)> = conn
            .prepare_cached("SELECT category, mills FROM span_sources WHERE seq = ?")?
            .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((c, t)) = old {
            if let Some(c) = Category::from_name(&c) {
                touch(c, t);
            }
        }
        match classified(conn, seq)? {
            Some((c, t)) => {
                touch(c, t);
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO span_sources (seq, category, mills) VALUES (?, ?, ?)",
                )?
                .execute(params![seq, c.name(), t])?;
            }
            None => {
                conn.prepare_cached("DELETE FROM span_sources WHERE seq = ?")?
                    .execute([seq])?;
            }
        }
    }
    for (c, t) in from {
        rederive(conn, c, t)?;
    }
    Ok(())
}

/// The earliest moment a change at `t` can affect in `c`.
fn anchor(conn: &Connection, c: Category, t: i64) -> Result<i64> {
    Ok(match c.layering() {
        Layering::Stack => i64::MIN,
        Layering::Independent => t,
        Layering::Replace => {
            let before: Option<i64> = conn
                .prepare_cached(
                    "SELECT max(start_mills) FROM state_spans WHERE category = ? AND start_mills < ?",
                )?
                .query_row(params![c.name(), t], |r| r.get(0))?;
            before.map_or(t, |b| b.min(t))
        }
    })
}

/// Derives the spans of `c` starting at or after the anchor of a change at `t` again.
fn rederive(conn: &Connection, c: Category, t: i64) -> Result<()> {
    let from = anchor(conn, c, t)?;
    conn.prepare_cached("DELETE FROM state_spans WHERE category = ? AND start_mills >= ?")?
        .execute(params![c.name(), from])?;
    if c.layering() == Layering::Stack {
        let mut events = Vec::new();
        each_event(conn, c, from, |e| {
            events.push(e);
            Ok(())
        })?;
        for span in derive::derive(c, &events) {
            insert(conn, &span)?;
        }
        return Ok(());
    }
    // One event at a time: years of temp basals are never held at once.
    let mut fold = derive::Fold::new(c);
    each_event(conn, c, from, |e| match fold.push(&e) {
        Some(span) => insert(conn, &span),
        None => Ok(()),
    })?;
    if let Some(span) = fold.finish() {
        insert(conn, &span)?;
    }
    Ok(())
}

/// The live treatments feeding `c` from `from` on, in (mills, seq) order, each handed to
/// `each` as it is read.
fn each_event(
    conn: &Connection,
    c: Category,
    from: i64,
    mut each: impl FnMut(Event) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.seq, t.mills, coalesce(t.identifier, t.id), t.doc
         FROM span_sources s JOIN treatments t ON t.seq = s.seq
         WHERE s.category = ? AND s.mills >= ? AND t.is_valid = 1
         ORDER BY t.mills, t.seq",
    )?;
    let mut rows = stmt.query(params![c.name(), from])?;
    while let Some(r) = rows.next()? {
        let doc: String = r.get(3)?;
        each(Event {
            seq: r.get(0)?,
            mills: r.get(1)?,
            origin: r.get(2)?,
            doc: serde_json::from_str(&doc)?,
        })?;
    }
    Ok(())
}

fn insert(conn: &Connection, s: &Span) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO state_spans (id, category, state, start_mills, end_mills, source,
             origin, origin_seq, superseded_by, superseded_at, ended_by, metadata)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    ])?;
    Ok(())
}

/// Derives every span from the stored treatments again (`nightlite rebuild-spans`, and the
/// first start after the upgrade that added spans). Returns how many spans there are.
pub fn rebuild(conn: &Connection) -> Result<usize> {
    conn.execute_batch("DELETE FROM state_spans; DELETE FROM span_sources;")?;
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
        if let Some((c, _)) = rules::classify(&doc) {
            sources.push((seq, c, mills));
        }
    }
    drop(stmt);
    for (seq, c, mills) in &sources {
        conn.prepare_cached("INSERT INTO span_sources (seq, category, mills) VALUES (?, ?, ?)")?
            .execute(params![seq, c.name(), mills])?;
    }
    for c in Category::ALL {
        rederive(conn, c, i64::MIN)?;
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
    /// Profile spans only when their percentage is a positive number other than 100 (the
    /// switches that change insulin, spans::adjust).
    pub scaled_profiles_only: bool,
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
    if q.scaled_profiles_only {
        let pct = "CAST(json_extract(metadata, '$.percentage') AS REAL)";
        and(
            &format!("category != 'Profile' OR ({pct} > 0 AND {pct} != 100)"),
            vec![],
        );
    }
    let sql = format!(
        "SELECT id, category, state, start_mills, end_mills, source, origin, origin_seq,
                superseded_by, superseded_at, ended_by, metadata
         FROM state_spans WHERE {} ORDER BY start_mills DESC, id LIMIT ? OFFSET ?",
        f.sql
    );
    let mut params = f.params;
    params.push(V::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    params.push(V::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
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
                superseded_by: r.get(8)?,
                superseded_at: r.get(9)?,
                ended_by: r.get(10)?,
            },
            r.get::<_, String>(1)?,
            r.get::<_, String>(11)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut span, category, metadata) = row?;
        let Some(category) = Category::from_name(&category) else {
            // Written by a newer nightlite: not shown rather than shown as something else.
            continue;
        };
        span.category = category;
        span.metadata = serde_json::from_str(&metadata)?;
        out.push(span);
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

    /// Random writes, out of time order, some grouped in one transaction, with moves and
    /// deletes: the spans kept up to date commit by commit equal the spans derived afresh.
    #[tokio::test]
    async fn upkeep_on_every_commit_equals_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
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
