//! The measured runs: ingest (with its ceilings) and reads on a seeded database.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ceiling::{RawOpts, ReadPath};
use super::client::{self, LoadResult, LoadSpec};
use super::report::{Ingest, Memory, ReadRun, WsRun};
use super::seed::{self, SeedInfo};
use super::server::{self, Server};
use super::stats::{round, Phase};
use super::{docs, Res};

pub const BATCH: usize = 100;
/// Entries (ending now) under the WebSocket clients of the ingest phase.
pub const WS_SEED: u64 = 10_000;
const WARMUP_SECS: f64 = 1.0;

/// Entry dates for ingest: unique across every phase of a run (one second apart, from five
/// years ago), so every POST inserts and none is deduplicated into an update.
pub struct Dates {
    pub next: AtomicU64,
    pub base_ms: i64,
}

impl Dates {
    pub fn new() -> Dates {
        Dates {
            next: AtomicU64::new(0),
            base_ms: nightlite::dates::now_ms() - 5 * 365 * 86_400_000,
        }
    }

    fn take(&self) -> (i64, u64) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (self.base_ms + (n as i64) * 1000, n)
    }
}

/// Runs a load while sampling the server's RSS and CPU; returns the phase and the largest RSS.
pub fn measured(
    name: &str,
    server: &Server,
    spec: LoadSpec,
    build: &client::Builder<'_>,
) -> Res<(Phase, Option<u64>)> {
    let addr = server.addr;
    let stop = AtomicBool::new(false);
    let self_pid = std::process::id();
    let (result, max_rss, cpu) = std::thread::scope(|s| -> Res<(LoadResult, Option<u64>, _)> {
        let sampler = s.spawn(|| {
            let mut max = None;
            // CPU is counted over the measured window only (after the warm-up).
            std::thread::sleep(Duration::from_secs_f64(spec.warmup_secs));
            let t0 = Instant::now();
            let server_t0 = server.cpu_ticks();
            let self_t0 = server::cpu_ticks(self_pid);
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = server.rss_kb() {
                    max = Some(max.map_or(kb, |m: u64| m.max(kb)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let secs = t0.elapsed().as_secs_f64();
            let per_sec = |a: Option<u64>, b: Option<u64>| {
                a.zip(b).map(|(a, b)| {
                    round(
                        b.saturating_sub(a) as f64 / server::TICKS_PER_SEC / secs.max(1e-9),
                        2,
                    )
                })
            };
            let server_cpu = per_sec(server_t0, server.cpu_ticks());
            let client_cpu = per_sec(self_t0, server::cpu_ticks(self_pid));
            (max, (server_cpu, client_cpu))
        });
        let result = client::run(addr, spec, build);
        stop.store(true, Ordering::Relaxed);
        let (max, cpu) = sampler.join().map_err(|_| "the sampler panicked")?;
        Ok((result?, max, cpu))
    })?;
    let mut phase = Phase::from_load(name, spec.conns, result);
    phase.server_cpu = cpu.0;
    phase.client_cpu = cpu.1;
    eprintln!(
        "  {name}: {:.0} docs/s, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}{}",
        phase.docs_per_sec,
        phase.requests_per_sec,
        phase.p50_ms,
        phase.p99_ms,
        phase.errors + phase.bad_status,
        phase
            .first_problem
            .as_deref()
            .map(|p| format!(" (first: {p})"))
            .unwrap_or_default()
    );
    Ok((phase, max_rss))
}

pub fn batch_body(dates: &Dates, n: usize) -> String {
    let mut body = String::with_capacity(n * 300);
    body.push('[');
    for k in 0..n {
        if k > 0 {
            body.push(',');
        }
        let (ms, i) = dates.take();
        docs::entry_json(&mut body, ms, i);
    }
    body.push(']');
    body
}

pub fn single_body(dates: &Dates) -> String {
    let mut body = String::with_capacity(300);
    let (ms, i) = dates.take();
    docs::entry_json(&mut body, ms, i);
    body
}

/// One entry for API v3, which requires `app` (the uploading application) on create.
pub fn v3_single_body(dates: &Dates) -> String {
    let mut body = String::with_capacity(320);
    body.push_str(r#"{"app":"nightlite-bench","#);
    let (ms, i) = dates.take();
    docs::entry_json(&mut body, ms, i);
    // entry_json writes a whole object: drop its opening brace after ours.
    body.replace_range(25..26, "");
    body
}

pub struct IngestOptions {
    pub secs: f64,
    pub hello_secs: f64,
    pub ceilings: bool,
    /// Duration of the API v3 POST phase and of the phase with WebSocket clients.
    pub phase_secs: f64,
    /// WebSocket clients connected during the second batch phase.
    pub ws_clients: usize,
    /// Also the raw variants that show what the old triggers, indexes, fsync and transaction
    /// size cost.
    pub diagnose: bool,
}

/// Ingest into an empty database, then the storage and HTTP ceilings with the same documents.
pub fn ingest(
    bin: &Path,
    work: &Path,
    opts: &IngestOptions,
    ceilings: &mut Vec<Phase>,
) -> Res<Ingest> {
    let dir = work.join("ingest");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let dates = Dates::new();
    let secret = server::secret_hash();
    eprintln!("ingest: starting nightlite on an empty database");
    let srv = server::start_nightlite(bin, &dir, &work.join("server-ingest.log"))?;
    let host = srv.host();
    std::thread::sleep(Duration::from_secs(1));
    let mut out = Ingest {
        start_ms_empty_db: round(srv.start_ms, 1),
        memory: Memory {
            rss_idle_kb: srv.rss_kb(),
            ..Memory::default()
        },
        phases: vec![],
        websocket: None,
    };
    let batch_build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
        let body = batch_body(&dates, BATCH);
        client::post_into(buf, &host, "/api/v1/entries", &secret, body.as_bytes());
        BATCH as u64
    };
    let single_build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
        let body = single_body(&dates);
        client::post_into(buf, &host, "/api/v1/entries", &secret, body.as_bytes());
        1
    };
    let spec = |conns| LoadSpec {
        conns,
        secs: opts.secs,
        warmup_secs: WARMUP_SECS,
    };
    let (p, rss1) = measured("batch of 100, POST", &srv, spec(4), &batch_build)?;
    out.phases.push(p);
    let (p, rss2) = measured("single, POST", &srv, spec(8), &single_build)?;
    out.phases.push(p);
    // API v3: one document per POST, Authorization: Bearer <JWT> of an admin subject.
    let bearer = format!("Bearer {}", server::admin_jwt(&srv)?);
    let v3_build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
        let body = v3_single_body(&dates);
        client::request_into(
            buf,
            "POST",
            &host,
            "/api/v3/entries",
            &[("Authorization", &bearer)],
            Some(body.as_bytes()),
        );
        1
    };
    let short = |conns| LoadSpec {
        conns,
        secs: opts.phase_secs,
        warmup_secs: WARMUP_SECS,
    };
    let (p, rss3) = measured("v3 single, POST /api/v3/entries", &srv, short(8), &v3_build)?;
    out.phases.push(p);
    out.memory.rss_under_load_max_kb = rss1.max(rss2).max(rss3);
    std::thread::sleep(Duration::from_secs(2));
    out.memory.rss_after_load_kb = srv.rss_kb();
    out.memory.rss_peak_kb = srv.hwm_kb();
    srv.stop()?;

    if opts.ws_clients > 0 {
        // A fresh server, so its RSS is that of the clients and this ingest, not what the
        // phases above left in the allocator; on a database holding the last week (10k
        // one-minute entries ending now, seed.rs), so every client's first dataUpdate carries
        // a day of data as a follower's does. (On the ingest database, whose entries are years
        // old, the snapshots would be empty.)
        let n = opts.ws_clients;
        let ws_dir = work.join("ingest-ws");
        eprintln!(
            "ingest with {n} WebSocket clients: seeding {WS_SEED} entries ending now into {}",
            ws_dir.display()
        );
        seed::seed(&ws_dir, WS_SEED)?;
        let srv = server::start_nightlite(bin, &ws_dir, &work.join("server-ingest-ws.log"))?;
        std::thread::sleep(Duration::from_secs(1));
        let rss_idle_kb = srv.rss_kb();
        let fleet = super::ws::Fleet::start(srv.addr, n, &secret, 24)?;
        std::thread::sleep(Duration::from_secs(1));
        let rss_with_clients_kb = srv.rss_kb();
        let host = srv.host();
        let batch_build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
            let body = batch_body(&dates, BATCH);
            client::post_into(buf, &host, "/api/v1/entries", &secret, body.as_bytes());
            BATCH as u64
        };
        let name = format!("batch of 100, POST, {n} WebSocket clients");
        let (p, rss) = measured(&name, &srv, short(4), &batch_build)?;
        let connected_at_end = fleet.connected();
        let rss_after_kb = srv.rss_kb();
        let rss_peak_kb = srv.hwm_kb();
        let ws = fleet.stop();
        srv.stop()?;
        eprintln!(
            "  RSS idle {}, {n} clients {}, under ingest max {}, peak {}; {} deltas ({:.1} MB), \
             {} resyncs, {} drops",
            super::report::mb(rss_idle_kb),
            super::report::mb(rss_with_clients_kb),
            super::report::mb(rss),
            super::report::mb(rss_peak_kb),
            ws.deltas,
            ws.bytes as f64 / 1_048_576.0,
            ws.resyncs,
            ws.drops
        );
        let _ = std::fs::remove_dir_all(&ws_dir);
        out.phases.push(p.clone());
        out.websocket = Some(WsRun {
            clients: n,
            rss_idle_kb,
            rss_with_clients_kb,
            rss_under_load_max_kb: rss,
            rss_after_load_kb: rss_after_kb,
            rss_peak_kb,
            connected_at_end,
            phase: p,
            ws,
        });
    }

    if opts.ceilings {
        eprintln!("ceilings: raw rusqlite");
        let raw_dir = work.join("ceiling-raw");
        let short = opts.hello_secs.min(opts.secs);
        let mut variants = vec![
            (opts.secs, RawOpts::server(BATCH)),
            (short, RawOpts::server(1)),
        ];
        if opts.diagnose {
            // Same length and fresh database as the variants below, to compare like for like.
            variants.push((short, RawOpts::server(BATCH)));
            variants.push((
                short,
                RawOpts {
                    tmpfs: true,
                    ..RawOpts::server(BATCH)
                },
            ));
            variants.push((short, RawOpts::server(400)));
            variants.push((
                short,
                RawOpts {
                    synchronous: "NORMAL",
                    ..RawOpts::server(BATCH)
                },
            ));
            variants.push((
                short,
                RawOpts {
                    v1_triggers: true,
                    ..RawOpts::server(BATCH)
                },
            ));
            // The same pair without the disk, whose fsync time swamps the difference on a
            // shared machine.
            variants.push((
                short,
                RawOpts {
                    v1_triggers: true,
                    tmpfs: true,
                    ..RawOpts::server(BATCH)
                },
            ));
            variants.push((
                short,
                RawOpts {
                    secondary_indexes: false,
                    ..RawOpts::server(BATCH)
                },
            ));
            variants.push((
                short,
                RawOpts {
                    identifier_index: false,
                    ..RawOpts::server(BATCH)
                },
            ));
        }
        for (secs, v) in variants {
            let p = super::ceiling::raw(&raw_dir, secs, v, &dates.next, dates.base_ms)?;
            eprintln!("  {}: {:.0} docs/s", p.name, p.docs_per_sec);
            ceilings.push(p);
        }
        eprintln!("ceilings: nightlite store without HTTP");
        let mut library = vec![(opts.secs, false)];
        if opts.diagnose {
            library.push((short, true));
        }
        for (secs, temp_file) in library {
            let p = super::ceiling::library(
                &raw_dir,
                secs,
                BATCH,
                temp_file,
                &dates.next,
                dates.base_ms,
            )?;
            eprintln!("  {}: {:.0} docs/s", p.name, p.docs_per_sec);
            ceilings.push(p);
        }
        std::fs::remove_dir_all(&raw_dir)?;

        eprintln!("ceilings: hello-world over HTTP");
        let hello = server::start_hello()?;
        let hhost = hello.host();
        let hspec = |conns| LoadSpec {
            conns,
            secs: opts.hello_secs,
            warmup_secs: WARMUP_SECS,
        };
        let echo_batch = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
            let body = batch_body(&dates, BATCH);
            client::post_into(buf, &hhost, "/", &secret, body.as_bytes());
            BATCH as u64
        };
        let echo_single = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
            let body = single_body(&dates);
            client::post_into(buf, &hhost, "/", &secret, body.as_bytes());
            1
        };
        let (p, _) = measured("hello POST echo, batch body", &hello, hspec(4), &echo_batch)?;
        ceilings.push(p);
        let (p, _) = measured(
            "hello POST echo, single body",
            &hello,
            hspec(8),
            &echo_single,
        )?;
        ceilings.push(p);
        hello.stop()?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// The hello-world GET ceiling for reads.
