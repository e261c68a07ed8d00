//! nightlite-bench: measures the real release server (a child process, driven over HTTP on
//! 127.0.0.1) against ceilings taken in the same run — raw rusqlite with the same schema and
//! documents (the storage limit) and an actix-web hello-world hit by the same client (the HTTP
//! limit) — so the figures are ratios, not machine luck. See docs/PERFORMANCE.md.
//!
//!     cargo run --release -p nightlite-bench -- all
//!     cargo run --release -p nightlite-bench -- ingest --secs 30
//!     cargo run --release -p nightlite-bench -- scale --sizes 10000,1000000,5000000
//!     cargo run --release -p nightlite-bench -- seed --entries 5000000 --dir /tmp/db
//!     cargo run --release -p nightlite-bench -- soak --minutes 10
//!
//! A package of its own in the workspace (bench/Cargo.toml), so that the server's release
//! builds and `cargo test` do not compile it. `--out` and `--work` are relative to the
//! directory it runs in: run it from the repository root.

mod ceiling;
mod client;
mod docs;
mod memory;
mod report;
mod run;
mod seed;
mod server;
mod soak;
mod stats;
mod ws;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(name = "nightlite-bench", about = "Benchmarks of the nightlite server")]
struct Cli {
    /// Where the JSON and Markdown results go.
    #[arg(long, global = true, default_value = "bench-results")]
    out: PathBuf,
    /// Scratch space: seeded databases (reused between runs), ingest databases, server logs.
    #[arg(long, global = true, default_value = "bench-data")]
    work: PathBuf,
    /// The server binary (default: target/<profile>/nightlite, rebuilt under cargo run).
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Extra environment for the server under test, KEY=VALUE (repeatable), for experiments.
    #[arg(long = "server-env", global = true)]
    server_env: Vec<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes a database of N one-minute sgv entries (plus N/10 treatments, N/5 devicestatus).
    Seed {
        #[arg(long)]
        entries: u64,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Ingest (v1 batches of 100 by 4 clients, v1 singles by 8, v3 singles by 8, batches again
    /// with WebSocket clients) with the raw-rusqlite, store and hello-world ceilings.
    Ingest {
        #[arg(long, default_value_t = 30.0)]
        secs: f64,
        /// Duration of the v3 POST phase and of the phase with WebSocket clients.
        #[arg(long, default_value_t = 10.0)]
        phase_secs: f64,
        /// WebSocket clients during the second batch phase (0: skip it).
        #[arg(long, default_value_t = 200)]
        ws_clients: usize,
        /// Duration of the shorter ceiling phases.
        #[arg(long, default_value_t = 10.0)]
        hello_secs: f64,
        /// Skip the ceilings.
        #[arg(long)]
        no_ceilings: bool,
        /// Also measure raw variants (schema v1's triggers, no secondary indexes, synchronous=NORMAL,
        /// 400 per transaction) to show what limits ingest.
        #[arg(long)]
        diagnose: bool,
    },
    /// Reads on one seeded data directory, with the hello-world GET ceiling.
    Read {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Also time the read path in-process: the earlier parse path, the server's (checked
        /// splice) and the unchecked splice of the stored JSON.
        #[arg(long)]
        diagnose: bool,
    },
    /// Seeds (or reuses) each size and measures reads, start time and memory on each.
    Scale {
        #[arg(long, value_delimiter = ',', default_value = "10000,1000000,5000000")]
        sizes: Vec<u64>,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Seed again even when a fresh seeded database of that size exists.
        #[arg(long)]
        reseed: bool,
        /// See `read --diagnose`.
        #[arg(long)]
        diagnose: bool,
    },
    /// Everything: ingest with ceilings, then scale.
    All {
        #[arg(long, default_value_t = 30.0)]
        secs: f64,
        /// See `ingest --phase-secs`.
        #[arg(long, default_value_t = 10.0)]
        phase_secs: f64,
        /// See `ingest --ws-clients`.
        #[arg(long, default_value_t = 200)]
        ws_clients: usize,
        #[arg(long, default_value_t = 10.0)]
        read_secs: f64,
        #[arg(long, value_delimiter = ',', default_value = "10000,1000000,5000000")]
        sizes: Vec<u64>,
        #[arg(long)]
        reseed: bool,
        /// See `ingest --diagnose`.
        #[arg(long)]
        diagnose: bool,
    },
    /// Load soak: N minutes of mixed uploads and reads with WebSocket clients reading deltas;
    /// fails (exit 1) unless RSS at the end is within the tolerance of RSS after the warm-up.
    Soak {
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// The reference RSS is taken at the end of the warm-up.
        #[arg(long, default_value_t = 1.0)]
        warmup_minutes: f64,
        #[arg(long, default_value_t = 100)]
        ws_clients: usize,
        /// Entries seeded (ending now) before the soak, so reads have recent data.
        #[arg(long, default_value_t = 10_000)]
        seed_entries: u64,
        /// Allowed change of RSS from the end of the warm-up to the end, percent.
        #[arg(long, default_value_t = 10.0)]
        tolerance_pct: f64,
    },
    /// Peak RSS of the server for one large request each (anonymous 20 MB POST, authorised
    /// 20 MB batch, 20 MB single document, 20 MB of 1 MB documents, Socket.IO flood, large
    /// CSV export), each on a fresh server; prints a Markdown table.
    Memory {
        /// Rows of the seeded database the CSV export reads (seeded once under --work).
        #[arg(long, default_value_t = 1_000_000)]
        export_rows: u64,
    },
    /// The hello-world ceiling server (started by the benchmark itself).
    #[command(hide = true)]
    HelloServer {
        #[arg(long)]
        port: u16,
    },
}

fn git_describe() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "bench",
        "schema.sql",
        "Cargo.toml",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn new_report(bin: &Path) -> report::Report {
    report::Report {
        started_utc: nightlite::dates::to_iso(nightlite::dates::now_ms()),
        command: std::iter::once("nightlite-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        git: git_describe(),
        machine: report::Machine::probe(),
        binary: bin.display().to_string(),
        binary_bytes: std::fs::metadata(bin).ok().map(|m| m.len()),
        ..report::Report::default()
    }
}

fn finish(mut report: report::Report, out: &Path) -> Res<()> {
    report.check_targets();
    let (json, md) = report.write(out)?;
    println!("{}", report.markdown());
    eprintln!("results: {} and {}", json.display(), md.display());
    Ok(())
}

fn real_main(cli: Cli) -> Res<()> {
    for kv in &cli.server_env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--server-env {kv}: expected KEY=VALUE"))?;
        server::add_env(k, v);
    }
    match cli.command {
        Cmd::HelloServer { port } => server::hello_server(port),
        Cmd::Memory { export_rows } => {
            let bin = server::nightlite_binary(cli.server)?;
            let phases = memory::run(&bin, &cli.work, export_rows)?;
            println!("{} on {}\n", new_report(&bin).command, git_describe());
            println!("{}", memory::markdown(&phases));
            if phases.iter().any(|p| p.peak_kb > memory::TARGET_KB) {
                return Err("a phase's peak RSS is over the 64 MB target".into());
            }
            Ok(())
        }
        Cmd::Seed { entries, dir } => {
            let info = seed::seed(&dir, entries)?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }
        Cmd::Ingest {
            secs,
            phase_secs,
            ws_clients,
            hello_secs,
            no_ceilings,
            diagnose,
        } => {
            let bin = server::nightlite_binary(cli.server)?;
            let mut report = new_report(&bin);
            let opts = run::IngestOptions {
                secs,
                hello_secs,
                ceilings: !no_ceilings,
                phase_secs,
                ws_clients,
                diagnose,
            };
            report.ingest = Some(run::ingest(&bin, &cli.work, &opts, &mut report.ceilings)?);
            finish(report, &cli.out)
        }
        Cmd::Soak {
            minutes,
            warmup_minutes,
            ws_clients,
            seed_entries,
            tolerance_pct,
        } => {
            if warmup_minutes >= minutes {
                return Err("--warmup-minutes must be shorter than --minutes".into());
            }
            let bin = server::nightlite_binary(cli.server)?;
            let mut report = new_report(&bin);
            let opts = soak::SoakOptions {
                minutes,
                warmup_minutes,
                ws_clients,
                seed_entries,
                tolerance_pct,
            };
            let run = soak::soak(&bin, &cli.work, &opts)?;
            let passed = run.passed;
            let growth = run.growth_pct;
            report.soak = Some(run);
            finish(report, &cli.out)?;
            if passed {
                Ok(())
            } else {
                Err(format!(
                    "soak failed: RSS changed {growth:+.1}% from the end of the warm-up to the end \
                     (allowed ±{tolerance_pct}%)"
                )
                .into())
            }
        }
        Cmd::Read {
            dir,
            secs,
            diagnose,
        } => {
            let bin = server::nightlite_binary(cli.server)?;
            let mut report = new_report(&bin);
            let text = std::fs::read_to_string(dir.join("bench-seed.json")).map_err(|e| {
                format!(
                    "{}: not a seeded directory ({e}); run `seed` first",
                    dir.display()
                )
            })?;
            let info: seed::SeedInfo = serde_json::from_str(&text)?;
            if diagnose {
                report.diagnostics = run::read_diagnose(&dir, &info, secs)?;
            }
            report.ceilings.push(run::hello_get(secs)?);
            report.reads.push(run::read_dir(
                &bin, &cli.work, &dir, info, true, secs, true,
            )?);
            finish(report, &cli.out)
        }
        Cmd::Scale {
            sizes,
            secs,
            reseed,
            diagnose,
        } => {
            let bin = server::nightlite_binary(cli.server)?;
            let mut report = new_report(&bin);
            report.ceilings.push(run::hello_get(secs)?);
            for (i, n) in sizes.into_iter().enumerate() {
                let r = run::read_size(&bin, &cli.work, n, secs, reseed, i == 0)?;
                if diagnose && i == 0 {
                    let dir = cli.work.join(format!("seed-{n}"));
                    report.diagnostics = run::read_diagnose(&dir, &r.seed, secs)?;
                }
                report.reads.push(r);
            }
            finish(report, &cli.out)
        }
        Cmd::All {
            secs,
            phase_secs,
            ws_clients,
            read_secs,
            sizes,
            reseed,
            diagnose,
        } => {
            let bin = server::nightlite_binary(cli.server)?;
            let mut report = new_report(&bin);
            // Seed first, so the timed phases do not share the machine with seeding.
            let mut seeded = vec![];
            for &n in &sizes {
                let dir = cli.work.join(format!("seed-{n}"));
                if reseed || seed::existing(&dir, n).is_none() {
                    eprintln!("seed: {n} entries into {}", dir.display());
                    seed::seed(&dir, n)?;
                    seeded.push(n);
                }
            }
            let opts = run::IngestOptions {
                secs,
                hello_secs: read_secs,
                ceilings: true,
                phase_secs,
                ws_clients,
                diagnose,
            };
            report.ingest = Some(run::ingest(&bin, &cli.work, &opts, &mut report.ceilings)?);
            report.ceilings.push(run::hello_get(read_secs)?);
            for (i, n) in sizes.into_iter().enumerate() {
                let mut r = run::read_size(&bin, &cli.work, n, read_secs, false, i == 0)?;
                r.seed_reused = !seeded.contains(&n);
                if diagnose && i == 0 {
                    let dir = cli.work.join(format!("seed-{n}"));
                    report
                        .diagnostics
                        .extend(run::read_diagnose(&dir, &r.seed, read_secs)?);
                }
                report.reads.push(r);
            }
            finish(report, &cli.out)
        }
    }
}

fn main() -> ExitCode {
    match real_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlite-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
