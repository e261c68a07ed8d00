//! Starting a nightlite: in this process ([`Setup::start`]) or as the real binary
//! ([`Setup::spawn`]), with a temporary data directory and settings over the test defaults.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{free_port, Http, SECRET};

/// What a test server is started with. [`Setup::new`] gives the test defaults
/// (`API_SECRET` = [`SECRET`], `AUTH_DEFAULT_ROLES=denied`, a 20 ms `AUTH_FAIL_DELAY`, since
/// tests send wrong credentials on purpose), [`Setup::bare`] none; settings given with
/// [`Setup::env`] override them. The data directory is a new temporary one unless
/// [`Setup::data_dir`] names one (or a setting names `NIGHTLITE_DATA_DIR`).
pub struct Setup {
    vars: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    args: Vec<String>,
    clock: Option<std::sync::Arc<nightlite::connect::ManualClock>>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup::new()
    }
}

impl Setup {
    pub fn new() -> Setup {
        Setup::bare()
            .env("API_SECRET", SECRET)
            .env("AUTH_DEFAULT_ROLES", "denied")
            .env("AUTH_FAIL_DELAY", "20")
    }

    /// No settings but the data directory (and, for the binary, PORT and HOSTNAME).
    pub fn bare() -> Setup {
        Setup {
            vars: vec![],
            data_dir: None,
            args: vec![],
            clock: None,
        }
    }

    /// The bridges (CONNECT_SOURCE) wait on this clock instead of real time ([`Setup::start`]
    /// only): the test moves it.
    pub fn clock(mut self, clock: &std::sync::Arc<nightlite::connect::ManualClock>) -> Setup {
        self.clock = Some(clock.clone());
        self
    }

    /// One setting, as an environment variable would give it.
    pub fn env(mut self, name: &str, value: &str) -> Setup {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    pub fn envs(self, vars: &[(&str, &str)]) -> Setup {
        vars.iter().fold(self, |s, (k, v)| s.env(k, v))
    }

    /// A data directory the caller owns, so that a later server can reopen it.
    pub fn data_dir(mut self, dir: &Path) -> Setup {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Command-line arguments before `serve` (the binary only).
    pub fn args(mut self, args: &[&str]) -> Setup {
        self.args.extend(args.iter().map(|a| (*a).to_string()));
        self
    }

    fn setting(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The hash of the API secret in force, for the client.
    fn secret_hash(&self) -> String {
        nightlite::auth::sha1_hex(self.setting("API_SECRET").unwrap_or(SECRET))
    }

    /// The settings with NIGHTLITE_DATA_DIR filled in (a new temporary directory, returned
    /// for the server to own, unless one is given).
    fn resolved(&self) -> (Vec<(String, String)>, Option<tempfile::TempDir>) {
        let mut vars = self.vars.clone();
        if self.setting("NIGHTLITE_DATA_DIR").is_some() {
            return (vars, None);
        }
        let (dir, owned) = match &self.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_path_buf(), Some(t))
            }
        };
        vars.push(("NIGHTLITE_DATA_DIR".into(), dir.display().to_string()));
        (vars, owned)
    }

    /// A server in this process on an ephemeral port; returns once it answers HTTP (or,
    /// with TLS, accepts connections).
    pub fn start(self) -> TestServer {
        let (vars, owned) = self.resolved();
        let map: HashMap<String, String> = vars.into_iter().collect();
        let config = nightlite::Config::from_map(&map).unwrap();
        let tls = config.tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let clock = self.clock.clone();
        let thread = std::thread::spawn(move || {
            let stop = async move {
                let _ = rx.await;
            };
            actix_web::rt::System::new().block_on(async move {
                match clock {
                    Some(c) => nightlite::serve_with_clock(config, listener, stop, c).await,
                    None => nightlite::serve(config, listener, stop).await,
                }
            })
        });
        let mut server = TestServer {
            http: Http::new(port, self.secret_hash()),
            _owned_dir: owned,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if server.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                let result = server.thread.take().unwrap().join();
                panic!("server exited during start-up: {result:?}");
            }
            // A TLS server's tests speak TLS themselves.
            let up = if tls {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                server.answers()
            };
            if up {
                return server;
            }
            assert!(Instant::now() < deadline, "server did not answer in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nightlite <args> serve` as a child process with only these settings in its
    /// environment (nothing inherited), on a free port of 127.0.0.1 unless the settings name
    /// PORT or HOSTNAME; its stdout and stderr go to files ([`Process::logs`]). Returns once
    /// it answers HTTP, which is after its banner.
    pub fn spawn(self) -> Process {
        let (vars, owned) = self.resolved();
        let logs = tempfile::tempdir().unwrap();
        let out = logs.path().join("stdout.log");
        let err = logs.path().join("stderr.log");
        let port = match self.setting("PORT") {
            Some(p) => p.parse().unwrap(),
            None => free_port(),
        };
        let child = command()
            .args(&self.args)
            .arg("serve")
            .env("PORT", port.to_string())
            .env("HOSTNAME", "127.0.0.1")
            .envs(vars)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut p = Process {
            child,
            http: Http::new(port, self.secret_hash()),
            out,
            err,
            _logs: logs,
            _owned_dir: owned,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.answers() {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("nightlite exited during start-up ({status}):\n{}", p.logs());
            }
            assert!(
                Instant::now() < deadline,
                "no answer in 30 s:\n{}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }
}

/// The `nightlite` binary with nothing from the test's environment and no stdin.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nightlite"));
    c.env_clear().stdin(Stdio::null());
    c
}

/// A nightlite running in this process; stopped (and checked to stop cleanly) on drop. Its
/// HTTP client is reached through `Deref` (`server.get(...)`, `server.port`).
pub struct TestServer {
    http: Http,
    _owned_dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with the test defaults.
    pub fn start() -> TestServer {
        Setup::new().start()
    }

    /// A server with extra settings over the defaults.
    pub fn with(vars: &[(&str, &str)]) -> TestServer {
        Setup::new().envs(vars).start()
    }

    /// A server on a data directory the caller owns, so a later server can reopen it.
    pub fn in_dir(dir: &Path, vars: &[(&str, &str)]) -> TestServer {
        Setup::new().data_dir(dir).envs(vars).start()
    }

    /// Its HTTP client, to move into another thread or task.
    pub fn http(&self) -> Http {
        self.http.clone()
    }
}

impl Deref for TestServer {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let result = t.join();
            if !std::thread::panicking() {
                match result {
                    Ok(Ok(())) => {}
                    other => panic!("server did not stop cleanly: {other:?}"),
                }
            }
        }
    }
}

/// The nightlite binary running as a child process; killed (SIGKILL) on drop. Its HTTP
/// client is reached through `Deref`.
pub struct Process {
    pub child: Child,
    http: Http,
    out: PathBuf,
    err: PathBuf,
    _logs: tempfile::TempDir,
    _owned_dir: Option<tempfile::TempDir>,
}

impl Process {
    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What it wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let err = std::fs::read_to_string(&self.err).unwrap_or_default();
        format!("{}{err}", self.stdout())
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and returns everything it wrote.
    pub fn stop(mut self) -> String {
        self.kill();
        self.logs()
    }
}

impl Deref for Process {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