pub fn hello_get(secs: f64) -> Res<Phase> {
    eprintln!("ceilings: hello-world GET");
    let hello = server::start_hello()?;
    let req = client::get(&hello.host(), "/", &server::secret_hash());
    let build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
        buf.extend_from_slice(&req);
        1
    };
    let spec = LoadSpec {
        conns: 16,
        secs,
        warmup_secs: WARMUP_SECS,
    };
    let (p, _) = measured("hello GET", &hello, spec, &build)?;
    hello.stop()?;
    Ok(p)
}

/// How a read endpoint authenticates.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    /// `api-secret` header (API v1, v2).
    Secret,
    /// `Authorization: Bearer <JWT>` (API v3).
    Bearer,
}

/// One read endpoint: its paths (requests cycle through them) and documents per reply.
struct Endpoint {
    name: &'static str,
    paths: Vec<String>,
    auth: Auth,
    docs: u64,
}

/// Name of the v3 history phase (it has no hello-world target: a 1000-document page).
pub const HISTORY: &str = "v3 history, pages of 1000";

/// The read endpoints, relative to the seeded data's newest time.
fn endpoints(info: &SeedInfo) -> Vec<Endpoint> {
    let newest_ms = info.newest_ms;
    let from = nightlite::dates::to_iso(newest_ms - 86_400_000);
    let to = nightlite::dates::to_iso(newest_ms);
    let one = |name, path: String| Endpoint {
        name,
        paths: vec![path],
        auth: Auth::Secret,
        docs: 1,
    };
    // v3 history from marks spread over the seeded entries, each the srvModified of an entry
    // at least 1000 before the newest, so every page is full: seeded entry k (oldest first)
    // has srvModified = its date + 3 s, dates one minute apart (seed.rs).
    let n = info.entries;
    let page = n.saturating_sub(1).min(1000);
    let oldest_mod = newest_ms - (n.saturating_sub(1) as i64) * 60_000 + 3_000;
    let span = n.saturating_sub(page).max(1);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let history: Vec<String> = (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % span) as i64;
            format!(
                "/api/v3/entries/history/{}?limit=1000",
                oldest_mod + k * 60_000
            )
        })
        .collect();
    vec![
        one(
            "entries.json?count=288",
            "/api/v1/entries.json?count=288".into(),
        ),
        one(
            "entries/sgv.json?count=1",
            "/api/v1/entries/sgv.json?count=1".into(),
        ),
        one(
            "treatments, created_at range of 1 day",
            format!(
                "/api/v1/treatments.json?find[created_at][$gte]={from}&find[created_at][$lte]={to}"
            ),
        ),
        one("/api/v2/properties", "/api/v2/properties".into()),
        // The viewer's 90-day report: its four stats requests in turn (docs/api-stats.md).
        Endpoint {
            name: "90-day report (/api/v2/stats, /days, /hours, /weeks)",
            paths: ["", "/days", "/hours", "/weeks"]
                .iter()
                .map(|by| format!("/api/v2/stats{by}?days=90&end={}&tz=60", newest_ms + 1))
                .collect(),
            auth: Auth::Secret,
            docs: 1,
        },
        Endpoint {
            name: HISTORY,
            paths: history,
            auth: Auth::Bearer,
            docs: page.max(1),
        },
    ]
}

