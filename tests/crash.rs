//! Crash test: the real server binary as a child process, several clients writing
//! continuously (v1 entry batches and single treatments), killed with SIGKILL at random
//! moments, 20+ times, restarted each time on the same data directory. After each kill:
//! - `PRAGMA integrity_check` is ok (the file opened read-only with rusqlite);
//! - srv_modified is strictly increasing in write order within each table;
//! - every write that was answered 200 is there, by `_id`, identifier and date (GET);
//! - a batch that was sent but not answered is there whole or not at all.
//!
//! Bounded: about 25 cycles of under a second each. `CRASH_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use support::{now_ms, secret_sha1, Http, Process, Rng, Setup};

const CYCLES: usize = 24;
const BATCH: usize = 20;
const DAY: i64 = 86_400_000;

#[derive(Clone, Debug)]
struct Acked {
    id: String,
    identifier: String,
    ms: i64,
}

#[derive(Default)]
struct Ledger {
    entries: Vec<Acked>,
    treatments: Vec<Acked>,
    /// Entry batches sent whose answer never came: their dates.
    unanswered: Vec<Vec<i64>>,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// Posts entry batches until the server dies or `stop` is set.
fn entry_writer(
    base: &str,
    device: &str,
    next: &AtomicI64,
    stop: &AtomicBool,
    ledger: &Mutex<Ledger>,
) {
    let agent = agent();
    let hash = secret_sha1();
    while !stop.load(Ordering::Relaxed) {
        let dates: Vec<i64> = (0..BATCH)
            .map(|_| next.fetch_add(1000, Ordering::Relaxed))
            .collect();
        let body: Vec<Value> = dates
            .iter()
            .map(|d| json!({"type": "sgv", "sgv": 100 + d % 200, "date": d, "device": device, "direction": "Flat"}))
            .collect();
        let result = agent
            .post(&format!("{base}/api/v1/entries"))
            .set("api-secret", &hash)
            .send_json(Value::Array(body));
        match result {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                // A reply cut short by the kill is no acknowledgement.
                let Ok(items) = r.into_json::<Vec<Value>>() else {
                    ledger.lock().unwrap().unanswered.push(dates);
                    return;
                };
                assert_eq!(items.len(), BATCH, "one reply item per entry");
                let mut l = ledger.lock().unwrap();
                for (item, d) in items.iter().zip(&dates) {
                    assert_eq!(item["date"].as_i64(), Some(*d), "reply in request order");
                    l.entries.push(Acked {
                        id: item["_id"].as_str().unwrap().to_string(),
                        identifier: item["identifier"].as_str().unwrap().to_string(),
                        ms: *d,
                    });
                }
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "entries POST answered {code}: {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(_) => {
                ledger.lock().unwrap().unanswered.push(dates);
                return;
            }
        }
    }
}

