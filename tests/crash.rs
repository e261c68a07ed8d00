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

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

const SECRET: &str = "crash-test-secret-0123";
const CYCLES: usize = 24;
const BATCH: usize = 20;
const DAY: i64 = 86_400_000;

/// xorshift64*: a few lines, seeded, good enough to pick moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn now_ms() -> i64 {
    nightlite::dates::now_ms()
}

fn secret_hash() -> String {
    use sha1::{Digest, Sha1};
    nightlite::ids::hex(&Sha1::digest(SECRET.as_bytes()))
}

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, n: usize) -> Server {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("server-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_nightlite"))
            .arg("serve")
            .env("API_SECRET", SECRET)
            .env("PORT", port.to_string())
            .env("HOSTNAME", "127.0.0.1")
            .env("NIGHTLITE_DATA_DIR", dir.join("data"))
            .env("AUTH_DEFAULT_ROLES", "denied")
            .env_remove("NIGHTLITE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        s.wait_healthy();
        s
    }

    fn wait_healthy(&mut self) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "server exited during start-up ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = agent.get(&format!("{}/api/versions", self.base)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server not healthy in 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let hash = secret_hash();
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
    let hash = secret_hash();
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

fn list(base: &str, path: &str) -> Vec<Value> {
    let r = agent()
        .get(&format!("{base}{path}"))
        .set("api-secret", &secret_hash())
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    r.into_json().unwrap()
}

/// Every acknowledged write is readable after the restart, as it was acknowledged.
fn check_acked(base: &str, ledger: &Ledger, entries_from: i64, treatments_from: i64, cycle: usize) {
    let entries = list(
        base,
        &format!("/api/v1/entries.json?find[date][$gte]={entries_from}&count=0"),
    );
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
    let treatments = list(
        base,
        &format!("/api/v1/treatments.json?find[created_at][$gte]={from}&count=0"),
    );
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
    let mut server = Server::start(dir.path(), 0);
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
        server = Server::start(dir.path(), cycle);
        check_acked(
            &server.base,
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
