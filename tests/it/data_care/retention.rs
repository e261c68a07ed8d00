//! Retention, a full disk, compaction.

use super::*;

#[test]
fn retention_removes_old_device_statuses_and_keeps_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let status = |days_ago: i64, tag: &str| {
        json!({"device": "loop://phone", "created_at": nightlite::dates::to_iso(now - days_ago * DAY),
               "tag": tag})
    };
    {
        let s = TestServer::in_dir(dir.path(), &[("DEVICESTATUS_RETENTION_DAYS", "0")]);
        for (days, tag) in [
            (100, "old"),
            (31, "older than 30"),
            (29, "recent"),
            (0, "now"),
        ] {
            let r = s.post_json("/api/v1/devicestatus", &status(days, tag));
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let r = s.post_json(
            "/api/v1/treatments",
            &json!({"eventType": "Note", "created_at": nightlite::dates::to_iso(now - 100 * DAY)}),
        );
        assert_eq!(r.status, 200);
    }
    let s = TestServer::in_dir(dir.path(), &[("DEVICESTATUS_RETENTION_DAYS", "30")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let tags = loop {
        let list = s
            .get_auth("/api/v1/devicestatus.json?count=100&find[created_at][$gte]=2000-01-01")
            .json();
        let tags: HashSet<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["tag"].as_str().unwrap().to_string())
            .collect();
        if tags.len() == 2 {
            break tags;
        }
        assert!(Instant::now() < deadline, "retention did not run: {tags:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(tags, HashSet::from(["recent".into(), "now".into()]));
    // Treatments have no retention by default.
    let t = s.get_auth("/api/v1/treatments.json?find[created_at][$gte]=2000-01-01");
    assert_eq!(t.json().as_array().unwrap().len(), 1);
}

#[test]
fn a_nearly_full_disk_refuses_writes_and_keeps_reads_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    {
        let s = TestServer::in_dir(dir.path(), &[]);
        let r = s.post_json(
            "/api/v1/entries",
            &json!([sgv(t, 100), sgv(t - 300_000, 101)]),
        );
        assert_eq!(r.status, 200);
    }
    let s = TestServer::in_dir(dir.path(), &[("NIGHTLITE_TEST_DISK_FREE_BYTES", "1000")]);
    let r = s.post_json("/api/v1/entries", &sgv(t + 300_000, 102));
    assert_eq!(r.status, 507, "{}", r.text);
    let body = r.json();
    assert_eq!(body["status"], 507);
    assert!(
        body["message"].as_str().unwrap().contains("nearly full"),
        "{body}"
    );
    let r = s.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "created_at": nightlite::dates::to_iso(t)}),
    );
    assert_eq!(r.status, 507);

    let list = s.get_auth("/api/v1/entries.json").json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let status = s.get_auth("/api/v1/status.json").json();
    assert_eq!(status["diskFree"], 1000);
    assert!(status["dbsize"].as_u64().unwrap() > 0);

    let id = list[0]["_id"].as_str().unwrap();
    let r = s.request_auth_json("DELETE", &format!("/api/v1/entries/{id}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        s.get_auth("/api/v1/entries.json")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn restore_refuses_a_database_missing_tables_or_columns_and_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms();
    {
        let s = TestServer::in_dir(&data, &[]);
        assert_eq!(s.post_json("/api/v1/entries", &sgv(t, 120)).status, 200);
    }
    let good = dir.path().join("good.sqlite3");
    let out = nightlite(&data, &["backup", "--to", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (name, damage, why) in [
        (
            "no-subjects",
            "DROP TABLE auth_subjects",
            "no 'auth_subjects' table",
        ),
        (
            "gutted-entries",
            "DROP TABLE entries; CREATE TABLE entries (id TEXT PRIMARY KEY, doc TEXT)",
            "'entries' table lacks the column(s)",
        ),
    ] {
        let file = dir.path().join(format!("{name}.sqlite3"));
        std::fs::copy(&good, &file).unwrap();
        Connection::open(&file)
            .unwrap()
            .execute_batch(damage)
            .unwrap();
        let out = nightlite(&data, &["restore", file.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was restored");
        assert!(
            stderr(&out).contains("not a nightlite database"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
        assert!(
            !data.join("nightlite.sqlite3.bak").exists(),
            "{name}: nothing replaced"
        );
        assert_eq!(
            entry_dates(&data.join("nightlite.sqlite3")),
            HashSet::from([t])
        );
    }
}

/// A JWT of a new admin subject, for API v3.
fn v3_admin_jwt(s: &TestServer) -> String {
    let (_, token) = s.create_subject("v3 admin", &["admin"]);
    s.jwt_for(&token)
}

#[test]
fn a_disk_that_fills_during_concurrent_writes_answers_each_write_as_it_is_stored() {
    let Some(disk) = SmallDisk::mount("3m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); \
             store::writer's unit test covers the logic with max_page_count"
        );
        return;
    };
    let data = disk.path().join("data");
    // The reserve check would refuse every write on a 3 MB disk: let SQLite meet the full disk.
    let s = Arc::new(TestServer::in_dir(
        &data,
        &[("NIGHTLITE_TEST_DISK_FREE_BYTES", "1000000000000")],
    ));
    let jwt = v3_admin_jwt(&s);
    let answers: Arc<Mutex<Vec<(i64, u16, String)>>> = Arc::default();
    let base = now_ms() - DAY;
    // Three v1 uploaders, one document a request; a v3 uploader, batches of two (each item in
    // a savepoint of its own within the request's write).
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (s, answers, jwt) = (s.clone(), answers.clone(), jwt.clone());
            std::thread::spawn(move || {
                let mut refused = 0;
                let mut i = 0;
                // Until the disk has been full for a while (or a bound, should it never fill).
                while refused < 40 && i < 4000 {
                    let dates = [base + i * 1000 + w, base + (i + 4) * 1000 + w];
                    let docs: Vec<Value> = dates
                        .iter()
                        .map(|d| {
                            let mut doc = sgv(*d, 100);
                            doc["note"] = json!("x".repeat(6000));
                            doc["app"] = json!("fill");
                            doc["utcOffset"] = json!(0);
                            doc
                        })
                        .collect();
                    if w < 3 {
                        let r = s.post_json("/api/v1/entries", &json!([docs[0]]));
                        refused += usize::from(r.status != 200);
                        answers.lock().unwrap().push((dates[0], r.status, r.text));
                        i += 4;
                        continue;
                    }
                    let bearer = format!("Bearer {jwt}");
                    let r = s.request_auth_json(
                        "POST",
                        "/api/v3/entries",
                        &[("Authorization", &bearer)],
                        Some(&json!(docs)),
                    );
                    let mut got = answers.lock().unwrap();
                    if r.status == 207 {
                        let items = r.json()["result"].as_array().unwrap().clone();
                        for (d, item) in dates.iter().zip(items) {
                            // A created item is a 200 for the check below.
                            let st = match item["status"].as_u64().unwrap() {
                                201 => 200,
                                other => u16::try_from(other).unwrap(),
                            };
                            refused += usize::from(st != 200);
                            got.push((*d, st, item.to_string()));
                        }
                    } else {
                        refused += 1;
                        for d in dates {
                            got.push((d, r.status, r.text.clone()));
                        }
                    }
                    i += 8;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for a in &answers {
        *counts.entry(a.1).or_default() += 1;
    }
    eprintln!("answers by status: {counts:?}");
    assert!(
        answers.iter().any(|a| a.1 != 200),
        "the disk never filled ({} writes)",
        answers.len()
    );
    let s = Arc::into_inner(s).expect("writers are done");
    drop(s);
    let stored = entry_dates(&data.join("nightlite.sqlite3"));
    for (date, status, body) in &answers {
        match status {
            200 => assert!(stored.contains(date), "answered 200 but not stored: {date}"),
            507 => assert!(
                !stored.contains(date),
                "answered 507 but stored: {date}: {body}"
            ),
            other => panic!(
                "{other} for {date} (stored: {}): {body}",
                stored.contains(date)
            ),
        }
    }
    assert!(answers.iter().any(|a| a.1 == 200));
}

/// Deleting through the API only marks documents; `nightlite compact` is what gives the disk
/// its space back.
#[test]
fn compact_removes_documents_deleted_through_the_api_and_shrinks_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms() - DAY;
    let db = data.join("nightlite.sqlite3");
    let wal = data.join("nightlite.sqlite3-wal");
    let on_disk = || {
        std::fs::metadata(&db).map_or(0, |m| m.len())
            + std::fs::metadata(&wal).map_or(0, |m| m.len())
    };
    let s = TestServer::in_dir(&data, &[]);
    for chunk in 0..6 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                let mut e = sgv(t + n * 1000, if n < 500 { 100 } else { 200 });
                e["pad"] = json!("x".repeat(4000));
                e
            })
            .collect();
        assert_eq!(s.post_json("/api/v1/entries", &json!(batch)).status, 200);
    }
    let r = s.request_auth_json(
        "DELETE",
        "/api/v1/entries?find[sgv][$lt]=150&find[date][$gte]=0",
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // srvModified is strictly increasing, so a burst of writes is stamped ahead of the clock
    // (a millisecond a document), and compact's cutoff is the clock: wait until it has passed
    // the last stamp, or the newest deletions are not "older than 0 days" yet.
    let bearer = format!("Bearer {}", v3_admin_jwt(&s));
    let last = s
        .request(
            "GET",
            "/api/v3/lastModified",
            &[("Authorization", &bearer)],
            None,
        )
        .json()["result"]["collections"]["entries"]
        .as_i64()
        .unwrap();
    while now_ms() <= last {
        std::thread::sleep(Duration::from_millis(10));
    }
    let size_before = on_disk();
    // A running server holds the data directory.
    let out = nightlite(&data, &["compact", "--older-than-days", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("server is running"),
        "{}",
        stderr(&out)
    );
    drop(s);
    let stopped = on_disk();
    assert!(stopped > 2_000_000, "{stopped}");

    let out = nightlite(&data, &["compact", "--older-than-days", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed 500 entries"),
        "{}",
        stderr(&out)
    );
    let after = on_disk();
    assert!(
        after * 3 < stopped,
        "{size_before} (running) / {stopped} (stopped) → {after} bytes"
    );
    let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let deleted: i64 = c
        .query_row("SELECT count(*) FROM entries WHERE is_valid = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(deleted, 0);
    drop(c);
    let live = entry_dates(&db);
    assert_eq!(live.len(), 100);
    assert!(live.iter().all(|d| *d >= t + 500_000));
    let s = TestServer::in_dir(&data, &[]);
    assert_eq!(
        s.get_auth("/api/v1/entries.json?count=1000")
            .json()
            .as_array()
            .unwrap()
            .len(),
        100
    );
}

/// A small tmpfs mounted for one test, unmounted when dropped; None where mounting is not
/// allowed (not root, or a container without the privilege).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
