//! The `nightlite` binary: offline commands, settings checked at start-up, the banner, file
//! modes, SIGUSR1.

use super::*;

/// The binary run in `cwd` with only these variables.
fn nightlite_in(cwd: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    command()
        .args(args)
        .env("NIGHTLITE_LOG", "warn")
        .current_dir(cwd)
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

/// A backup file of a database holding one entry.
fn one_entry_backup(dir: &Path) -> PathBuf {
    let data = dir.join("source-data");
    let s = TestServer::in_dir(&data, &[]);
    assert_eq!(
        s.post_json("/api/v1/entries", &sgv(now_ms(), 123)).status,
        200
    );
    drop(s);
    let file = dir.join("one.sqlite3");
    let out = nightlite(&data, &["backup", "--to", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    file
}

#[test]
fn offline_commands_refuse_a_data_directory_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_entry_backup(dir.path());
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let named = dir.path().join("typo-data");
    let named_str = named.display().to_string();
    let file_str = file.display().to_string();
    let commands: [&[&str]; 5] = [
        &["token", "list"],
        &["token", "create", "--name", "x", "--role", "readable"],
        &["token", "revoke", "x"],
        &["backup"],
        &["restore", &file_str],
    ];
    for args in commands {
        // In the wrong folder, with the default ./nightlite-data.
        let out = nightlite_in(&cwd, &[("API_SECRET", SECRET)], args);
        assert!(!out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no nightlite database in ./nightlite-data"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "{args:?}");
    }
    // A named data directory without a database: the token commands and backup refuse it.
    for args in &commands[..4] {
        let vars = [
            ("API_SECRET", SECRET),
            ("NIGHTLITE_DATA_DIR", named_str.as_str()),
        ];
        let out = nightlite_in(&cwd, &vars, args);
        assert!(!out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no nightlite database"),
            "{}",
            stderr(&out)
        );
        assert!(!named.exists(), "{args:?} created {}", named.display());
    }
    // Restore may create one there: recovery onto a new machine.
    let out = nightlite_in(
        &cwd,
        &[("NIGHTLITE_DATA_DIR", &named_str)],
        &["restore", &file_str],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 entries"), "{}", stderr(&out));
    assert_eq!(entry_dates(&named.join("nightlite.sqlite3")).len(), 1);
}

/// Settings that are accepted but wrong stop `serve` with exit status 2 and the setting's name,
/// before it creates anything.
#[test]
fn values_accepted_but_wrong_stop_start_up_with_the_settings_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let data_str = data.display().to_string();
    // mmol/l thresholds under the default mg/dl units rise in order, so only their size
    // tells them apart (every reading would be urgent high).
    let mmol = [
        ("BG_HIGH", "14"),
        ("BG_TARGET_TOP", "10"),
        ("BG_TARGET_BOTTOM", "4"),
        ("BG_LOW", "3"),
    ];
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("AUTH_DEFAULT_ROLES", &[("AUTH_DEFAULT_ROLES", "readible")]),
        ("BG_HIGH", &mmol),
        ("NIGHTLITE_LOG", &[("NIGHTLITE_LOG", "verbose")]),
    ];
    for (name, vars) in cases {
        let mut child = command()
            .arg("serve")
            .envs([
                ("NIGHTLITE_DATA_DIR", data_str.as_str()),
                ("API_SECRET", SECRET),
                ("PORT", &port),
                ("HOSTNAME", "127.0.0.1"),
            ])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(!running, "{vars:?}: the server started");
        assert_eq!(out.status.code(), Some(2), "{vars:?}");
        assert!(
            stderr(&out).starts_with(&format!("nightlite: {name}:")),
            "{vars:?}: {}",
            stderr(&out)
        );
        assert!(!data.exists(), "{vars:?} created the data directory");
    }
}

/// Nightscout settings move over unchanged: a name nightlite does not read, in the TOML file
/// or the environment, is named once in a warning and does not stop it.
#[test]
fn names_nightlite_does_not_read_are_warned_about_once_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("nightlite.toml");
    std::fs::write(
        &toml,
        "PORT = 1\nSHOW_PLUGINS = \"careportal basal\"\nPUSHOVER_API_TOKEN = \"x\"\n",
    )
    .unwrap();
    let data = dir.path().display().to_string();
    let vars = [
        ("NIGHTLITE_DATA_DIR", data.as_str()),
        ("HOSTNAME", "127.0.0.1"),
        ("MONGODB_URI", "mongodb://localhost/ns"),
        ("SHOW_PLUGINS", "careportal"),
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/nonexistent"),
    ];
    let out = nightlite_in(
        dir.path(),
        &vars,
        &["--config", toml.to_str().unwrap(), "healthcheck"],
    );
    let err = stderr(&out);
    // 1: nobody answers on port 1; 2 would be a refused setting.
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (name, place) in [
        ("SHOW_PLUGINS", toml.display().to_string()),
        ("PUSHOVER_API_TOKEN", toml.display().to_string()),
        ("MONGODB_URI", "the environment".to_string()),
    ] {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        assert!(
            lines[0].contains(&place) && lines[0].contains("ignored"),
            "{err}"
        );
    }
    assert!(!err.contains("PATH") && !err.contains("HOME"), "{err}");
    assert!(!err.contains("mongodb://"), "values are not logged: {err}");
}

/// The `nightlite` binary serving `data` with the test secret; returns once it answers.
fn spawn_server(data: &Path) -> Process {
    Setup::bare()
        .env("API_SECRET", SECRET)
        .data_dir(data)
        .spawn()
}

/// What `serve` prints on stdout once it is ready (it is stopped afterwards).
fn banner_of(vars: &[(&str, &str)], args: &[&str]) -> String {
    let mut p = Setup::bare().envs(vars).args(args).spawn();
    p.kill();
    p.stdout()
}

/// Listening on every interface, the banner gives the addresses phones can use, not only
/// 127.0.0.1, and says that they are redirected to https unless INSECURE_USE_HTTP is on.
#[test]
fn the_banner_lists_lan_addresses_and_the_https_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let vars = [
        ("NIGHTLITE_DATA_DIR", data.as_str()),
        ("API_SECRET", SECRET),
        ("HOSTNAME", "0.0.0.0"),
    ];
    let banner = banner_of(&vars, &[]);
    let port = banner
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{banner}"));
    let lan: Vec<std::net::IpAddr> = banner
        .lines()
        .filter(|l| l.contains("from phones and other machines"))
        .filter_map(|l| l.split("http://").nth(1)?.split(':').next()?.parse().ok())
        .collect();
    // The address this machine would reach the network from (no packet is sent).
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    if let Some(primary) = udp
        .connect("192.0.2.1:9")
        .ok()
        .and_then(|()| udp.local_addr().ok())
    {
        let reachable = match primary.ip() {
            std::net::IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local()),
            std::net::IpAddr::V6(_) => false,
        };
        if reachable {
            assert_eq!(lan.first(), Some(&primary.ip()), "{banner}");
        }
    }
    assert!(
        banner.contains("from phones and other machines") && lan.iter().all(|ip| !ip.is_loopback()),
        "{banner}"
    );
    assert!(
        lan.is_empty() || banner.contains(&format!("http://{}:{port}/", lan[0])),
        "{banner}"
    );
    assert!(
        banner.contains("redirected to https://") && banner.contains("INSECURE_USE_HTTP=true"),
        "{banner}"
    );

    let insecure = [vars[0], vars[1], vars[2], ("INSECURE_USE_HTTP", "true")];
    let banner = banner_of(&insecure, &[]);
    assert!(
        banner.contains("from phones and other machines"),
        "{banner}"
    );
    assert!(!banner.contains("redirected"), "{banner}");

    // On loopback only, nobody else can connect: no addresses, no redirect note.
    let local = [vars[0], vars[1], ("HOSTNAME", "127.0.0.1")];
    let banner = banner_of(&local, &[]);
    assert!(!banner.contains("other machines"), "{banner}");
}

