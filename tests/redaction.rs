//! Secrets and tokens never reach the logs: the real binary runs at NIGHTLITE_LOG=trace, is
//! sent every credential form, and its whole stdout and stderr must hold none of them. Also
//! the offline `nightlite token` commands against a running server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::{command, sha1hex, sha512hex, Process, Setup};

const SECRET: &str = "redaction-secret-8642";
const WRONG: &str = "redaction-wrong-1357";

/// The binary with only the given environment (nothing inherited).
fn nightlite(data_dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut c = command();
    c.env("API_SECRET", SECRET)
        .env("NIGHTLITE_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .envs(vars.iter().copied());
    c
}

/// A nightlite child process logging at trace level; killed on drop.
struct Server(Process);

impl Server {
    fn start(data_dir: &Path) -> Server {
        Server(
            Setup::new()
                .env("API_SECRET", SECRET)
                .env("NO_COLOR", "1")
                .env("NIGHTLITE_LOG", "trace")
                .env("AUTH_FAIL_DELAY", "0")
                .data_dir(data_dir)
                .spawn(),
        )
    }

    /// Kills the process and returns everything it wrote.
    fn stop(self) -> String {
        self.0.stop()
    }

    /// Any request; returns (status, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, String) {
        let r = self.0.request_json(method, path, headers, body);
        (r.status, r.text)
    }

    fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> String {
        let (got, text) = self.call(method, path, headers, body);
        assert_eq!(got, status, "{method} {path}: {text}");
        text
    }

    /// Creates a subject with the admin secret; returns its access token from the listing.
    fn subject(&self, name: &str, roles: &[&str]) -> String {
        self.0.create_subject(name, roles).1
    }
}