/// Posts single treatments until the server dies or `stop` is set.
fn treatment_writer(base: &str, next: &AtomicI64, stop: &AtomicBool, ledger: &Mutex<Ledger>) {
    let agent = agent();
    let hash = secret_sha1();
    while !stop.load(Ordering::Relaxed) {
        let ms = next.fetch_add(1000, Ordering::Relaxed);
        let body = json!({"eventType": "Note", "notes": format!("crash {ms}"),
                          "created_at": nightlite::dates::to_iso(ms), "enteredBy": "crash-test"});
        let result = agent
            .post(&format!("{base}/api/v1/treatments"))
            .set("api-secret", &hash)
            .send_json(body);
        match result {
            Ok(r) => {
                let Ok(items) = r.into_json::<Vec<Value>>() else {
                    return;
                };
                assert_eq!(items.len(), 1);
                ledger.lock().unwrap().treatments.push(Acked {
                    id: items[0]["_id"].as_str().unwrap().to_string(),
                    identifier: items[0]["identifier"].as_str().unwrap().to_string(),
                    ms,
                });
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "treatments POST answered {code}: {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(_) => return,
        }
    }
}

/// Checks the database file itself, with the server dead: integrity and srv_modified order.
fn check_file(db: &Path, cycle: usize) {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("cycle {cycle}: cannot open the database read-only: {e}"));
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        check,
        vec!["ok".to_string()],
        "cycle {cycle}: integrity_check"
    );
    for table in ["entries", "treatments"] {
        // Nothing here is ever updated, so write order (seq) is srv_modified order.
        let mods: Vec<i64> = conn
            .prepare(&format!("SELECT srv_modified FROM {table} ORDER BY seq"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if let Some(w) = mods.windows(2).find(|w| w[0] >= w[1]) {
            panic!("cycle {cycle}: {table}.srv_modified not strictly increasing: {w:?}");
        }
        assert!(
            mods.iter().all(|m| *m > 0),
            "cycle {cycle}: {table}: srv_modified unset"
        );
    }
}

/// The server on `dir`/data (restarted on the same data each cycle).
fn start_server(dir: &Path) -> Process {
    Setup::new().data_dir(&dir.join("data")).spawn()
}

/// Every acknowledged write is readable after the restart, as it was acknowledged.
fn check_acked(
    server: &Http,
    ledger: &Ledger,
    entries_from: i64,
    treatments_from: i64,
    cycle: usize,
) {
    let entries = server.list(&format!(
        "/api/v1/entries.json?find[date][$gte]={entries_from}&count=0"
    ));
    let by_id: HashMap<&str, &Value> = entries
        .iter()
        .map(|e| (e["_id"].as_str().unwrap(), e))
        .collect();
    for a in &ledger.entries {
        let e = by_id
            .get(a.id.as_str())
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged entry {a:?} is missing"));
        assert_eq!(
            e["identifier"].as_str(),
            Some(a.identifier.as_str()),
            "cycle {cycle}"
        );
        assert_eq!(e["date"].as_i64(), Some(a.ms), "cycle {cycle}");
    }
    let dates: HashSet<i64> = entries.iter().filter_map(|e| e["date"].as_i64()).collect();
    assert_eq!(
        dates.len(),
        entries.len(),
        "cycle {cycle}: one entry per date"
    );
    for batch in &ledger.unanswered {
        let present = batch.iter().filter(|d| dates.contains(d)).count();
        assert!(
            present == 0 || present == batch.len(),
            "cycle {cycle}: an unanswered batch is partly stored ({present} of {})",
            batch.len()
        );
    }
    let from = nightlite::dates::to_iso(treatments_from);
    let treatments = server.list(&format!(
        "/api/v1/treatments.json?find[created_at][$gte]={from}&count=0"
    ));
    let by_id: HashMap<&str, &Value> = treatments
        .iter()
        .map(|t| (t["_id"].as_str().unwrap(), t))
        .collect();
    for a in &ledger.treatments {
        let t = by_id
            .get(a.id.as_str())
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged treatment {a:?} is missing"));
        assert_eq!(
            t["identifier"].as_str(),
            Some(a.identifier.as_str()),
            "cycle {cycle}"
        );
        assert_eq!(
            t["created_at"].as_str(),
            Some(nightlite::dates::to_iso(a.ms).as_str()),
            "cycle {cycle}"
        );
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_u64);
    eprintln!("crash test seed: {seed} (set CRASH_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("nightlite.sqlite3");
    let start = Instant::now();
    let entries_from = now_ms() - 30 * DAY;
    let treatments_from = now_ms() - 20 * DAY;
    let next_entry = Arc::new(AtomicI64::new(entries_from));
    let next_treatment = Arc::new(AtomicI64::new(treatments_from));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = start_server(dir.path());
    let mut killed_with_unanswered = 0;
    for cycle in 1..=CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = vec![];
        for w in 0..2 {
            let (base, next, stop, ledger) = (
                server.base.clone(),
                next_entry.clone(),
                stop.clone(),
                ledger.clone(),
            );
            writers.push(std::thread::spawn(move || {
                entry_writer(&base, &format!("crash-{w}"), &next, &stop, &ledger);
            }));
        }
        {
            let (base, next, stop, ledger) = (
                server.base.clone(),
                next_treatment.clone(),
                stop.clone(),
                ledger.clone(),
            );
            writers.push(std::thread::spawn(move || {
                treatment_writer(&base, &next, &stop, &ledger);
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.range(20, 400)));
        let before = ledger.lock().unwrap().unanswered.len();
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("a writer failed");
        }
        if ledger.lock().unwrap().unanswered.len() > before {
            killed_with_unanswered += 1;
        }
        check_file(&db, cycle);
        server = start_server(dir.path());
        check_acked(
            &server,
            &ledger.lock().unwrap(),
            entries_from,
            treatments_from,
            cycle,
        );
    }
    let l = ledger.lock().unwrap();
    eprintln!(
        "{CYCLES} kills in {:.1} s: {} entries and {} treatments acknowledged and found; \
         {} kills caught a batch in flight ({} unanswered batches, none partly stored)",
        start.elapsed().as_secs_f64(),
        l.entries.len(),
        l.treatments.len(),
        killed_with_unanswered,
        l.unanswered.len()
    );
    assert!(!l.entries.is_empty() && !l.treatments.is_empty());
    assert!(
        killed_with_unanswered > 0,
        "no kill landed while a batch was in flight; the test proved little"
    );
}
