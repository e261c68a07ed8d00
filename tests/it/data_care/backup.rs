//! Backups during writes, and restore.

use super::*;

#[test]
fn backup_during_writes_holds_every_acknowledged_document() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Arc::new(TestServer::in_dir(&data, &[]));
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let base = now_ms() - DAY;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (s, acked, stop) = (s.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 5000 {
                    let date = base + i * 1000 + w;
                    let r = s.post_json("/api/v1/entries", &json!([sgv(date, 100 + i % 50)]));
                    assert_eq!(r.status, 200, "{}", r.text);
                    acked.lock().unwrap().push(date);
                    i += 2;
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "writers too slow");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // In this process, as the server's scheduled backups do.
    wait_for(50);
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let config = nightlite::Config::from_map(&HashMap::from([(
        "NIGHTLITE_DATA_DIR".to_string(),
        data.display().to_string(),
    )]))
    .unwrap();
    let (file, bytes) = nightlite::care::backup_now(&config, None).unwrap();
    assert!(bytes > 0);
    assert!(file.starts_with(data.join("backups")));
    let copied = entry_dates(&file);
    let missing: Vec<_> = before.iter().filter(|d| !copied.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the backup: {missing:?}"
    );

    // Through the command line, in another process, while the writes go on.
    wait_for(before.len() + 50);
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let dest = dir.path().join("cli.sqlite3");
    let out = nightlite(&data, &["backup", "--to", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copied = entry_dates(&dest);
    let missing: Vec<_> = before.iter().filter(|d| !copied.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the backup: {missing:?}"
    );
    // A missing folder (an unmounted drive) is refused, not created.
    let unmounted = dir.path().join("usb");
    let out = nightlite(
        &data,
        &[
            "backup",
            "--to",
            unmounted.join("x.sqlite3").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));
    assert!(!unmounted.exists());
    // An existing file is not overwritten.
    let out = nightlite(&data, &["backup", "--to", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn restore_refuses_damaged_files_and_a_running_server_then_replaces_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms();
    let s = TestServer::in_dir(&data, &[]);
    for i in 0..200 {
        assert_eq!(
            s.post_json("/api/v1/entries", &sgv(t - i * 60_000, 110))
                .status,
            200
        );
    }
    let good = dir.path().join("good.sqlite3");
    let out = nightlite(&data, &["backup", "--to", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Damaged: every page after the first (which holds the schema) has its header overwritten.
    let mut bytes = std::fs::read(&good).unwrap();
    let page = 4096;
    assert!(
        bytes.len() > 4 * page,
        "backup too small to damage: {}",
        bytes.len()
    );
    for start in (page..bytes.len()).step_by(page) {
        bytes[start..start + 64].fill(0xA5);
    }
    let damaged = dir.path().join("damaged.sqlite3");
    std::fs::write(&damaged, &bytes).unwrap();
    let not_db = dir.path().join("notes.txt");
    std::fs::write(&not_db, "not a database, just some words ".repeat(200)).unwrap();

    // A running server holds the data directory.
    let out = nightlite(&data, &["restore", good.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("server is running"),
        "{}",
        stderr(&out)
    );

    s.post_json("/api/v1/entries", &sgv(t + 60_000, 222));
    drop(s);

    let out = nightlite(&data, &["restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let out = nightlite(&data, &["restore", not_db.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a SQLite database"),
        "{}",
        stderr(&out)
    );
    // Refusals changed nothing.
    let db = data.join("nightlite.sqlite3");
    assert_eq!(entry_dates(&db).len(), 201);

    let out = nightlite(&data, &["restore", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("200 entries"), "{}", stderr(&out));
    assert_eq!(entry_dates(&data.join("nightlite.sqlite3.bak")).len(), 201);

    let s = TestServer::in_dir(&data, &[]);
    let entries = s.get_auth("/api/v1/entries.json?count=1000").json();
    assert_eq!(entries.as_array().unwrap().len(), 200);
    assert!(entries.as_array().unwrap().iter().all(|e| e["sgv"] == 110));
}

/// The admin page's list: the settings and the server's backup files, newest first, other
/// files left out; admins only.
#[test]
fn backups_are_listed_for_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = TestServer::in_dir(
        &data,
        &[("BACKUP_INTERVAL_HOURS", "6"), ("BACKUP_KEEP", "3")],
    );
    let r = s.get_auth("/api/v1/backups");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"intervalHours": 6, "keep": 3, "backups": []})
    );
    let backups = data.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::write(backups.join("nightlite-20260102T030405Z.sqlite3"), b"older").unwrap();
    std::fs::write(
        backups.join("nightlite-20260103T030405Z.sqlite3"),
        b"newer!",
    )
    .unwrap();
    std::fs::write(backups.join("notes.txt"), b"mine").unwrap();
    let r = s.get_auth("/api/v2/backups");
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.json()["backups"].clone();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("nightlite-20260103T030405Z.sqlite3".to_string(), 6),
            ("nightlite-20260102T030405Z.sqlite3".to_string(), 5)
        ]
    );
    assert!(list[0]["date"].as_i64().unwrap() > 0);
    // A visitor (readable by default) does not see them.
    assert_eq!(s.get("/api/v1/backups").status, 401);
}
