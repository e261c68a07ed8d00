//! `seed`: a database of N one-minute sgv entries ending now, plus one treatment per 10 entries
//! and one devicestatus per 5 (a Loop user's rhythm), written directly with rusqlite through
//! nightlite's own schema and migration. Rows are what the server would store (see docs.rs).
//!
//! Fast because it skips what only matters for concurrent writers: indexes (and triggers, if a
//! schema has any) are dropped during the load and recreated from their own SQL afterwards
//! (index builds sort once instead of updating a B-tree per row), srv_modified is written
//! directly with the same strictly increasing rule the server's writes apply, synchronous is
//! OFF during the load, and documents are prepared on a second thread.

use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use nightlite::store::Collection;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::docs;
use super::Res;

pub const DB_FILE: &str = "nightlite.sqlite3";
const MARKER: &str = "bench-seed.json";
const ROWS_PER_TXN: usize = 50_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedInfo {
    pub entries: u64,
    pub treatments: u64,
    pub devicestatus: u64,
    /// The newest entry's time: the data ends here.
    pub newest_ms: i64,
    pub seconds: f64,
    pub db_bytes: u64,
}

pub fn proportional(entries: u64) -> (u64, u64) {
    (entries / 10, entries / 5)
}

/// The marker of a seeded directory, if it holds `entries` entries and is recent enough for
/// Nightscout's 4-day default window to still see its newest data, and still holds every
/// device status it was seeded with (a server with the default retention deletes old ones).
pub fn existing(dir: &Path, entries: u64) -> Option<SeedInfo> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let info: SeedInfo = serde_json::from_str(&text).ok()?;
    let age = nightlite::dates::now_ms() - info.newest_ms;
    if info.entries != entries || age >= 2 * 86_400_000 {
        return None;
    }
    let db = rusqlite::Connection::open_with_flags(
        dir.join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    let statuses: u64 = db
        .query_row("SELECT count(*) FROM devicestatus", [], |r| r.get(0))
        .ok()?;
    (statuses == info.devicestatus).then_some(info)
}

struct Row {
    coll: Collection,
    doc: String,
    mills: i64,
}

/// Generates the client documents of one collection, oldest first, every `step_min` minutes
/// back from `newest`, and prepares them; sends chunks of rows.
fn produce(
    coll: Collection,
    count: u64,
    step_min: i64,
    newest: i64,
    now: i64,
    tx: &mpsc::SyncSender<Res<Vec<Row>>>,
) -> bool {
    let mut chunk = Vec::with_capacity(ROWS_PER_TXN);
    let mut client = String::with_capacity(1024);
    for i in 0..count {
        let back = i64::try_from(count - 1 - i).unwrap_or(0);
        let ms = newest - back * step_min * 60_000;
        client.clear();
        docs::client_json(&mut client, coll, ms, i);
        match docs::stored(coll, &client, now) {
            Ok(rows) => chunk.extend(rows.into_iter().map(|r| Row {
                coll,
                doc: r.doc,
                mills: r.mills,
            })),
            Err(e) => {
                let _ = tx.send(Err(e));
                return false;
            }
        }
        if chunk.len() >= ROWS_PER_TXN
            && tx
                .send(Ok(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(ROWS_PER_TXN),
                )))
                .is_err()
        {
            return false;
        }
    }
    chunk.is_empty() || tx.send(Ok(chunk)).is_ok()
}

pub fn seed(dir: &Path, entries: u64) -> Res<SeedInfo> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir)?;
    for f in [
        DB_FILE,
        "nightlite.sqlite3-wal",
        "nightlite.sqlite3-shm",
        MARKER,
    ] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    let path = dir.join(DB_FILE);
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    nightlite::store::migrate::migrate(&mut conn)?;

    let tables = ["entries", "treatments", "devicestatus"];
    // Indexes (but the UNIQUE(id) constraint's own) and triggers, to recreate after the load.
    let mut saved: Vec<(String, String, String)> = vec![];
    {
        let mut stmt = conn.prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') \
             AND sql IS NOT NULL AND tbl_name IN ('entries', 'treatments', 'devicestatus')",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for r in rows {
            saved.push(r?);
        }
    }
    for (kind, name, _) in &saved {
        conn.execute_batch(&format!("DROP {} {name}", kind.to_uppercase()))?;
    }
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;

    let now = nightlite::dates::now_ms();
    let newest = now - now % 60_000 - 60_000;
    let (n_treat, n_ds) = proportional(entries);
    let (tx, rx) = mpsc::sync_channel::<Res<Vec<Row>>>(4);
    let producer = std::thread::spawn(move || {
        produce(Collection::Entries, entries, 1, newest, now, &tx)
            && produce(Collection::Treatments, n_treat, 10, newest, now, &tx)
            && produce(Collection::DeviceStatus, n_ds, 5, newest, now, &tx)
    });

    // srv_modified as the server sets it: max(now-ish, previous + 1), strictly increasing.
    let mut last_mod = [0i64; 3];
    let mut written = 0u64;
    for chunk in rx {
        let chunk = chunk?;
        let txn = conn.transaction()?;
        {
            let mut stmts = Vec::new();
            for t in tables {
                // entries also get the server's `sgv` column (schema version 3).
                let (col, val) = if t == "entries" {
                    (
                        ", sgv",
                        format!(", {}", nightlite::store::upsert::entry_sgv("?2")),
                    )
                } else {
                    ("", String::new())
                };
                stmts.push(txn.prepare(&format!(
                    "INSERT INTO {t} (id, doc, mills, srv_created, srv_modified{col}) \
                     VALUES (?1, ?2, ?3, ?4, ?5{val})"
                ))?);
            }
            for row in chunk {
                let k = match row.coll {
                    Collection::Entries => 0,
                    Collection::Treatments => 1,
                    _ => 2,
                };
                // Uploaded a few seconds after it happened.
                let created = row.mills + 3_000;
                last_mod[k] = created.max(last_mod[k] + 1);
                stmts[k].execute(params![
                    nightlite::ids::object_id(),
                    row.doc,
                    row.mills,
                    created,
                    last_mod[k]
                ])?;
                written += 1;
            }
        }
        txn.commit()?;
        if written % 1_000_000 < ROWS_PER_TXN as u64 {
            eprintln!(
                "  seeded {written} rows in {:.1} s",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    if !producer
        .join()
        .map_err(|_| "the document producer panicked")?
    {
        return Err("document generation stopped early".into());
    }
    eprintln!("  rows written; building indexes");
    for (_, _, sql) in &saved {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);

    let info = SeedInfo {
        entries,
        treatments: n_treat,
        devicestatus: n_ds,
        newest_ms: newest,
        seconds: super::stats::round(t0.elapsed().as_secs_f64(), 1),
        db_bytes: std::fs::metadata(&path)?.len(),
    };
    std::fs::write(dir.join(MARKER), serde_json::to_string_pretty(&info)?)?;
    Ok(info)
}
