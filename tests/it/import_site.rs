//! `nightlite import --from URL` (docs/import.md): a second nightlite on loopback is the old
//! site; the real binary copies it into a data directory, read back through the API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::data_care::stderr;
use crate::support::{command, Http, TestServer, SECRET};

/// Device statuses are kept 60 days by default; these are older.
const KEEP: &[(&str, &str)] = &[("DEVICESTATUS_RETENTION_DAYS", "0")];
const DAY: i64 = 86_400_000;
/// 2024-03-01T00:00:00Z: all of it far older than v1's 4-day default window.
const T0: i64 = 1_709_251_200_000;

fn id(kind: u64, i: u64) -> String {
    format!("{:08x}{:016x}", 0x5f00_0000 + kind, i)
}

fn iso(ms: i64) -> String {
    nightlite::dates::to_iso(ms)
}

fn post_all(http: &Http, path: &str, docs: Vec<Value>) {
    for chunk in docs.chunks(500) {
        http.post_ok(path, &Value::Array(chunk.to_vec()));
    }
}

/// Thousands of documents over 30 days in each collection, and in entries, treatments,
/// device statuses and profiles more documents sharing one time than a page holds (1000, 500,
/// 200, 20).
fn fill(http: &Http) {
    let mut entries: Vec<Value> = (0..2500)
        .map(|i| {
            let date = T0 - i as i64 * 17 * 60_000;
            json!({"_id": id(1, i), "type": "sgv", "sgv": 100 + i % 50, "date": date,
                   "dateString": iso(date), "device": "test", "extra": {"n": i}})
        })
        .collect();
    entries.extend((0..1100u64).map(|i| {
        // One millisecond, told apart by type (an entry is one per date and type).
        json!({"_id": id(2, i), "type": format!("t{i}"), "device": format!("meter {i}"), "mbg": 90, "date": T0 - 10 * DAY,
               "dateString": iso(T0 - 10 * DAY)})
    }));
    post_all(http, "/api/v1/entries", entries);
    let mut treatments: Vec<Value> = (0..1200)
        .map(|i| {
            json!({"_id": id(3, i), "eventType": "Note", "notes": format!("n{i}"),
                   "created_at": iso(T0 - i as i64 * 31 * 60_000)})
        })
        .collect();
    treatments.extend((0..600u64).map(|i| {
        json!({"_id": id(4, i), "eventType": format!("Event {i}"),
               "created_at": iso(T0 - 20 * DAY)})
    }));
    post_all(http, "/api/v1/treatments", treatments);
    let mut statuses: Vec<Value> = (0..700)
        .map(|i| {
            json!({"_id": id(5, i), "device": "loop://phone", "pump": {"reservoir": i},
                   "created_at": iso(T0 - i as i64 * 61 * 60_000)})
        })
        .collect();
    statuses.extend((0..300u64).map(
        |i| json!({"_id": id(6, i), "device": format!("rig{i}"), "created_at": iso(T0 - 25 * DAY)}),
    ));
    post_all(http, "/api/v1/devicestatus", statuses);
    // Profiles go by startDate, 20 a page: 25 share one.
    for i in 0..45u64 {
        let start = if i < 20 {
            T0 - i as i64 * DAY
        } else {
            T0 - 40 * DAY
        };
        let p = json!({"_id": id(7, i), "defaultProfile": "Default", "units": "mg/dl",
                       "startDate": iso(start), "created_at": iso(T0 - i as i64 * 60_000),
                       "store": {"Default": {"dia": 3, "basal": [{"time": "00:00", "value": 0.5}]}}});
        http.post_ok("/api/v1/profile", &p);
    }
    for i in 0..5u64 {
        let f =
            json!({"_id": id(8, i), "type": "food", "name": format!("food {i}"), "carbs": 10 + i});
        let r = http.post_json("/api/v1/food", &f);
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

const LISTS: [(&str, &str); 5] = [
    (
        "entries",
        "/api/v1/entries.json?count=100000&find[date][$gte]=0",
    ),
    (
        "treatments",
        "/api/v1/treatments.json?count=100000&find[created_at][$gte]=1970-01-01",
    ),
    (
        "devicestatus",
        "/api/v1/devicestatus.json?count=100000&find[created_at][$gte]=1970-01-01",
    ),
    ("profile", "/api/v1/profile.json?count=100000"),
    ("food", "/api/v1/food.json"),
];

/// Every document of every collection by `_id`, without what each server sets itself.
fn contents(http: &Http) -> BTreeMap<String, BTreeMap<String, Value>> {
    LISTS
        .iter()
        .map(|(name, path)| {
            let docs = http
                .list(path)
                .into_iter()
                .map(|mut d| {
                    let id = d["_id"].as_str().unwrap().to_string();
                    if let Value::Object(o) = &mut d {
                        o.retain(|k, _| {
                            !["srvModified", "srvCreated", "identifier"].contains(&k.as_str())
                        });
                    }
                    (id, d)
                })
                .collect();
            (name.to_string(), docs)
        })
        .collect()
}

fn from(data: &Path, site: &TestServer, args: &[&str]) -> Output {
    from_with(data, site, args, &[("NIGHTLITE_LOG", "warn")])
}

/// As [`from`] with the log at its most detailed (HTTP requests included), to show no
/// credential reaches it.
fn from_traced(data: &Path, site: &TestServer, args: &[&str]) -> Output {
    from_with(data, site, args, &[("NIGHTLITE_LOG", "trace")])
}

fn from_with(data: &Path, site: &TestServer, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let url = site.http().url("");
    command()
        .args(["import", "--from", url.trim_end_matches('/')])
        .args(args)
        .env("NIGHTLITE_DATA_DIR", data)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

pub(crate) fn assert_clean(out: &Output, secrets: &[&str]) {
    let all = format!("{}{}", stderr(out), String::from_utf8_lossy(&out.stdout));
    for s in secrets {
        assert!(!all.contains(s), "a credential in the output:\n{all}");
    }
}

#[test]
fn a_whole_site_is_copied_with_its_ids_resumes_after_a_stop_and_a_second_import_stores_nothing() {
    let site = TestServer::with(KEEP);
    let http = site.http();
    fill(&http);
    let (_, token) = http.create_subject("importer", &["readable"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Stopped part way, then gone on with (here with the API secret instead of the token).
    let out = from_traced(&data, &site, &["--token", &token, "--stop-after", "1500"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert!(
        err.contains("DEBUG") || err.contains("TRACE"),
        "no log: {err}"
    );
    assert!(data.join("import-progress.json").exists());
    assert_clean(&out, &[&token]);
    // A reading the site receives after the import began: counted neither by the site's
    // count (up to the first page's newest) nor read by this import; the next one reads it.
    let late = json!({"_id": id(9, 0), "type": "sgv", "sgv": 99, "date": T0 + 60_000});
    http.post_ok("/api/v1/entries", &late);
    let out = from(&data, &site, &["--api-secret", SECRET]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_clean(&out, &[SECRET, &nightlite::auth::sha1_hex(SECRET)]);
    for line in [
        "entries: 3600 read, as the site counts",
        "treatments: 1800 read, as the site counts",
        "devicestatus: 1000 read, as the site counts",
        "profile: 45 read (the site does not count these)",
        "food: 5 read (the site does not count these)",
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }
    assert!(!data.join("import-progress.json").exists(), "{err}");
    // It went on from the recorded place: nothing read twice, nothing stored again.
    let entries = err
        .lines()
        .find(|l| l.starts_with("entries: ") && l.contains("inserted"))
        .unwrap();
    let read: u64 = entries["entries: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(read < 3600 - 1000, "{entries}");
    assert!(
        entries.contains(&format!("{read} inserted, 0 updated, 0 unchanged")),
        "{entries}"
    );

    // Again, the token from the environment: the late reading, and nothing else new.
    let out = from_with(&data, &site, &[], &[("IMPORT_TOKEN", &token)]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_clean(&out, &[&token]);
    assert!(
        err.contains("entries: 3601 read, as the site counts"),
        "{err}"
    );
    for name in ["entries", "treatments", "devicestatus", "profile", "food"] {
        let line = format!("{name}: ");
        let counts = err
            .lines()
            .find(|l| l.starts_with(&line) && l.contains("inserted"))
            .unwrap_or_else(|| panic!("no counts for {name}:\n{err}"));
        let new = if name == "entries" { 1 } else { 0 };
        assert!(
            counts.contains(&format!(" {new} inserted, 0 updated,")),
            "{counts}"
        );
    }

    // Everything arrived once, with its `_id` and its fields.
    let copy = TestServer::in_dir(&data, KEEP);
    let want = contents(&http);
    let got = contents(&copy.http());
    for (name, docs) in &want {
        assert_eq!(got[name].len(), docs.len(), "{name}");
        assert_eq!(&got[name], docs, "{name}");
    }
}

#[test]
fn a_refused_token_fails_clearly_without_showing_it() {
    let site = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let token = "importer-0123456789abcdef";
    let out = from_traced(&dir.path().join("data"), &site, &["--token", token]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the access token"), "{err}");
    assert_clean(&out, &[token]);
    let out = from_traced(
        &dir.path().join("data"),
        &site,
        &["--api-secret", "wrong-secret-4567"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the API secret"), "{err}");
    assert_clean(
        &out,
        &[
            "wrong-secret-4567",
            &nightlite::auth::sha1_hex("wrong-secret-4567"),
        ],
    );
}
