//! The command line: `serve` (the default), `healthcheck`, `token`, `backup`, `restore`,
//! `compact`, `rebuild-spans`, `import`, `sync` and `settings`.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nightlite::config::SecretSource;
use nightlite::Config;

#[derive(Parser)]
#[command(
    name = "nightlite",
    version,
    about = "A Nightscout-compatible server on SQLite"
)]
struct Cli {
    /// Optional TOML file with settings (the environment wins over it).
    #[arg(long, env = "NIGHTLITE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Run only the bridges (CONNECT_SOURCE) and the upload to a remote Nightscout
    /// (CONNECT_OUTPUT), without the HTTP server (docs/bridges.md).
    Bridge,
    /// Exit 0 when a server answers on the configured port.
    Healthcheck,
    /// Access tokens for followers and uploaders, managed offline on the data directory.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Copy the database to a file; safe while the server runs.
    Backup {
        /// Where to write the copy (default: <data dir>/backups/nightlite-<UTC time>.sqlite3).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Replace the database with a backup, after checking it; the server must be stopped.
    Restore {
        /// A backup made by `nightlite backup` (or any nightlite database file).
        file: PathBuf,
    },
    /// Give disk space back (a full disk): truncate the write-ahead log, remove documents
    /// deleted through the API more than N days ago, VACUUM when there is room. The server
    /// must be stopped.
    Compact {
        /// Keep documents deleted in the last N days (API v3 history reports them as deleted).
        #[arg(long, default_value_t = 30)]
        older_than_days: u32,
    },
    /// Derive every state span (overrides, targets, temp basals, ...) from the stored
    /// treatments and device statuses again; the server keeps them up to date itself, this is
    /// for repairs. The server must be stopped.
    RebuildSpans,
    /// Import an old Nightscout's data from mongoexport (.json) or mongodump (.bson,
    /// .bson.gz) files, or from the running site (--from URL), through the same rules as an
    /// upload: original `_id`s kept, importing twice stores nothing new (docs/import.md). The
    /// server must be stopped.
    Import {
        /// Export files, or mongodump folders (dump/<database>/).
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        files: Vec<PathBuf>,
        /// Copy a whole Nightscout site instead, through its API: every collection, all of
        /// its history, resumable (docs/import.md).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// With --from: an access token of the site (a subject that may read); or
        /// ?token=... on the URL. From the environment, it stays out of `ps`.
        #[arg(long, env = "IMPORT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// With --from: the site's API secret (when there is no token).
        #[arg(long, env = "IMPORT_API_SECRET", hide_env_values = true)]
        api_secret: Option<String>,
        /// With --from: stop after about this many documents; run again to go on.
        #[arg(long, requires = "from", value_name = "N")]
        stop_after: Option<u64>,
        /// The collection of every file (entries, treatments, devicestatus, profile, food,
        /// activity, settings); default: from each file's name (entries.json, treatments.bson).
        #[arg(long)]
        collection: Option<String>,
    },
    /// Sync this database with another Nightscout-compatible site once (docs/sync.md), the
    /// server stopped: `both` downloads the site's changes, settles conflicts and uploads
    /// this side's; `upload` and `download` go one way; `check` only compares (per collection,
    /// what each side lacks or holds differently, and which way a sync would go), changes
    /// nothing and is safe while the server runs. Exit status: 0 done (check: in sync), 3 the
    /// sides differ (check only), 1 a failure, 2 a bad URL.
    Sync {
        /// The other site, http(s)://; a ?token=... on it is taken as the token.
        #[arg(long, value_name = "URL")]
        url: String,
        #[arg(long, value_parser = ["both", "upload", "download", "check"])]
        direction: String,
        /// How a document changed on both sides is settled (docs/sync.md "Conflicts").
        #[arg(long, default_value = "safe",
              value_parser = ["safe", "local-wins", "remote-wins", "newest", "manual"])]
        conflict: String,
        /// Forget where the sync with this site stood first (a site restored from an old
        /// backup, or replaced): everything is read and sent again, as updates, never copies.
        #[arg(long)]
        forget: bool,
        /// An access token of the site (a subject that may read). From the environment,
        /// it stays out of `ps`.
        #[arg(long, env = "IMPORT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The site's API secret (when there is no token).
        #[arg(long, env = "IMPORT_API_SECRET", hide_env_values = true)]
        api_secret: Option<String>,
    },
    /// List every setting with the value in force, where it comes from and its default
    /// (API_SECRET only as set or not); exits 2 when a value would stop the server.
    Settings {
        /// Print the README's settings table instead (Markdown).
        #[arg(long, conflicts_with = "toml")]
        markdown: bool,
        /// Print the packaged nightlite.toml instead.
        #[arg(long)]
        toml: bool,
        /// Show vendor account names (personal data, hidden by default); passwords and
        /// API_SECRET are never shown.
        #[arg(long, conflicts_with_all = ["markdown", "toml"])]
        reveal: bool,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a subject and print its access token.
    Create {
        #[arg(long)]
        name: String,
        /// A role (repeatable): readable, careportal, devicestatus-upload, admin, ...
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List subjects with their roles and access tokens.
    List,
    /// Delete every subject of this name; its token and JWTs stop working.
    Revoke { name: String },
}

fn main() -> ExitCode {
    private_files();
    let cli = Cli::parse();
    let filter = match nightlite::config::log_filter(std::env::var("NIGHTLITE_LOG").ok().as_deref())
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nightlite: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(Command::Settings {
        markdown,
        toml,
        reveal,
    }) = &cli.command
    {
        let (markdown, toml, reveal) = (*markdown, *toml, *reveal);
        return settings(cli.config.as_deref(), markdown, toml, reveal);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nightlite: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Bridge => bridge(&config),
        Command::Healthcheck => healthcheck(&config),
        Command::Token { action } => token(config, action),
        Command::Backup { to } => backup(&config, to.as_deref()),
        Command::Restore { file } => restore(&config, &file),
        Command::Compact { older_than_days } => compact(&config, older_than_days),
        Command::RebuildSpans => rebuild_spans(&config),
        Command::Import {
            from: Some(url),
            token,
            api_secret,
            stop_after,
            ..
        } => import_site(&config, &url, token, api_secret, stop_after),
        Command::Import {
            files, collection, ..
        } => import(&config, &files, collection.as_deref()),
        // Answered above, before the settings are checked.
        Command::Sync {
            url,
            direction,
            conflict,
            forget,
            token,
            api_secret,
        } => sync(
            &config, &url, &direction, &conflict, forget, token, api_secret,
        ),
        Command::Settings {
            markdown,
            toml,
            reveal,
        } => settings(cli.config.as_deref(), markdown, toml, reveal),
    }
}

/// `nightlite settings`: the table as text, before the settings are checked, so that a bad
/// value is listed too; then the check the server makes, with its message.
fn settings(file: Option<&std::path::Path>, markdown: bool, toml: bool, reveal: bool) -> ExitCode {
    use nightlite::config::render;
    if markdown {
        print!("{}", render::markdown());
        return ExitCode::SUCCESS;
    }
    if toml {
        print!("{}", render::toml());
        return ExitCode::SUCCESS;
    }
    let listed = render::listing(file, reveal).and_then(|text| {
        print!("{text}");
        Config::load(file)
    });
    match listed {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlite: {e}");
            ExitCode::from(2)
        }
    }
}