/// With API_SECRET in the TOML file, the banner says so, and not that the secret is in
/// `<data dir>/api_secret` (which holds an old one here); neither secret is printed.
#[test]
fn the_banner_says_where_the_secret_in_force_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let old = "an-old-unused-secret-7";
    std::fs::write(data.join("api_secret"), format!("{old}\n")).unwrap();
    let toml = dir.path().join("nightlite.toml");
    std::fs::write(&toml, format!("API_SECRET = \"{SECRET}\"\n")).unwrap();
    let data_str = data.display().to_string();
    let banner = banner_of(
        &[("NIGHTLITE_DATA_DIR", &data_str)],
        &["--config", toml.to_str().unwrap()],
    );
    let line = banner
        .lines()
        .find(|l| l.starts_with("admin API secret"))
        .unwrap_or_else(|| panic!("{banner}"));
    assert!(
        line.contains(&format!("API_SECRET in {}", toml.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "{} is not used",
            data.join("api_secret").display()
        )),
        "{banner}"
    );
    assert!(
        !banner.contains(SECRET) && !banner.contains(old),
        "{banner}"
    );

    // From the environment, it says that.
    std::fs::remove_file(data.join("api_secret")).unwrap();
    let banner = banner_of(
        &[("NIGHTLITE_DATA_DIR", &data_str), ("API_SECRET", SECRET)],
        &[],
    );
    assert!(
        banner.contains("admin API secret: from API_SECRET in the environment"),
        "{banner}"
    );
    assert!(!banner.contains(SECRET), "{banner}");
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory, database, WAL and backups are the owner's only, whatever the umask of
/// the shell that started nightlite (0022 here, which made them 0644 / 0755).
#[test]
fn the_database_its_wal_and_backups_are_private_to_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = spawn_server(&data);
    let r = server.post_json("/api/v1/entries", &sgv(now_ms(), 140));
    assert_eq!(r.status, 200);
    let to = dir.path().join("copy.sqlite3");
    let out = nightlite(&data, &["backup", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = nightlite(&data, &["backup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let in_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());

    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("backups")), 0o700, "backups directory");
    for f in [
        data.join("nightlite.sqlite3"),
        data.join("nightlite.sqlite3-wal"),
        data.join("nightlite.sqlite3-shm"),
        to,
        in_dir,
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(server);
}

#[test]
fn sigusr1_makes_a_backup_of_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = spawn_server(&data);
    let date = now_ms();
    let r = server.post_json("/api/v1/entries", &sgv(date, 140));
    assert_eq!(r.status, 200);

    let killed = Command::new("kill")
        .args(["-USR1", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let backups = data.join("backups");
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        let found = std::fs::read_dir(&backups).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "sqlite3"))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no backup after SIGUSR1");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(entry_dates(&file).contains(&date));
    // The signal did not stop the server.
    assert!(server.child.try_wait().unwrap().is_none());
    assert_eq!(server.get("/api/versions").status, 200);
    server.kill();
}