/// The log without ANSI escapes, lower-cased for a case-insensitive search.
fn normalized(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[track_caller]
fn assert_absent(log: &str, needles: &[(&str, String)]) {
    let log = normalized(log);
    let leaks: Vec<String> = needles
        .iter()
        .filter(|(_, n)| log.contains(&n.to_lowercase()))
        .map(|(what, n)| {
            let at = log.find(&n.to_lowercase()).unwrap();
            let from = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = log[at..].find('\n').map_or(log.len(), |i| at + i);
            format!("{what} ({n}) in: {}", &log[from..to])
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "leaked into the log:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn no_secret_or_token_reaches_the_log_at_trace_level() {
    let data = tempfile::tempdir().unwrap();
    let s = Server::start(data.path());
    let sha1 = sha1hex(SECRET);
    let sha512 = sha512hex(SECRET);
    let wrong = sha1hex(WRONG);
    let entries = "/api/v1/entries.json";
    let note = |text: &str| json!({ "eventType": "Note", "notes": text });

    // The API secret: header (both digests, any case), query, body (object and array).
    s.expect(200, "GET", entries, &[("api-secret", &sha1)], None);
    s.expect(
        200,
        "GET",
        entries,
        &[("api-secret", &sha1.to_uppercase())],
        None,
    );
    s.expect(200, "GET", entries, &[("api-secret", &sha512)], None);
    s.expect(200, "GET", &format!("{entries}?secret={sha1}"), &[], None);
    let mut body = note("body secret");
    body["secret"] = json!(sha1);
    s.expect(200, "POST", "/api/v1/treatments", &[], Some(&body));
    let mut first = note("array body secret");
    first["secret"] = json!(sha1);
    s.expect(
        200,
        "POST",
        "/api/v1/treatments",
        &[],
        Some(&json!([first])),
    );
    // Not JSON, with the secret in the query: a 400.
    let (status, _) = s.call(
        "POST",
        &format!("/api/v1/entries?secret={sha1}"),
        &[("Content-Type", "application/json")],
        None,
    );
    assert!((400..500).contains(&status), "{status}");

    // Wrong credentials are logged as failures, without the credential.
    s.expect(401, "GET", entries, &[("api-secret", &wrong)], None);
    s.expect(401, "GET", &format!("{entries}?secret={wrong}"), &[], None);

    // An access token: query, body, api-secret with its SHA-1, and a JWT for it.
    let token = s.subject("Log Watcher", &["readable", "careportal"]);
    let token_sha1 = sha1hex(&token);
    s.expect(200, "GET", &format!("{entries}?token={token}"), &[], None);
    let mut body = note("body token");
    body["token"] = json!(token);
    s.expect(200, "POST", "/api/v1/treatments", &[], Some(&body));
    s.expect(200, "GET", entries, &[("api-secret", &token_sha1)], None);
    let status: Value = serde_json::from_str(&s.expect(
        200,
        "GET",
        &format!("/api/v1/status.json?token={token}"),
        &[],
        None,
    ))
    .unwrap();
    let jwt = status["authorized"]["token"]
        .as_str()
        .expect("authorized.token")
        .to_string();
    let bearer = format!("Bearer {jwt}");
    s.expect(200, "GET", entries, &[("Authorization", &bearer)], None);
    s.expect(200, "GET", &format!("{entries}?token={jwt}"), &[], None);
    s.expect(
        200,
        "GET",
        "/api/v1/verifyauth",
        &[("Authorization", &bearer)],
        None,
    );
    let bad_jwt = format!("{jwt}x");
    s.expect(
        401,
        "GET",
        entries,
        &[("Authorization", &format!("Bearer {bad_jwt}"))],
        None,
    );

    // tconnectsync: the plain secret in ?api_secret=, next to the real credential.
    s.expect(
        200,
        "GET",
        &format!("/api/v1/treatments.json?api_secret={SECRET}"),
        &[("api-secret", &sha1)],
        None,
    );
    s.expect(
        200,
        "POST",
        &format!("/api/v1/treatments?api_secret={SECRET}"),
        &[("api-secret", &sha1)],
        Some(&note("tconnectsync")),
    );
    s.expect(
        401,
        "GET",
        &format!("{entries}?api_secret={SECRET}"),
        &[],
        None,
    );

    let log = s.stop();
    // The log is not empty: trace logging was on and requests were logged.
    assert!(
        log.contains("/api/v1/entries.json") && log.contains("TRACE"),
        "trace logging was not on:\n{log}"
    );
    assert_absent(
        &log,
        &[
            ("plain API secret", SECRET.to_string()),
            ("SHA-1 of the secret", sha1),
            ("SHA-512 of the secret", sha512),
            ("wrong secret's SHA-1", wrong),
            ("access token", token),
            ("SHA-1 of the access token", token_sha1),
            ("JWT", jwt),
        ],
    );
}

/// AndroidAPS and others fetch a JWT with `GET /api/v2/authorization/request/<accessToken>`:
/// the token is in the path, which the debug request line logs.
#[test]
fn access_token_in_the_request_path_is_not_logged() {
    let data = tempfile::tempdir().unwrap();
    let s = Server::start(data.path());
    let token = s.subject("Path Token", &["readable"]);
    let text = s.expect(
        200,
        "GET",
        &format!("/api/v2/authorization/request/{token}"),
        &[],
        None,
    );
    let jwt = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // A JWT is exchanged the same way.
    s.expect(
        200,
        "GET",
        &format!("/api/v2/authorization/request/{jwt}"),
        &[],
        None,
    );
    // Spellings the router or a proxy may fold into the same route (each answered as it is;
    // none may log the token).
    for path in [
        format!("/api/v2/authorization//request/{token}"),
        format!("/api/v2/authorization/reques%74/{token}"),
        format!("/api/v2/authorization/request%2F{token}"),
        format!("//api/v2/authorization/./request/{token}"),
    ] {
        s.call("GET", &path, &[], None);
    }
    let log = s.stop();
    assert!(log.contains("TRACE"), "trace logging was not on:\n{log}");
    assert_absent(&log, &[("access token", token), ("JWT", jwt)]);
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run nightlite")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `nightlite token create/list/revoke` work offline on the data dir, and a running server
/// picks up a token created meanwhile.
#[test]
fn token_cli_creates_lists_and_revokes() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    // The offline commands work on the server's database, so one must exist.
    Server::start(dir).stop();
    let create = |name: &str, role: &str| {
        let o = run(nightlite(dir, &[]).args(["token", "create", "--name", name, "--role", role]));
        assert!(o.status.success(), "{o:?}");
        stdout(&o).trim().to_string()
    };
    let follower = create("Follower Phone", "readable");
    let (abbrev, digest) = follower.rsplit_once('-').expect("name-digest");
    assert_eq!(abbrev, "followerph", "{follower}");
    assert!(
        digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{follower}"
    );
    let gone = create("Old Phone", "readable");

    let o =
        run(nightlite(dir, &[]).args(["token", "create", "--name", "X", "--role", "nosuchrole"]));
    assert!(!o.status.success(), "unknown role accepted: {o:?}");

    let o = run(nightlite(dir, &[]).args(["token", "revoke", "Old Phone"]));
    assert!(o.status.success(), "{o:?}");
    let o = run(nightlite(dir, &[]).args(["token", "revoke", "Nobody"]));
    assert!(!o.status.success(), "revoking nobody succeeded: {o:?}");

    let o = run(nightlite(dir, &[]).args(["token", "list"]));
    assert!(o.status.success(), "{o:?}");
    let listed = stdout(&o);
    assert!(
        listed.contains(&format!("Follower Phone\treadable\t{follower}")),
        "{listed}"
    );
    assert!(!listed.contains(&gone), "{listed}");

    // The token format is Nightscout's, from the _id the server lists.
    let s = Server::start(dir);
    let admin = sha1hex(SECRET);
    let subjects: Value = serde_json::from_str(&s.expect(
        200,
        "GET",
        "/api/v2/authorization/subjects",
        &[("api-secret", &admin)],
        None,
    ))
    .unwrap();
    let subject = subjects
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Follower Phone")
        .expect("listed");
    let id = subject["_id"].as_str().unwrap();
    assert_eq!(
        follower,
        format!("followerph-{}", &sha1hex(&format!("{admin}{id}"))[..16])
    );

    let entries = "/api/v1/entries.json";
    s.expect(
        200,
        "GET",
        &format!("{entries}?token={follower}"),
        &[],
        None,
    );
    s.expect(401, "GET", &format!("{entries}?token={gone}"), &[], None);

    // Created while the server runs: found on first use (the cache reloads on a miss).
    let late = create("Late Phone", "readable");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, text) = s.call("GET", &format!("{entries}?token={late}"), &[], None);
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "late token refused: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.stop();
}

/// Run without the server's API_SECRET, the token commands neither make a secret of their own
/// nor use an old one left in the data directory: either would print tokens the server rejects.
#[test]
fn token_cli_uses_the_servers_secret_or_refuses() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let s = Server::start(dir);
    let create = |cmd: &mut Command| {
        run(cmd.args(["token", "create", "--name", "Phone", "--role", "readable"]))
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let o = create(nightlite(dir, &[]).env_remove("API_SECRET"));
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("no API secret"), "{}", stderr(&o));
    assert!(!dir.join("api_secret").exists(), "a secret was generated");

    let old = "an-old-unused-secret-42";
    std::fs::write(dir.join("api_secret"), format!("{old}\n")).unwrap();
    let o = create(nightlite(dir, &[]).env_remove("API_SECRET"));
    assert!(!o.status.success(), "{o:?}");
    let err = stderr(&o);
    assert!(
        err.contains(&dir.join("api_secret").display().to_string())
            && err.contains("API_SECRET in the environment"),
        "{err}"
    );
    assert!(stdout(&o).trim().is_empty(), "{o:?}");
    assert!(!err.contains(old) && !err.contains(SECRET), "{err}");

    let o = create(&mut nightlite(dir, &[]));
    assert!(o.status.success(), "{o:?}");
    let token = stdout(&o).trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, text) = s.call(
            "GET",
            &format!("/api/v1/entries.json?token={token}"),
            &[],
            None,
        );
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "token refused: {status} {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.stop();
}
