//! `nightlite import --from URL` (docs/import.md): a second nightlite on loopback is the old
//! site; the real binary copies it into a data directory, read back through the API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::connect::fake_http::Fake;
use crate::connect::fake_nightscout::{FakeNightscout, Fault};
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
    from_url(data, &site.http().url(""), args, envs)
}

fn from_url(data: &Path, url: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
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

const NS_SECRET: &str = "old-site-secret-0042";
const MIN: i64 = 60_000;

/// A write to the fake site as its clients make them; the answer's body.
fn ns(fake: &FakeNightscout, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = fake.call(method, path, body);
    assert!(
        matches!(status, 200 | 201),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// A Nightscout 15.0.7 as its users left it: most documents written through API v1 (no
/// srvModified; a Loop treatment's UUID `_id` made its identifier, an `_id` of the client's
/// kept), some through API v3 (srvModified, identifier), some deleted through v3 (still listed
/// by v1 with `isValid: false`) and some through v1 (gone). More than a page of entries and
/// of treatments.
fn nightscout_15() -> FakeNightscout {
    let fake = FakeNightscout::start(true);
    fake.api_secret(NS_SECRET);
    let entries: Vec<Value> = (0..1500)
        .map(|i| {
            let d = T0 - i * 5 * MIN;
            json!({"type":"sgv","sgv":100 + i % 50,"date":d,"dateString":iso(d),"device":"xdrip"})
        })
        .collect();
    ns(&fake, "POST", "/api/v1/entries", Value::Array(entries));
    for i in 0..20 {
        let e = json!({"type":"mbg","mbg":90 + i,"date":T0 - i * 7 * MIN - 1000,"app":"aaps",
                       "device":"meter"});
        ns(&fake, "POST", "/api/v3/entries", e);
    }
    let mut treatments: Vec<Value> = (0..700)
        .map(|i| {
            json!({"eventType":"Note","notes":format!("n{i}"),"created_at":iso(T0 - i * 11 * MIN)})
        })
        .collect();
    treatments[3]["_id"] = json!("0f1e2d3c-aaaa-4bbb-8ccc-123456789abc");
    treatments[4]["_id"] = json!("5f00000000000000000000b4");
    ns(
        &fake,
        "POST",
        "/api/v1/treatments",
        Value::Array(treatments),
    );
    for i in 0..50 {
        let t = json!({"eventType":"Correction Bolus","insulin":1,"date":T0 - i * 13 * MIN - 500,
                       "app":"aaps","device":"pump"});
        ns(&fake, "POST", "/api/v3/treatments", t);
    }
    let statuses: Vec<Value> = (0..100)
        .map(|i| json!({"device":"loop://iphone","pump":{"reservoir":i},"created_at":iso(T0 - i * 5 * MIN)}))
        .collect();
    ns(
        &fake,
        "POST",
        "/api/v1/devicestatus",
        Value::Array(statuses),
    );
    for i in 0..10 {
        let d = json!({"device":"aaps","date":T0 - i * 3 * MIN - 700,"app":"aaps","iob":{"iob":i}});
        ns(&fake, "POST", "/api/v3/devicestatus", d);
    }
    for i in 0..2 {
        let p = json!({"defaultProfile":"Default","startDate":iso(T0 - i * DAY),"units":"mg/dl",
                       "store":{"Default":{"dia":3}}});
        ns(&fake, "POST", "/api/v1/profile", p);
    }
    ns(
        &fake,
        "POST",
        "/api/v1/food",
        json!([{"type":"food","name":"apple","carbs":12}]),
    );
    // Deleted through v3 (soft): v3 documents by identifier, v1 ones by `_id`; through v1
    // (hard), by `_id`. (api, collection, written through v3, how many, after how many)
    let deletes = [
        ("v3", "treatments", true, 3, 5),
        ("v3", "treatments", false, 2, 10),
        ("v3", "entries", true, 2, 5),
        ("v1", "treatments", false, 4, 20),
        ("v1", "entries", false, 2, 30),
    ];
    for (api, coll, v3, n, skip) in deletes {
        let docs = fake.docs(coll);
        let of_kind = docs.iter().filter(|d| d.get("srvModified").is_some() == v3);
        for d in of_kind.skip(skip).take(n) {
            let key = if v3 { "identifier" } else { "_id" };
            let path = format!("/api/{api}/{coll}/{}", d[key].as_str().unwrap());
            ns(&fake, "DELETE", &path, Value::Null);
        }
    }
    fake
}

/// The `_id`s of a collection's documents on the site that are not deleted.
fn live_ids(fake: &FakeNightscout, coll: &str) -> BTreeMap<String, Value> {
    fake.docs(coll)
        .into_iter()
        .filter(|d| d.get("isValid") != Some(&json!(false)))
        .map(|d| (d["_id"].as_str().unwrap().to_string(), d))
        .collect()
}

/// The `_id`s of a collection's live documents in the imported database, each once.
fn imported_ids(copy: &Http, coll: &str) -> Vec<String> {
    let path = LISTS.iter().find(|(c, _)| *c == coll).unwrap().1;
    let mut ids: Vec<String> = copy
        .list(path)
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// `<coll>: N read: I inserted, U updated, K unchanged, ...` as (I, U, K).
fn written(err: &str, coll: &str) -> (u64, u64, u64) {
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("{coll}: ")) && l.contains(" inserted, "))
        .unwrap_or_else(|| panic!("no counts for {coll}:\n{err}"));
    let n = |word: &str| -> u64 {
        let before = &line[..line.find(&format!(" {word}")).unwrap()];
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (n("inserted"), n("updated"), n("unchanged"))
}

/// Nightscout 15.0.7 (the fake, tests/it/connect/fake_nightscout): documents written through
/// v1 and v3 are copied with their `_id`s; deleted ones are not (soft, which v1 lists show)
/// or cannot be (hard); the site's counts of treatments and device statuses, which 15.0.7
/// cannot give (its count endpoint applies the entries' date rules), are not held against the
/// import; a site failing part way (an answer cut mid-read, a 500, then a 404 that ends the
/// run) is gone on with, nothing lost and nothing written twice; a document the site deleted
/// after it was imported is deleted by the next import.
#[test]
fn a_nightscout_15_site_is_copied_through_failures_without_its_deleted_documents() {
    let fake = nightscout_15();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = ["--api-secret", NS_SECRET];
    // Entries: the answer to the second request is cut halfway, its retry gets a 500, the
    // next attempt goes through. Treatments: the first page goes through, the second 404s.
    fake.fail_on("/api/v1/entries", 1, 1, Fault::Cut);
    fake.fail_on("/api/v1/entries", 0, 1, Fault::Status(500));
    fake.fail_on("/api/v1/treatments", 2, 1, Fault::Status(404));
    let out = from_url(&data, &fake.url(), &secret, &[]);
    let first = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{first}");
    assert!(first.contains("import failed"), "{first}");
    assert_eq!(fake.faults_left(), 0, "{first}");
    assert!(data.join("import-progress.json").exists());
    assert_clean(&out, &[NS_SECRET, &nightlite::auth::sha1_hex(NS_SECRET)]);

    let out = from_url(&data, &fake.url(), &secret, &[]);
    let second = stderr(&out);
    assert!(out.status.success(), "{second}");
    assert!(!data.join("import-progress.json").exists());
    let entries = live_ids(&fake, "entries").len() as u64;
    // The soft-deleted ones are read (and counted by the site), not imported; the entries
    // were all read by the first run.
    assert!(
        second.contains(&format!(
            "entries: {} read, as the site counts",
            entries + 2
        )),
        "{second}"
    );
    assert!(!second.contains("entries: 1518 read:"), "{second}");
    for coll in ["treatments", "devicestatus"] {
        assert!(
            second.contains(&format!(
                "{coll}: {} read (the site does not count these)",
                fake.docs(coll).len()
            )),
            "{second}"
        );
    }
    // Nothing twice: the second run went on below the first page of treatments, which it
    // neither read again nor wrote again.
    let (t2, u2, k2) = written(&second, "treatments");
    let treatments = live_ids(&fake, "treatments").len() as u64;
    assert!(t2 <= treatments - 400, "{second}");
    assert_eq!((u2, k2), (0, 0), "{second}");

    // Every live document once, with its `_id`; none of the deleted ones.
    let copy = TestServer::in_dir(&data, KEEP);
    let http = copy.http();
    for coll in ["entries", "treatments", "devicestatus", "profile", "food"] {
        let want: Vec<String> = live_ids(&fake, coll).into_keys().collect();
        assert_eq!(imported_ids(&http, coll), want, "{coll}");
    }
    let loop_tt = http.list("/api/v1/treatments.json?find[identifier]=0f1e2d3c-aaaa-4bbb-8ccc-123456789abc&find[created_at][$gte]=2000-01-01");
    assert_eq!(loop_tt.len(), 1, "the UUID is its identifier");
    let kept = http.list("/api/v1/treatments.json?find[_id]=5f00000000000000000000b4");
    assert_eq!(kept.len(), 1, "the client's `_id` is kept");
    drop(copy);

    // The site deletes two imported documents through v3 and one through v1: the next
    // import deletes the first two here; the v1 delete leaves no trace to follow.
    let gone = live_ids(&fake, "treatments");
    let mut gone = gone.values();
    let (a, b, c) = (
        gone.next().unwrap(),
        gone.next().unwrap(),
        gone.next().unwrap(),
    );
    let by = |d: &Value| {
        d["identifier"]
            .as_str()
            .or(d["_id"].as_str())
            .unwrap()
            .to_string()
    };
    ns(
        &fake,
        "DELETE",
        &format!("/api/v3/treatments/{}", by(a)),
        Value::Null,
    );
    ns(
        &fake,
        "DELETE",
        &format!("/api/v3/treatments/{}", by(b)),
        Value::Null,
    );
    ns(
        &fake,
        "DELETE",
        &format!("/api/v1/treatments/{}", c["_id"].as_str().unwrap()),
        Value::Null,
    );
    let out = from_url(&data, &fake.url(), &secret, &[]);
    let third = stderr(&out);
    assert!(out.status.success(), "{third}");
    assert!(third.contains("2 of them deleted here"), "{third}");
    let copy = TestServer::in_dir(&data, KEEP);
    let http = copy.http();
    let (_, token) = http.create_subject("checker", &["readable"]);
    let bearer = format!("Bearer {}", http.jwt_for(&token));
    let v3 = |d: &Value| {
        let path = format!("/api/v3/treatments/{}", d["_id"].as_str().unwrap());
        http.request("GET", &path, &[("Authorization", &bearer)], None)
    };
    for d in [a, b] {
        let r = v3(d);
        assert_eq!(r.status, 410, "deleted here: {}", r.text);
    }
    let r = v3(c);
    assert_eq!(r.status, 200, "{}", r.text);
}