fn rebuild_spans(config: &Config) -> ExitCode {
    if let Err(e) = nightlite::admin::existing_database(config) {
        eprintln!("nightlite: {e}");
        return ExitCode::from(1);
    }
    match nightlite::store::spans::rebuild_at(&config.data_dir) {
        Ok(n) => {
            eprintln!("derived {n} state spans from the stored treatments");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nightlite: rebuilding the state spans failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// As restore: a new data directory only where one was named (a first import before the
/// server ever ran), not a fresh database wherever the command happens to run.
fn import_target(config: &Config) -> bool {
    if !config.data_dir_named {
        if let Err(e) = nightlite::admin::existing_database(config) {
            eprintln!("nightlite: import refused: {e}; to import into a new data directory, name it with NIGHTLITE_DATA_DIR");
            return false;
        }
    }
    true
}

fn import_site(
    config: &Config,
    url: &str,
    token: Option<String>,
    api_secret: Option<String>,
    stop_after: Option<u64>,
) -> ExitCode {
    use nightlite::import::from_site;
    if !import_target(config) {
        return ExitCode::from(1);
    }
    let site = match from_site::site(url, token, api_secret) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nightlite: import refused: {e}");
            return ExitCode::from(2);
        }
    };
    let out = match from_site::run(&config.data_dir, &site, stop_after) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nightlite: import failed: {e}; run it again to go on from where it stopped");
            return ExitCode::from(1);
        }
    };
    print_counts(&out.report);
    if out.stopped {
        eprintln!("nightlite: stopped after --stop-after; run the same command again to go on");
        return ExitCode::from(3);
    }
    let mut differ = 0;
    for c in &out.checks {
        match c.source {
            Some(n) if n == c.read => {
                eprintln!(
                    "{}: {} read, as the site counts",
                    c.collection.table(),
                    c.read
                )
            }
            Some(n) => {
                differ += 1;
                eprintln!(
                    "{}: {} read, but the site counts {n} (documents without a time, or \
                     written there during the import: run it again)",
                    c.collection.table(),
                    c.read
                )
            }
            None => eprintln!(
                "{}: {} read (the site does not count these)",
                c.collection.table(),
                c.read
            ),
        }
    }
    if differ > 0 || out.report.refused() > 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn sync(
    config: &Config,
    url: &str,
    direction: &str,
    conflict: &str,
    forget: bool,
    token: Option<String>,
    api_secret: Option<String>,
) -> ExitCode {
    use nightlite::config::sync::{Mode, Strategy, SyncSettings};
    let site = match nightlite::import::from_site::site(url, token, api_secret) {
        Ok(s) => s,
        Err(_) => {
            eprintln!(
                "nightlite: sync refused: --url must be an http(s):// URL of a Nightscout site"
            );
            return ExitCode::from(2);
        }
    };
    let (Some(mode), Some(strategy)) = (Mode::parse(direction), Strategy::parse(conflict)) else {
        return ExitCode::from(2);
    };
    if mode == Mode::Check {
        return sync_check(config, &site);
    }
    let mut settings = SyncSettings::for_site(site, mode);
    settings.conflict = strategy;
    match nightlite::sync::oneshot::run(&config.data_dir, settings, mode, forget) {
        Ok(report) => {
            for c in &report.collections {
                println!(
                    "{}: {} uploaded, {} downloaded, {} conflicts, {} refused, {} pending",
                    c.collection, c.uploaded, c.downloaded, c.conflicts, c.refused, c.pending
                );
            }
            for i in &report.integrity {
                let there = i.remote_count.map_or("?".to_string(), |n| n.to_string());
                if i.matches {
                    println!(
                        "{}: the same on both sides ({}: {} here, {there} there)",
                        i.collection, i.method, i.local_count
                    );
                } else {
                    println!(
                        "{}: the sides differ after the sync ({}: {} here, {there} there)",
                        i.collection, i.method, i.local_count
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nightlite: sync failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn sync_check(config: &Config, site: &nightlite::config::bridges::RemoteSite) -> ExitCode {
    use nightlite::sync::check;
    let tallies = match check::run(&config.data_dir, site) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nightlite: sync check failed: {e}");
            return ExitCode::from(1);
        }
    };
    let mut differ = false;
    for (coll, t) in &tallies {
        differ |= !t.in_sync();
        println!(
            "{}: {} only here, {} only there, {} differ ({} newer here, {} newer there, {} \
             undecided), {} the same; direction: {}",
            coll.table(),
            t.only_local,
            t.only_remote,
            t.differ(),
            t.newer_local,
            t.newer_remote,
            t.undecided,
            t.same,
            check::Direction::of(t).name()
        );
    }
    if differ {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn import(config: &Config, files: &[PathBuf], collection: Option<&str>) -> ExitCode {
    if !import_target(config) {
        return ExitCode::from(1);
    }
    let report = match nightlite::import::run(&config.data_dir, files, collection) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nightlite: import failed: {e}");
            return ExitCode::from(1);
        }
    };
    print_counts(&report);
    match report.refused() {
        0 => ExitCode::SUCCESS,
        n => {
            eprintln!("nightlite: {n} documents refused (each named above); the others are stored");
            ExitCode::from(1)
        }
    }
}

fn print_counts(report: &nightlite::import::Report) {
    for (coll, c) in &report.collections {
        let here = if c.deleted_here > 0 {
            format!("; {} of them deleted here", c.deleted_here)
        } else {
            String::new()
        };
        eprintln!(
            "{}: {} read: {} inserted, {} updated, {} unchanged, {} refused, {} deleted in the \
             source (not imported{here})",
            coll.table(),
            c.read,
            c.inserted,
            c.updated,
            c.unchanged,
            c.refused,
            c.deleted
        );
    }
}

fn compact(config: &Config, older_than_days: u32) -> ExitCode {
    use nightlite::store::compact::{self, Vacuum};
    if let Err(e) = nightlite::admin::existing_database(config) {
        eprintln!("nightlite: {e}");
        return ExitCode::from(1);
    }
    let now = nightlite::dates::now_ms();
    match compact::compact(&config.data_dir, older_than_days, now) {
        Ok(c) => {
            for (coll, n) in &c.removed {
                eprintln!(
                    "removed {n} {} deleted more than {older_than_days} days ago",
                    coll.table()
                );
            }
            match c.vacuum {
                Vacuum::Done => eprintln!("vacuumed: the file holds no free pages now"),
                Vacuum::NotNeeded => {}
                Vacuum::NoRoom { needed, free } => eprintln!(
                    "not vacuumed: that needs about {} MB free, the disk has {} MB; the freed \
                     pages stay in the file for new data",
                    needed >> 20,
                    free >> 20
                ),
            }
            eprintln!("database and WAL: {} → {} bytes", c.before, c.after);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nightlite: compact failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// What nightlite creates (the data directory, database, WAL, backups) holds health data:
/// readable by its owner only, whatever umask the shell had. The .deb's unit sets the same.
fn private_files() {
    use rustix::fs::Mode;
    let private = Mode::RWXG | Mode::RWXO;
    let old = rustix::process::umask(private);
    rustix::process::umask(old | private);
}

fn backup(config: &Config, to: Option<&std::path::Path>) -> ExitCode {
    if let Err(e) = nightlite::admin::existing_database(config) {
        eprintln!("nightlite: backup failed: {e}");
        return ExitCode::from(1);
    }
    match nightlite::care::backup_now(config, to) {
        Ok((path, bytes)) => {
            println!("{}", path.display());
            eprintln!("backup written: {} ({bytes} bytes)", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nightlite: backup failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn restore(config: &Config, file: &std::path::Path) -> ExitCode {
    // A new data directory only where one was named (recovery onto a new machine): a restore
    // run in the wrong folder must not make a database the server never reads.
    if !config.data_dir_named {
        if let Err(e) = nightlite::admin::existing_database(config) {
            eprintln!(
                "nightlite: restore refused: {e}; to restore into a new data directory, \
                 name it with NIGHTLITE_DATA_DIR"
            );
            return ExitCode::from(1);
        }
    }
    match nightlite::store::backup::restore(&config.data_dir, file) {
        Ok(r) => {
            let c = &r.checked;
            eprintln!(
                "restored {} into {} ({} entries, {} treatments, {} device statuses)",
                file.display(),
                r.database.display(),
                c.entries,
                c.treatments,
                c.devicestatus
            );
            if let Some(prev) = r.previous {
                eprintln!("the previous database is kept as {}", prev.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nightlite: restore refused: {e}");
            ExitCode::from(1)
        }
    }
}

fn token(config: Config, action: TokenAction) -> ExitCode {
    let result = match action {
        TokenAction::Create { name, roles } => {
            nightlite::admin::token_create(config, &name, &roles).map(|t| {
                println!("{}", t.access_token);
                eprintln!("created '{}' with roles {}", t.name, t.roles.join(", "));
            })
        }
        TokenAction::List => nightlite::admin::token_list(config).map(|lines| {
            for t in lines {
                println!("{}\t{}\t{}", t.name, t.roles.join(","), t.access_token);
            }
        }),
        TokenAction::Revoke { name } => {
            nightlite::admin::token_revoke(config, &name).and_then(|n| {
                if n == 0 {
                    Err(nightlite::Error::NotFound(format!(
                        "no subject named '{name}'"
                    )))
                } else {
                    eprintln!("revoked {n} subject(s) named '{name}'");
                    Ok(())
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlite: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(mut config: Config) -> ExitCode {
    if let Err(e) = nightlite::admin::check_default_roles(&config) {
        eprintln!("nightlite: {e}");
        return ExitCode::from(2);
    }
    let generated = match config.ensure_secret() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("nightlite: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = format!("{}:{}", config.hostname, config.port);
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nightlite: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let secret_file = generated.is_some().then(|| config.secret_file());
    let banner = banner(&config, generated);
    let recorder = config.clone();
    let result = actix_web::rt::System::new().block_on(nightlite::serve_announced(
        config,
        listener,
        stop_signal(),
        move || {
            // Once the data directory is ours: lets `nightlite token` check it uses this secret.
            if let Err(e) = recorder.record_secret_in_use() {
                tracing::warn!(error = %e, "could not record which API secret is in use");
            }
            print!("{banner}")
        },
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlite: {e}");
            if let Some(file) = secret_file {
                eprintln!(
                    "nightlite: the admin API secret generated for this data directory is in {}",
                    file.display()
                );
            }
            ExitCode::from(1)
        }
    }
}

/// What `serve` prints once it is ready: the addresses to use, the data directory and where
/// the admin secret comes from (the secret itself only when this start generated it).
fn banner(config: &Config, generated: Option<String>) -> String {
    use std::fmt::Write;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = |host: &str| format!("{scheme}://{host}:{}{}/", config.port, config.base_path);
    let every_interface = matches!(config.hostname.as_str(), "0.0.0.0" | "::" | "[::]");
    let mut out = String::new();
    let version = nightlite::NIGHTLITE_VERSION;
    let reachable = if every_interface {
        let _ = writeln!(
            out,
            "nightlite {version} serving at {} on this machine",
            url("127.0.0.1")
        );
        let lan = nightlite::lan::addresses();
        for ip in &lan {
            let _ = writeln!(
                out,
                "  from phones and other machines: {}",
                url(&ip.to_string())
            );
        }
        if lan.is_empty() {
            let _ = writeln!(
                out,
                "  from phones and other machines: {} with this machine's address",
                url("<address>")
            );
        }
        true
    } else {
        let _ = writeln!(
            out,
            "nightlite {version} serving at {}",
            url(&config.hostname)
        );
        !config
            .hostname
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
            && config.hostname != "localhost"
    };
    // Nightscout's redirect (src/https.rs): a phone given an http:// address lands on https://,
    // which nothing serves here; say so before the user wonders why.
    if reachable && config.tls.is_none() && !config.insecure_use_http && !config.trust_proxy.is_on()
    {
        let _ = writeln!(
            out,
            "  other machines are redirected to https://, as Nightscout does; for plain http on a \
             network you trust set INSECURE_USE_HTTP=true, or put nightlite behind HTTPS \
             (README: \"Put it behind HTTPS\")"
        );
    }
    let _ = writeln!(out, "data directory: {}", config.data_dir.display());
    let file = config.secret_file();
    let _ = match generated {
        Some(secret) => writeln!(
            out,
            "admin API secret (generated, shown once): {secret}\nit is stored in {}",
            file.display()
        ),
        None => writeln!(out, "admin API secret: from {}", config.secret_origin()),
    };
    // A file left from before API_SECRET was set would otherwise look like the secret in force.
    let from_file = matches!(
        config.secret_source,
        SecretSource::DataDirFile | SecretSource::Generated
    );
    if !from_file && file.exists() {
        let _ = writeln!(
            out,
            "({} is not used while API_SECRET is set)",
            file.display()
        );
    }
    out
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// Ctrl-C, or SIGTERM (what `systemctl stop` and container runtimes send): a graceful stop.
fn bridge(config: &Config) -> ExitCode {
    let result =
        actix_web::rt::System::new().block_on(nightlite::connect::run_alone(config, stop_signal()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlite bridge: {e}");
            ExitCode::from(1)
        }
    }
}

async fn stop_signal() {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = actix_web::rt::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = actix_web::rt::signal::ctrl_c().await;
        }
    }
}

fn healthcheck(config: &Config) -> ExitCode {
    let host = if config.hostname == "0.0.0.0" {
        "127.0.0.1"
    } else {
        config.hostname.as_str()
    };
    let addr = match (host, config.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => return ExitCode::from(1),
    };
    let ok = (|| -> std::io::Result<bool> {
        use std::io::{Read, Write};
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(3)))?;
        let mut s: Box<dyn ReadWrite> = if config.tls.is_some() {
            Box::new(nightlite::tls::probe_stream(tcp)?)
        } else {
            Box::new(tcp)
        };
        let base = &config.base_path;
        write!(
            s,
            "GET {base}/api/versions HTTP/1.0\r\nHost: {host}\r\n\r\n"
        )?;
        s.flush()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    })()
    .unwrap_or(false);
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("nightlite: no healthy server at {addr}");
        ExitCode::from(1)
    }
}
