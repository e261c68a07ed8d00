//! `soak`: a bounded load soak. The release server on a small seeded database (recent data, so
//! properties and the WebSocket snapshot do real work) takes N minutes of mixed, paced traffic:
//! v1 batches and single entries, a v3 POST now and then, reads of entries, properties and v3
//! history, while WebSocket clients read every delta. The server's RSS is sampled every second;
//! the soak passes when RSS at the end is within 10% of RSS after the warm-up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{self, LoadResult};
use super::report::mb;
use super::run::{batch_body, single_body, v3_single_body, Dates, BATCH};
use super::server::{self, Server};
use super::stats::{round, Phase};
use super::ws::{self, Fleet};
use super::Res;

pub struct SoakOptions {
    pub minutes: f64,
    /// RSS at the end of this is the reference (default: the first minute).
    pub warmup_minutes: f64,
    pub ws_clients: usize,
    /// Entries seeded (ending now) before the soak; treatments and devicestatus in proportion.
    pub seed_entries: u64,
    /// Allowed growth of RSS from the end of the warm-up to the end, percent.
    pub tolerance_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_secs: f64,
    pub rss_kb: u64,
    /// Server CPU (cores) over the last sampling interval.
    pub server_cpu: f64,
    pub ws_connected: u64,
}

#[derive(Debug, Serialize)]
pub struct SoakRun {
    pub minutes: f64,
    pub warmup_minutes: f64,
    pub tolerance_pct: f64,
    pub seed_entries: u64,
    pub rss_idle_kb: Option<u64>,
    pub rss_with_clients_kb: Option<u64>,
    /// The sample at the end of the warm-up.
    pub rss_after_warmup_kb: u64,
    /// The last sample under load.
    pub rss_end_kb: u64,
    pub rss_min_after_warmup_kb: u64,
    pub rss_max_kb: u64,
    pub rss_peak_kb: Option<u64>,
    /// (end − after warm-up) / after warm-up, percent.
    pub growth_pct: f64,
    pub passed: bool,
    /// What the traffic was, per kind (rates are per second of the whole soak).
    pub phases: Vec<Phase>,
    pub websocket: ws::Summary,
    pub documents_written: u64,
    pub db_bytes_end: u64,
    /// One sample per 10 s (the JSON holds them; the Markdown shows one per minute).
    pub samples: Vec<Sample>,
}

/// One kind of traffic: `threads` connections, each sending a request every `every` (or as
/// fast as answers come, if slower).
struct Kind<'a> {
    name: &'static str,
    threads: usize,
    every: Duration,
    build: Box<client::Builder<'a>>,
}

