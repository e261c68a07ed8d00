//! Servers under test as child processes: the real release `nightlite` binary, or this
//! benchmark's own hello-world (the HTTP ceiling). Start time, RSS and CPU come from /proc.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Conn;
use super::Res;

/// The API secret every benchmark server runs with.
pub const SECRET: &str = "nightlite-bench-secret";

/// SHA-1 hex of the secret, as the `api-secret` header carries it.
pub fn secret_hash() -> String {
    use sha1::{Digest, Sha1};
    nightlite::ids::hex(&Sha1::digest(SECRET.as_bytes()))
}

static EXTRA_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Extra environment for every nightlite started from now on (`--server-env`).
pub fn add_env(k: &str, v: &str) {
    if let Ok(mut e) = EXTRA_ENV.lock() {
        e.push((k.to_string(), v.to_string()));
    }
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// From spawn to the first 200 on /api/versions (or / for hello).
    pub start_ms: f64,
}

pub fn free_port() -> Res<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Starts `target/release/nightlite` on a data directory and waits until it is healthy.
pub fn start_nightlite(bin: &Path, data_dir: &Path, log: &Path) -> Res<Server> {
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env_clear()
        .env("API_SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .env("NIGHTLITE_DATA_DIR", data_dir)
        .env("AUTH_DEFAULT_ROLES", "denied")
        // The server's default keeps 60 days of device statuses and deletes older ones three
        // seconds after start: on a seeded database of years that is a delete of hundreds of
        // thousands of rows during the measurement (run D's 1M and 5M reads ran beside it),
        // and the seed is changed for the next run. The bench measures a database as seeded.
        .env("DEVICESTATUS_RETENTION_DAYS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log)?);
    if let Ok(extra) = EXTRA_ENV.lock() {
        for (k, v) in extra.iter() {
            cmd.env(k, v);
        }
    }
    spawn(cmd, port, "/api/versions")
}

/// Starts this binary's hello-world server.
pub fn start_hello() -> Res<Server> {
    let port = free_port()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["hello-server", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn(cmd, port, "/")
}

fn spawn(mut cmd: Command, port: u16, health_path: &str) -> Res<Server> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let t0 = Instant::now();
    let child = cmd.spawn()?;
    let mut server = Server {
        child,
        addr,
        start_ms: 0.0,
    };
    let req = super::client::get(&addr.to_string(), health_path, &secret_hash());
    let deadline = t0 + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait()? {
            return Err(format!("server exited during start-up: {status}").into());
        }
        // Polled every 0.5 ms so the start time is measured, not the polling interval.
        if let Ok(mut c) = Conn::connect(addr) {
            if let Ok(r) = c.exchange(&req, false) {
                if r.status == 200 {
                    server.start_ms = t0.elapsed().as_secs_f64() * 1000.0;
                    return Ok(server);
                }
            }
        }
        if Instant::now() > deadline {
            return Err("server did not become healthy within 60 s".into());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process in clock ticks (USER_HZ, 100 on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub const TICKS_PER_SEC: f64 = 100.0;

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmRSS:")
    }

    /// The peak RSS over the process's life.
    pub fn hwm_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmHWM:")
    }

    pub fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.pid())
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops gracefully (SIGINT, as Ctrl-C), killing it if it has not exited in 10 s.
    pub fn stop(mut self) -> Res<()> {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The subject the benchmark uses for API v3 (role admin).
const BENCH_SUBJECT: &str = "nightlitebench";

/// A JWT for API v3, the way a client gets one (docs/auth.md): the admin secret creates a
/// subject with the admin role through `POST /api/v2/authorization/subjects` (or finds the one
/// a previous run left in a reused database), the listing gives its access token, and
/// `GET /api/v2/authorization/request/<token>` exchanges that for a JWT (valid 8 hours).
pub fn admin_jwt(server: &Server) -> Res<String> {
    use super::client::call_json;
    let secret = secret_hash();
    let auth = [("api-secret", secret.as_str())];
    let find_token = || -> Res<Option<String>> {
        let (status, list) = call_json(
            server.addr,
            "GET",
            "/api/v2/authorization/subjects",
            &auth,
            None,
        )?;
        if status != 200 {
            return Err(format!("listing subjects: status {status}: {list}").into());
        }
        Ok(list.as_array().and_then(|subjects| {
            subjects
                .iter()
                .find(|s| s["name"] == BENCH_SUBJECT)
                .and_then(|s| s["accessToken"].as_str())
                .map(str::to_string)
        }))
    };
    let token = match find_token()? {
        Some(t) => t,
        None => {
            let body = format!(r#"{{"name":"{BENCH_SUBJECT}","roles":["admin"]}}"#);
            let (status, reply) = call_json(
                server.addr,
                "POST",
                "/api/v2/authorization/subjects",
                &auth,
                Some(body.as_bytes()),
            )?;
            if status != 200 {
                return Err(format!("creating the bench subject: status {status}: {reply}").into());
            }
            find_token()?.ok_or("the bench subject was created but is not listed")?
        }
    };
    let (status, reply) = call_json(
        server.addr,
        "GET",
        &format!("/api/v2/authorization/request/{token}"),
        &[],
        None,
    )?;
    reply["token"]
        .as_str()
        .filter(|_| status == 200)
        .map(str::to_string)
        .ok_or_else(|| {
            format!("exchanging the access token for a JWT: status {status}: {reply}").into()
        })
}

/// The nightlite binary next to this one (both packages build into the workspace's
/// target/release). Under `cargo run` it is (re)built first, so a clean checkout needs one
/// command.
pub fn nightlite_binary(explicit: Option<PathBuf>) -> Res<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no directory of the benchmark binary")?;
    let bin = dir.join("nightlite");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => "release",
        };
        // -p: the server is the workspace's root package, not this one.
        let args = [
            "build",
            "--profile",
            profile,
            "-p",
            "nightlite",
            "--bin",
            "nightlite",
        ];
        eprintln!("building the server: cargo {}", args.join(" "));
        let status = Command::new(cargo).args(args).status()?;
        if !status.success() {
            return Err("building the nightlite binary failed".into());
        }
    }
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release` first or pass --server",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// The hello-world server: `GET /` answers a fixed text, `GET /bytes/{n}` n bytes (a
/// response as large as a nightlite list, with no work behind it), `POST /` echoes the body
/// (the same bytes in and out as a batch POST to nightlite, with no work in between).
pub fn hello_server(port: u16) -> Res<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let sys = actix_web::rt::System::new();
    sys.block_on(async move {
        HttpServer::new(|| {
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route(
                    "/",
                    web::get().to(|| async { HttpResponse::Ok().body("Hello world!") }),
                )
                .route(
                    "/bytes/{n}",
                    web::get().to(|n: web::Path<usize>| async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(vec![b' '; n.into_inner().min(64 * 1024 * 1024)])
                    }),
                )
                .route(
                    "/",
                    web::post().to(|body: web::Bytes| async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }),
                )
        })
        .bind((Ipv4Addr::LOCALHOST, port))?
        .run()
        .await
    })?;
    Ok(())
}
