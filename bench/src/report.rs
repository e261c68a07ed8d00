//! The results of one run, written as JSON (everything) and Markdown (the tables that go into
//! docs/PERFORMANCE.md), with the machine and the command that produced them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::seed::SeedInfo;
use super::stats::{round, Phase};
use super::Res;

#[derive(Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub mem_total_mb: u64,
    pub kernel: String,
    /// /proc/loadavg when the run began: other work on a shared machine shows here.
    pub loadavg_at_start: String,
    pub rustc: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let mem_total_mb = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            mem_total_mb,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_string(),
            rustc,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    pub rss_idle_kb: Option<u64>,
    pub rss_under_load_max_kb: Option<u64>,
    pub rss_after_load_kb: Option<u64>,
    pub rss_peak_kb: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Ingest {
    pub start_ms_empty_db: f64,
    pub memory: Memory,
    pub phases: Vec<Phase>,
    /// The batch phase again, on a freshly started server, with WebSocket clients reading.
    pub websocket: Option<WsRun>,
}

/// Batch ingest with WebSocket clients connected (each reading every delta).
#[derive(Debug, Serialize)]
pub struct WsRun {
    pub clients: usize,
    pub rss_idle_kb: Option<u64>,
    pub rss_with_clients_kb: Option<u64>,
    pub rss_under_load_max_kb: Option<u64>,
    pub rss_after_load_kb: Option<u64>,
    pub rss_peak_kb: Option<u64>,
    /// Clients still connected when the phase ended.
    pub connected_at_end: u64,
    pub phase: Phase,
    pub ws: super::ws::Summary,
}

#[derive(Debug, Serialize)]
pub struct ReadRun {
    pub entries: u64,
    pub seed: SeedInfo,
    pub seed_reused: bool,
    pub start_ms: Vec<f64>,
    pub start_ms_median: f64,
    pub memory: Memory,
    /// Documents in one response of each endpoint (checked before timing).
    pub items_per_response: Vec<(String, usize)>,
    /// Bytes in one response of each endpoint.
    pub bytes_per_response: Vec<(String, usize)>,
    pub phases: Vec<Phase>,
    /// hello-world answering the same number of bytes as each endpoint, same client.
    pub same_bytes_ceiling: Vec<Phase>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub started_utc: String,
    pub command: String,
    pub git: String,
    pub machine: Machine,
    pub binary: String,
    pub binary_bytes: Option<u64>,
    pub ingest: Option<Ingest>,
    pub ceilings: Vec<Phase>,
    pub reads: Vec<ReadRun>,
    /// In-process measurements that locate a limit (with --diagnose).
    pub diagnostics: Vec<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<super::soak::SoakRun>,
    pub targets: Vec<Target>,
}

/// The read phases with a hello-world target (≥ 30%).
const HELLO_TARGETS: [&str; 3] = [
    "entries.json?count=288",
    "entries/sgv.json?count=1",
    "treatments, created_at range of 1 day",
];

pub fn mb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1} MB", k as f64 / 1024.0))
}

fn phase_table(out: &mut String, phases: &[Phase]) {
    out.push_str(
        "| phase | clients | docs/s | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU | bench CPU | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in phases {
        let cpu = |c: Option<f64>| c.map_or("-".into(), |c| format!("{c:.2}"));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            p.name,
            p.clients,
            p.docs_per_sec,
            p.requests_per_sec,
            p.p50_ms,
            p.p90_ms,
            p.p99_ms,
            p.max_ms,
            cpu(p.server_cpu),
            cpu(p.client_cpu),
            p.errors + p.bad_status
        );
    }
}