/// Documents in a reply: an array's length, a v3 envelope's `result` length, or an object's
/// keys (properties).
fn items_in(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Object(o) => match o.get("result") {
            Some(serde_json::Value::Array(a)) => a.len(),
            _ => o.len(),
        },
        _ => 0,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Seeds (or reuses) a database of `entries` and measures reads, start time and memory on it.
pub fn read_size(
    bin: &Path,
    work: &Path,
    entries: u64,
    secs: f64,
    reseed: bool,
    byte_ceiling: bool,
) -> Res<ReadRun> {
    let dir = work.join(format!("seed-{entries}"));
    let (info, reused) = match (reseed, seed::existing(&dir, entries)) {
        (false, Some(info)) => (info, true),
        _ => {
            eprintln!("seed: {entries} entries into {}", dir.display());
            (seed::seed(&dir, entries)?, false)
        }
    };
    read_dir(bin, work, &dir, info, reused, secs, byte_ceiling)
}

/// In-process read paths on the seeded database (no HTTP): what the server does per reply
/// against splicing the stored JSON text.
pub fn read_diagnose(dir: &Path, info: &SeedInfo, secs: f64) -> Res<Vec<Phase>> {
    use nightlite::store::Collection;
    let db = dir.join(seed::DB_FILE);
    let from = nightlite::dates::to_iso(info.newest_ms - 86_400_000);
    let to = nightlite::dates::to_iso(info.newest_ms);
    let cases = [
        (
            "entries count=288",
            Collection::Entries,
            "count=288".to_string(),
        ),
        (
            "treatments 1 day",
            Collection::Treatments,
            format!("find[created_at][$gte]={from}&find[created_at][$lte]={to}&count=1000"),
        ),
    ];
    let mut out = vec![];
    for (label, coll, q) in cases {
        for path in [ReadPath::Parse, ReadPath::Server, ReadPath::Splice] {
            let p = super::ceiling::read_path(&db, label, coll, &q, path, secs)?;
            eprintln!(
                "  {}: {:.0} replies/s, p50 {:.3} ms",
                p.name, p.requests_per_sec, p.p50_ms
            );
            out.push(p);
        }
    }
    Ok(out)
}

pub fn read_dir(
    bin: &Path,
    work: &Path,
    dir: &Path,
    info: SeedInfo,
    reused: bool,
    secs: f64,
    byte_ceiling: bool,
) -> Res<ReadRun> {
    let log = work.join("server-read.log");
    // Start time: three starts, each to the first healthy answer; the median is reported.
    let mut starts = vec![];
    for _ in 0..3 {
        let s = server::start_nightlite(bin, dir, &log)?;
        starts.push(round(s.start_ms, 1));
        s.stop()?;
    }
    eprintln!(
        "read on {} entries: start to healthy {starts:?} ms",
        info.entries
    );
    let srv = server::start_nightlite(bin, dir, &log)?;
    std::thread::sleep(Duration::from_secs(1));
    let mut memory = Memory {
        rss_idle_kb: srv.rss_kb(),
        ..Memory::default()
    };
    let host = srv.host();
    let secret = server::secret_hash();
    let bearer = format!("Bearer {}", server::admin_jwt(&srv)?);
    let mut items = vec![];
    let mut bytes = vec![];
    let mut phases = vec![];
    for ep in endpoints(&info) {
        let reqs: Vec<Vec<u8>> = ep
            .paths
            .iter()
            .map(|path| match ep.auth {
                Auth::Secret => client::get(&host, path, &secret),
                Auth::Bearer => {
                    let mut r = vec![];
                    client::request_into(
                        &mut r,
                        "GET",
                        &host,
                        path,
                        &[("Authorization", &bearer)],
                        None,
                    );
                    r
                }
            })
            .collect();
        let mut c = client::Conn::connect(srv.addr)?;
        let r = c.exchange(&reqs[0], true)?;
        if r.status != 200 {
            return Err(format!(
                "GET {}: status {}: {}",
                ep.paths[0],
                r.status,
                String::from_utf8_lossy(&r.body)
            )
            .into());
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        items.push((ep.name.to_string(), items_in(&v)));
        bytes.push((ep.name.to_string(), r.body.len()));
        let docs = ep.docs;
        let build = |t: usize, seq: u64, buf: &mut Vec<u8>| -> u64 {
            let i = (t as u64).wrapping_mul(7919).wrapping_add(seq) as usize % reqs.len();
            buf.extend_from_slice(&reqs[i]);
            docs
        };
        let spec = LoadSpec {
            conns: 16,
            secs,
            warmup_secs: WARMUP_SECS,
        };
        let (p, rss) = measured(ep.name, &srv, spec, &build)?;
        memory.rss_under_load_max_kb = memory.rss_under_load_max_kb.max(rss);
        phases.push(p);
    }
    memory.rss_after_load_kb = srv.rss_kb();
    memory.rss_peak_kb = srv.hwm_kb();
    srv.stop()?;
    let mut same_bytes_ceiling = vec![];
    if byte_ceiling {
        let hello = server::start_hello()?;
        for (i, (name, n)) in bytes.iter().enumerate() {
            let req = client::get(&hello.host(), &format!("/bytes/{n}"), &secret);
            let build = |_t: usize, _s: u64, buf: &mut Vec<u8>| -> u64 {
                buf.extend_from_slice(&req);
                1
            };
            let spec = LoadSpec {
                conns: 16,
                secs,
                warmup_secs: WARMUP_SECS,
            };
            let label = format!("hello GET, {n} bytes (as {name}) [{i}]");
            let (p, _) = measured(&label, &hello, spec, &build)?;
            same_bytes_ceiling.push(p);
        }
        hello.stop()?;
    }
    Ok(ReadRun {
        entries: info.entries,
        seed: info,
        seed_reused: reused,
        start_ms_median: median(&starts),
        start_ms: starts,
        memory,
        items_per_response: items,
        bytes_per_response: bytes,
        phases,
        same_bytes_ceiling,
    })
}