fn paced(
    addr: SocketAddr,
    thread: usize,
    every: Duration,
    end: Instant,
    build: &client::Builder<'_>,
    stop: &AtomicBool,
) -> Res<LoadResult> {
    let mut out = LoadResult::default();
    let mut conn = client::Conn::connect(addr)?;
    let mut req = Vec::with_capacity(64 * 1024);
    let mut seq = 0u64;
    // Threads of one kind start spread over the interval.
    std::thread::sleep(every.mul_f64((thread % 8) as f64 / 8.0));
    let mut next = Instant::now();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        req.clear();
        let docs = build(thread, seq, &mut req);
        seq += 1;
        let t0 = Instant::now();
        let result = conn.exchange(&req, false);
        let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
        match result {
            Ok(resp) if (200..300).contains(&resp.status) => {
                out.requests += 1;
                out.docs += docs;
                out.lat_us.push(us);
            }
            Ok(resp) => {
                out.bad_status += 1;
                if out.first_problem.is_none() {
                    out.first_problem = Some(format!(
                        "status {}: {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
                    ));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.first_problem.is_none() {
                    out.first_problem = Some(format!("transport: {e}"));
                }
                std::thread::sleep(Duration::from_millis(200));
                match client::Conn::connect(addr) {
                    Ok(c) => conn = c,
                    Err(e) => return Err(format!("reconnecting: {e}").into()),
                }
            }
        }
        next += every;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    Ok(out)
}

pub fn soak(bin: &Path, work: &Path, opts: &SoakOptions) -> Res<SoakRun> {
    let dir = work.join("soak");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    eprintln!(
        "soak: seeding {} entries (ending now) into {}",
        opts.seed_entries,
        dir.display()
    );
    super::seed::seed(&dir, opts.seed_entries)?;
    let srv = server::start_nightlite(bin, &dir, &work.join("server-soak.log"))?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle_kb = srv.rss_kb();
    let secret = server::secret_hash();
    let bearer = format!("Bearer {}", server::admin_jwt(&srv)?);
    eprintln!(
        "soak: starting {} WebSocket clients (RSS idle {})",
        opts.ws_clients,
        mb(rss_idle_kb)
    );
    let fleet = Fleet::start(srv.addr, opts.ws_clients, &secret, 24)?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_with_clients_kb = srv.rss_kb();
    let run = load(&srv, &fleet, opts, &secret, &bearer);
    let websocket = fleet.stop();
    let run = run?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_peak_kb = srv.hwm_kb();
    srv.stop()?;
    let db_bytes_end = std::fs::metadata(dir.join(super::seed::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.join("nightlite.sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let (phases, samples) = run;
    let warm_secs = opts.warmup_minutes * 60.0;
    let after_warm: Vec<&Sample> = samples.iter().filter(|s| s.t_secs >= warm_secs).collect();
    let warm = after_warm
        .first()
        .ok_or("the soak ended before its warm-up did")?;
    let end = samples.last().ok_or("no RSS samples")?;
    let growth = (end.rss_kb as f64 - warm.rss_kb as f64) / (warm.rss_kb as f64).max(1.0) * 100.0;
    let kept: Vec<Sample> = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0 || *i + 1 == samples.len())
        .map(|(_, s)| s.clone())
        .collect();
    let documents_written = phases
        .iter()
        .filter(|p| p.name.contains("POST"))
        .map(|p| p.docs)
        .sum();
    Ok(SoakRun {
        minutes: opts.minutes,
        warmup_minutes: opts.warmup_minutes,
        tolerance_pct: opts.tolerance_pct,
        seed_entries: opts.seed_entries,
        rss_idle_kb,
        rss_with_clients_kb,
        rss_after_warmup_kb: warm.rss_kb,
        rss_end_kb: end.rss_kb,
        rss_min_after_warmup_kb: after_warm.iter().map(|s| s.rss_kb).min().unwrap_or(0),
        rss_max_kb: samples.iter().map(|s| s.rss_kb).max().unwrap_or(0),
        rss_peak_kb,
        growth_pct: round(growth, 1),
        passed: growth.abs() <= opts.tolerance_pct,
        phases,
        websocket,
        documents_written,
        db_bytes_end,
        samples: kept,
    })
}

type Loaded = (Vec<Phase>, Vec<Sample>);

/// A builder sending the same framed request every time.
fn get_builder(req: Vec<u8>) -> Box<client::Builder<'static>> {
    Box::new(move |_t, _s, buf: &mut Vec<u8>| {
        buf.extend_from_slice(&req);
        1
    })
}

fn load(
    srv: &Server,
    fleet: &Fleet,
    opts: &SoakOptions,
    secret: &str,
    bearer: &str,
) -> Res<Loaded> {
    let host = srv.host();
    let dates = Dates::new();
    let ms = Duration::from_millis;
    let get = |path: &str| get_builder(client::get(&host, path, secret));
    let kinds: Vec<Kind<'_>> = vec![
        Kind {
            name: "v1 batch of 100, POST",
            threads: 2,
            every: ms(250),
            build: Box::new(|_t, _s, buf: &mut Vec<u8>| {
                let body = batch_body(&dates, BATCH);
                client::post_into(buf, &host, "/api/v1/entries", secret, body.as_bytes());
                BATCH as u64
            }),
        },
        Kind {
            name: "v1 single, POST",
            threads: 2,
            every: ms(100),
            build: Box::new(|_t, _s, buf: &mut Vec<u8>| {
                let body = single_body(&dates);
                client::post_into(buf, &host, "/api/v1/entries", secret, body.as_bytes());
                1
            }),
        },
        Kind {
            name: "v3 single, POST",
            threads: 1,
            every: ms(1000),
            build: Box::new(|_t, _s, buf: &mut Vec<u8>| {
                let body = v3_single_body(&dates);
                client::request_into(
                    buf,
                    "POST",
                    &host,
                    "/api/v3/entries",
                    &[("Authorization", bearer)],
                    Some(body.as_bytes()),
                );
                1
            }),
        },
        Kind {
            name: "entries.json?count=288",
            threads: 1,
            every: ms(100),
            build: get("/api/v1/entries.json?count=288"),
        },
        Kind {
            name: "entries/sgv.json?count=1",
            threads: 1,
            every: ms(50),
            build: get("/api/v1/entries/sgv.json?count=1"),
        },
        Kind {
            name: "/api/v2/properties",
            threads: 1,
            every: ms(100),
            build: get("/api/v2/properties"),
        },
        Kind {
            // A syncing client: the changes of the last minute, a page of at most 1000.
            name: "v3 history of the last minute, limit 1000",
            threads: 1,
            every: ms(500),
            build: Box::new(|_t, _s, buf: &mut Vec<u8>| {
                let since = nightlite::dates::now_ms() - 60_000;
                client::request_into(
                    buf,
                    "GET",
                    &host,
                    &format!("/api/v3/entries/history/{since}?limit=1000"),
                    &[("Authorization", bearer)],
                    None,
                );
                1
            }),
        },
    ];
    let total = Duration::from_secs_f64(opts.minutes * 60.0);
    let start = Instant::now();
    let end = start + total;
    let stop = AtomicBool::new(false);
    let addr = srv.addr;
    eprintln!(
        "soak: {} minutes of mixed load; RSS every second (warm-up {} min)",
        opts.minutes, opts.warmup_minutes
    );
    std::thread::scope(|s| -> Res<Loaded> {
        let mut handles = vec![];
        for k in &kinds {
            for t in 0..k.threads {
                let (build, stop) = (&*k.build, &stop);
                let every = k.every;
                handles.push((
                    k.name,
                    s.spawn(move || paced(addr, t, every, end, build, stop)),
                ));
            }
        }
        let mut samples = vec![];
        let mut cpu_prev = (Instant::now(), srv.cpu_ticks());
        let mut next = start + Duration::from_secs(1);
        let mut problem = None;
        while Instant::now() < end {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += Duration::from_secs(1);
            let Some(rss_kb) = srv.rss_kb() else {
                problem = Some("the server is gone (no /proc entry)".to_string());
                break;
            };
            let ticks = srv.cpu_ticks();
            let dt = cpu_prev.0.elapsed().as_secs_f64().max(1e-9);
            let cpu = match (cpu_prev.1, ticks) {
                (Some(a), Some(b)) => b.saturating_sub(a) as f64 / server::TICKS_PER_SEC / dt,
                _ => 0.0,
            };
            cpu_prev = (Instant::now(), ticks);
            let t_secs = start.elapsed().as_secs_f64();
            let sample = Sample {
                t_secs: round(t_secs, 1),
                rss_kb,
                server_cpu: round(cpu, 2),
                ws_connected: fleet.connected(),
            };
            if samples.len() % 60 == 59 {
                let w = fleet.summary();
                eprintln!(
                    "  {:>4.0} s: RSS {}, server CPU {:.2}, {} WebSocket clients connected, \
                     {} deltas, {} resyncs, {} drops",
                    t_secs,
                    mb(Some(rss_kb)),
                    cpu,
                    sample.ws_connected,
                    w.deltas,
                    w.resyncs,
                    w.drops
                );
            }
            samples.push(sample);
        }
        stop.store(true, Ordering::Relaxed);
        let mut by_kind: Vec<(&str, LoadResult, usize)> = vec![];
        for (name, h) in handles {
            let r = h
                .join()
                .map_err(|_| format!("a {name} thread panicked"))??;
            match by_kind.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, acc, threads)) => {
                    acc.requests += r.requests;
                    acc.docs += r.docs;
                    acc.errors += r.errors;
                    acc.bad_status += r.bad_status;
                    if acc.first_problem.is_none() {
                        acc.first_problem = r.first_problem;
                    }
                    acc.lat_us.extend(r.lat_us);
                    *threads += 1;
                }
                None => by_kind.push((name, r, 1)),
            }
        }
        if let Some(p) = problem {
            return Err(p.into());
        }
        let secs = start.elapsed().as_secs_f64();
        let phases = by_kind
            .into_iter()
            .map(|(name, mut r, threads)| {
                r.secs = secs;
                Phase::from_load(name, threads, r)
            })
            .collect();
        Ok((phases, samples))
    })
}