fn soak_markdown(out: &mut String, s: &super::soak::SoakRun) {
    let _ = writeln!(
        out,
        "\n## Soak: {} minutes of mixed load, {} WebSocket clients\n",
        s.minutes, s.websocket.clients
    );
    let _ = writeln!(
        out,
        "**{}**: RSS {} after the {}-minute warm-up, {} at the end ({:+.1}%, allowed ±{}%). \
         Idle {}, with the clients {}, lowest after warm-up {}, highest {}, peak (VmHWM) {}.\n",
        if s.passed { "passed" } else { "FAILED" },
        mb(Some(s.rss_after_warmup_kb)),
        s.warmup_minutes,
        mb(Some(s.rss_end_kb)),
        s.growth_pct,
        s.tolerance_pct,
        mb(s.rss_idle_kb),
        mb(s.rss_with_clients_kb),
        mb(Some(s.rss_min_after_warmup_kb)),
        mb(Some(s.rss_max_kb)),
        mb(s.rss_peak_kb)
    );
    phase_table(out, &s.phases);
    let w = &s.websocket;
    let _ = writeln!(
        out,
        "\nSeeded {} entries ending now first; {} documents written during the soak, database \
         {:.0} MB at the end. WebSocket clients received {} deltas ({:.1} MB) in {} messages; \
         {} resyncs, {} drops, {} reconnects{}.\n",
        s.seed_entries,
        s.documents_written,
        s.db_bytes_end as f64 / 1_048_576.0,
        w.deltas,
        w.bytes as f64 / 1_048_576.0,
        w.messages,
        w.resyncs,
        w.drops,
        w.reconnects,
        w.first_problem
            .as_deref()
            .map(|p| format!(" (first problem: {p})"))
            .unwrap_or_default()
    );
    out.push_str(
        "| minute | RSS | server CPU | WebSocket clients connected |\n|---:|---:|---:|---:|\n",
    );
    let mut minute = 0.0;
    for x in &s.samples {
        if x.t_secs + 5.0 >= minute * 60.0 {
            let _ = writeln!(
                out,
                "| {:.0} | {} | {:.2} | {} |",
                x.t_secs / 60.0,
                mb(Some(x.rss_kb)),
                x.server_cpu,
                x.ws_connected
            );
            minute += 1.0;
        }
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# nightlite-bench {}\n", self.started_utc);
        let _ = writeln!(out, "- command: `{}`", self.command);
        let _ = writeln!(out, "- git: {}", self.git);
        let _ = writeln!(
            out,
            "- machine: {} CPUs, {}, {} MB RAM, Linux {}, load average at start {}",
            m.cpus, m.model, m.mem_total_mb, m.kernel, m.loadavg_at_start
        );
        let _ = writeln!(out, "- {}", m.rustc);
        if let Some(b) = self.binary_bytes {
            let _ = writeln!(
                out,
                "- binary: {} ({:.2} MB)",
                self.binary,
                b as f64 / 1_048_576.0
            );
        }
        if !self.targets.is_empty() {
            out.push_str("\n## Targets\n\n| what | target | measured | met |\n|---|---|---|---|\n");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    t.what,
                    t.target,
                    t.measured,
                    if t.met { "yes" } else { "**no**" }
                );
            }
        }
        if let Some(i) = &self.ingest {
            out.push_str("\n## Ingest (empty database, v1 POST /api/v1/entries)\n\n");
            phase_table(&mut out, &i.phases);
            let _ = writeln!(
                out,
                "\nStart on the empty database: {:.1} ms. RSS idle {}, under ingest (max) {}, \
                 after {}, peak {}.",
                i.start_ms_empty_db,
                mb(i.memory.rss_idle_kb),
                mb(i.memory.rss_under_load_max_kb),
                mb(i.memory.rss_after_load_kb),
                mb(i.memory.rss_peak_kb)
            );
            if let Some(w) = &i.websocket {
                let _ = writeln!(
                    out,
                    "\nWith {} WebSocket clients (last table row; fresh server on a database of 10k \
                     entries ending now, each client's first dataUpdate holds 24 hours): \
                     RSS idle {}, with the clients connected {}, under batch ingest (max) {}, \
                     after {}, peak {}. The clients received {} deltas ({:.1} MB); {} resyncs, \
                     {} drops, {} of {} connected at the end.",
                    w.clients,
                    mb(w.rss_idle_kb),
                    mb(w.rss_with_clients_kb),
                    mb(w.rss_under_load_max_kb),
                    mb(w.rss_after_load_kb),
                    mb(w.rss_peak_kb),
                    w.ws.deltas,
                    w.ws.bytes as f64 / 1_048_576.0,
                    w.ws.resyncs,
                    w.ws.drops,
                    w.connected_at_end,
                    w.clients
                );
            }
        }
        if let Some(s) = &self.soak {
            soak_markdown(&mut out, s);
        }
        if !self.ceilings.is_empty() {
            out.push_str("\n## Ceilings (same run, same client)\n\n");
            phase_table(&mut out, &self.ceilings);
        }
        for r in &self.reads {
            let _ = writeln!(
                out,
                "\n## Reads on {} entries ({} treatments, {} devicestatus; {:.0} MB database, \
                 seeded in {:.0} s{})\n",
                r.entries,
                r.seed.treatments,
                r.seed.devicestatus,
                r.seed.db_bytes as f64 / 1_048_576.0,
                r.seed.seconds,
                if r.seed_reused { ", reused" } else { "" }
            );
            phase_table(&mut out, &r.phases);
            if !r.same_bytes_ceiling.is_empty() {
                out.push_str("\nhello-world answering as many bytes as each endpoint:\n\n");
                phase_table(&mut out, &r.same_bytes_ceiling);
            }
            let items: Vec<String> = r
                .items_per_response
                .iter()
                .zip(&r.bytes_per_response)
                .map(|((k, n), (_, b))| format!("{k}: {n} ({b} bytes)"))
                .collect();
            let _ = writeln!(
                out,
                "\nDocuments per response: {}. Start to healthy: {:?} ms (median {:.1}). RSS \
                 idle {}, after reads {}, peak {}.",
                items.join(", "),
                r.start_ms,
                r.start_ms_median,
                mb(r.memory.rss_idle_kb),
                mb(r.memory.rss_after_load_kb),
                mb(r.memory.rss_peak_kb)
            );
        }
        if !self.diagnostics.is_empty() {
            out.push_str("\n## Diagnostics (in-process, one thread, no HTTP)\n\n");
            phase_table(&mut out, &self.diagnostics);
            for p in &self.diagnostics {
                if let Some(n) = &p.note {
                    let _ = writeln!(out, "- {}: {n}", p.name);
                }
            }
        }
        out
    }

    pub fn write(&self, out_dir: &Path) -> Res<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(out_dir)?;
        let stamp: String = self
            .started_utc
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let json = out_dir.join(format!("{stamp}.json"));
        let md = out_dir.join(format!("{stamp}.md"));
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        std::fs::write(&md, self.markdown())?;
        Ok((json, md))
    }

    /// Checks every target the run has figures for.
    pub fn check_targets(&mut self) {
        let mut t = vec![];
        let find = |phases: &[Phase], prefix: &str| -> Option<Phase> {
            phases.iter().find(|p| p.name.starts_with(prefix)).cloned()
        };
        let ingest = self.ingest.as_ref();
        let batch = ingest.and_then(|i| find(&i.phases, "batch"));
        let raw = find(&self.ceilings, "raw rusqlite, 100");
        if let Some(b) = &batch {
            t.push(Target {
                what: "ingest, batches of 100, 4 clients".into(),
                target: "≥ 50,000 entries/s".into(),
                measured: format!("{:.0} entries/s", b.docs_per_sec),
                met: b.docs_per_sec >= 50_000.0,
            });
            if let Some(r) = &raw {
                let ratio = b.docs_per_sec / r.docs_per_sec.max(1e-9);
                t.push(Target {
                    what: "ingest vs raw rusqlite (100 per transaction)".into(),
                    target: "≥ 50%".into(),
                    measured: format!(
                        "{:.0}% ({:.0} of {:.0}/s)",
                        ratio * 100.0,
                        b.docs_per_sec,
                        r.docs_per_sec
                    ),
                    met: ratio >= 0.5,
                });
            }
        }
        let same_bytes: Vec<&Phase> = self
            .reads
            .iter()
            .flat_map(|r| r.same_bytes_ceiling.iter())
            .collect();
        if let Some(hello) = find(&self.ceilings, "hello GET") {
            for r in &self.reads {
                for (i, p) in r.phases.iter().enumerate() {
                    // The targets of the issue; later phases (properties, v3 history) are
                    // reported without one.
                    if !HELLO_TARGETS.contains(&p.name.as_str()) {
                        continue;
                    }
                    let ratio = p.requests_per_sec / hello.requests_per_sec.max(1e-9);
                    // Against a hello-world answering as many bytes (measured on one size).
                    let sized = same_bytes
                        .iter()
                        .find(|c| c.name.ends_with(&format!("[{i}]")))
                        .map(|c| {
                            format!(
                                "; {:.0}% of a same-size hello ({:.0} req/s)",
                                p.requests_per_sec / c.requests_per_sec.max(1e-9) * 100.0,
                                c.requests_per_sec
                            )
                        })
                        .unwrap_or_default();
                    t.push(Target {
                        what: format!("{}, {} entries, vs hello-world", p.name, r.entries),
                        target: "≥ 30%".into(),
                        measured: format!(
                            "{:.0}% ({:.0} of {:.0} req/s{sized})",
                            ratio * 100.0,
                            p.requests_per_sec,
                            hello.requests_per_sec
                        ),
                        met: ratio >= 0.3,
                    });
                }
            }
        }
        if let Some(w) = ingest.and_then(|i| i.websocket.as_ref()) {
            if let Some(kb) = w.rss_under_load_max_kb {
                t.push(Target {
                    what: format!(
                        "RSS under batch ingest with {} WebSocket clients (max)",
                        w.clients
                    ),
                    target: "≤ 60 MB".into(),
                    measured: format!("{} ({} deltas delivered)", mb(Some(kb)), w.ws.deltas),
                    met: kb <= 60 * 1024,
                });
            }
        }
        if let Some(s) = &self.soak {
            t.push(Target {
                what: format!(
                    "soak {} min: RSS at the end vs after {} min warm-up",
                    s.minutes, s.warmup_minutes
                ),
                target: format!("within {}%", s.tolerance_pct),
                measured: format!(
                    "{:+.1}% ({} → {})",
                    s.growth_pct,
                    mb(Some(s.rss_after_warmup_kb)),
                    mb(Some(s.rss_end_kb))
                ),
                met: s.passed,
            });
        }
        let idle = ingest
            .and_then(|i| i.memory.rss_idle_kb)
            .or_else(|| self.reads.first().and_then(|r| r.memory.rss_idle_kb));
        if let Some(kb) = idle {
            t.push(Target {
                what: "RSS idle".into(),
                target: "≤ 15 MB".into(),
                measured: mb(Some(kb)),
                met: kb <= 15 * 1024,
            });
        }
        if let Some(big) = self.reads.iter().max_by_key(|r| r.entries) {
            t.push(Target {
                what: format!("start to healthy on {} entries", big.entries),
                target: "≤ 300 ms".into(),
                measured: format!("{:.1} ms", big.start_ms_median),
                met: big.start_ms_median <= 300.0,
            });
        }
        if let (Some(small), Some(big)) = (
            self.reads.iter().min_by_key(|r| r.entries),
            self.reads.iter().max_by_key(|r| r.entries),
        ) {
            if big.entries > small.entries {
                for p in &big.phases {
                    if let Some(s) = small.phases.iter().find(|q| q.name == p.name) {
                        let ratio = p.p50_ms / s.p50_ms.max(1e-9);
                        let ratio99 = p.p99_ms / s.p99_ms.max(1e-9);
                        t.push(Target {
                            what: format!(
                                "{} p50 latency {} vs {} entries",
                                p.name, big.entries, small.entries
                            ),
                            target: "≤ 1.5×".into(),
                            measured: format!(
                                "{:.2}× (p50 {:.2} vs {:.2} ms; p99 {:.2}×)",
                                round(ratio, 2),
                                p.p50_ms,
                                s.p50_ms,
                                round(ratio99, 2)
                            ),
                            met: ratio <= 1.5,
                        });
                    }
                }
            }
        }
        self.targets = t;
    }
}
