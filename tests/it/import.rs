//! `nightlite import` (docs/import.md): files as mongoexport and mongodump write them,
//! generated here, imported by the real binary into a data directory, then read back through
//! the API as a client would.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::data_care::{nightlite, stderr};
use crate::support::{gzip, now_ms, TestServer};

fn import(data: &Path, args: &[&str]) -> Output {
    nightlite(data, &[&["import"], args].concat())
}

const E1: &str = "5f1c2a3b4c5d6e7f80910a01";
const E2: &str = "5f1c2a3b4c5d6e7f80910a02";
const T1: &str = "5f1c2a3b4c5d6e7f80910b01";
const T2: &str = "5f1c2a3b4c5d6e7f80910b02";
const D1: &str = "5f1c2a3b4c5d6e7f80910c01";
const P1: &str = "5f1c2a3b4c5d6e7f80910d01";
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200_000;

/// mongoexport's default output (JSON lines, relaxed Extended JSON).
const ENTRIES_RELAXED: &str = r#"{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910a01"},"sgv":120,"date":1704067200000,"dateString":"2024-01-01T00:00:00.000Z","type":"sgv","direction":"Flat","noise":1.0,"delta":-1.5,"device":"xDrip-DexcomG6","sysTime":"2024-01-01T00:00:00.000Z","utcOffset":0,"custom":{"raw":[1,2.5,{"x":"y"}]}}
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910a02"},"sgv":125,"date":1704067500000,"dateString":"2024-01-01T00:05:00.000Z","type":"sgv","direction":"Flat","device":"xDrip-DexcomG6","sysTime":"2024-01-01T00:05:00.000Z","utcOffset":0,"seen":{"$date":"2024-01-01T00:05:10Z"}}
"#;

/// mongoexport --jsonArray --jsonFormat=canonical.
const TREATMENTS_CANONICAL: &str = r#"[
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910b01"},"eventType":"Correction Bolus","created_at":"2024-01-01T00:30:00.000Z","insulin":{"$numberDouble":"1.5"},"enteredBy":"careportal","utcOffset":{"$numberInt":"0"},"mills":{"$numberLong":"1704069000000"},"recorded":{"$date":{"$numberLong":"1704069001000"}}},
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910b02"},"eventType":"Temporary Target","created_at":"2024-01-01T01:00:00.000Z","duration":{"$numberInt":"60"},"targetTop":{"$numberInt":"90"},"targetBottom":{"$numberInt":"80"},"units":"mg/dl","reason":"Eating Soon","enteredBy":"careportal","utcOffset":{"$numberInt":"0"}},
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910b03"},"eventType":"Note","created_at":"2024-01-01T02:00:00.000Z","notes":"deleted through API v3","isValid":false,"utcOffset":{"$numberInt":"0"}}
]"#;

fn devicestatus_bson() -> Vec<u8> {
    use bson::{doc, oid::ObjectId, DateTime};
    let d = doc! {
        "_id": ObjectId::parse_str(D1).unwrap(),
        "device": "openaps://rig",
        "created_at": "2024-01-01T00:05:00.000Z",
        "uploaderBattery": 1.0_f64,
        "pump": {
            "clock": DateTime::from_millis(T0 + 290_000),
            "reservoir": 120.5_f64,
            "battery": {"percent": 80_i32},
        },
        "openaps": {"iob": {"iob": 0.25_f64, "time": "2024-01-01T00:04:50.000Z"}},
    };
    d.to_vec().unwrap()
}

fn profile_bson() -> Vec<u8> {
    use bson::{doc, oid::ObjectId};
    let d = doc! {
        "_id": ObjectId::parse_str(P1).unwrap(),
        "defaultProfile": "Default",
        "startDate": "2024-01-01T00:00:00.000Z",
        "created_at": "2024-01-01T00:00:00.000Z",
        "mills": 1_704_067_200_000_i64,
        "units": "mg/dl",
        "store": {"Default": {
            "dia": 4.0_f64, "timezone": "UTC", "units": "mg/dl",
            "basal": [{"time": "00:00", "value": 0.8_f64, "timeAsSeconds": 0_i32}],
            "carbratio": [{"time": "00:00", "value": 10_i32}],
            "sens": [{"time": "00:00", "value": 40_i32}],
            "target_low": [{"time": "00:00", "value": 90_i32}],
            "target_high": [{"time": "00:00", "value": 110_i32}],
        }},
    };
    d.to_vec().unwrap()
}

/// An export as a user would have it: JSON files from mongoexport, and a mongodump folder
/// (`dump/<db>/`: BSON, one of them gzip'ed, with the metadata files and Nightscout's
/// auth collection beside them).
fn write_export(dir: &Path) {
    std::fs::write(dir.join("entries.json"), ENTRIES_RELAXED).unwrap();
    std::fs::write(dir.join("treatments.json"), TREATMENTS_CANONICAL).unwrap();
    let dump = dir.join("dump/nightscout");
    std::fs::create_dir_all(&dump).unwrap();
    std::fs::write(dump.join("devicestatus.bson"), devicestatus_bson()).unwrap();
    std::fs::write(dump.join("devicestatus.metadata.json"), "{\"indexes\":[]}").unwrap();
    std::fs::write(dump.join("profile.bson.gz"), gzip(&profile_bson())).unwrap();
    let subject = bson::doc! {"name": "phone", "roles": ["admin"]};
    std::fs::write(dump.join("auth_subjects.bson"), subject.to_vec().unwrap()).unwrap();
}

fn by_id(list: &[Value], id: &str) -> Value {
    list.iter()
        .find(|d| d["_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list:?}"))
        .clone()
}

const ENTRIES: &str = "/api/v1/entries.json?find[date][$gte]=0&count=100";
const TREATMENTS: &str = "/api/v1/treatments.json?find[created_at][$gte]=2000-01-01&count=100";
const STATUSES: &str = "/api/v1/devicestatus.json?find[created_at][$gte]=2000-01-01&count=100";

#[test]
fn exports_are_stored_with_their_ids_fields_and_dates_and_a_second_import_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path());
    let data = dir.path().join("data");
    let files = [
        dir.path().join("entries.json"),
        dir.path().join("treatments.json"),
        dir.path().join("dump/nightscout"),
    ];
    let args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let started = now_ms();
    let out = import(&data, &args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for line in [
        "entries: 2 read: 2 inserted, 0 updated, 0 unchanged, 0 refused, 0 deleted",
        "treatments: 3 read: 2 inserted, 0 updated, 0 unchanged, 0 refused, 1 deleted",
        "devicestatus: 1 read: 1 inserted,",
        "profile: 1 read: 1 inserted,",
        "auth_subjects.bson: skipped",
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }
    assert!(
        !err.contains("metadata"),
        "a folder's metadata files are not data: {err}"
    );

    let s = TestServer::in_dir(&data, &[]);
    let entries = s.list(ENTRIES);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let e1 = by_id(&entries, E1);
    assert_eq!(e1["sgv"], 120);
    assert_eq!(e1["date"], T0);
    assert_eq!(e1["dateString"], "2024-01-01T00:00:00.000Z");
    assert_eq!(e1["direction"], "Flat");
    assert_eq!(e1["device"], "xDrip-DexcomG6");
    // A double as Nightscout's JSON wrote it.
    assert_eq!(serde_json::to_string(&e1["noise"]).unwrap(), "1");
    assert_eq!(e1["delta"], -1.5);
    assert_eq!(e1["custom"], json!({"raw": [1, 2.5, {"x": "y"}]}));
    assert_eq!(by_id(&entries, E2)["seen"], "2024-01-01T00:05:10.000Z");

    let treatments = s.list(TREATMENTS);
    assert_eq!(treatments.len(), 2, "the deleted one is not imported");
    let t1 = by_id(&treatments, T1);
    assert_eq!(t1["eventType"], "Correction Bolus");
    assert_eq!(t1["created_at"], "2024-01-01T00:30:00.000Z");
    assert_eq!(t1["insulin"], 1.5);
    assert_eq!(t1["enteredBy"], "careportal");
    assert_eq!(t1["recorded"], "2024-01-01T00:30:01.000Z");
    let t2 = by_id(&treatments, T2);
    assert_eq!(t2["duration"], 60);
    assert_eq!(t2["targetTop"], 90);
    assert_eq!(t2["reason"], "Eating Soon");

    let statuses = s.list(STATUSES);
    let d1 = by_id(&statuses, D1);
    assert_eq!(d1["device"], "openaps://rig");
    assert_eq!(d1["created_at"], "2024-01-01T00:05:00.000Z");
    assert_eq!(d1["uploaderBattery"], 1);
    assert_eq!(
        d1["pump"],
        json!({"clock": "2024-01-01T00:04:50.000Z", "reservoir": 120.5, "battery": {"percent": 80}})
    );
    assert_eq!(d1["openaps"]["iob"]["iob"], 0.25);

    let profiles = s.list("/api/v1/profile.json");
    let p1 = by_id(&profiles, P1);
    assert_eq!(p1["defaultProfile"], "Default");
    assert_eq!(p1["store"]["Default"]["dia"], 4);
    assert_eq!(p1["store"]["Default"]["basal"][0]["value"], 0.8);

    // srvModified is nightlite's, not the event's time; the state span of the imported
    // temporary target exists.
    let (_, token) = s.create_subject("import reader", &["readable"]);
    let bearer = format!("Bearer {}", s.jwt_for(&token));
    let v3 = |created_at: &str| {
        s.request(
            "GET",
            &format!("/api/v3/treatments?created_at$eq={created_at}"),
            &[("Authorization", &bearer)],
            None,
        )
        .json()["result"][0]
            .clone()
    };
    let bolus = v3("2024-01-01T00:30:00.000Z");
    assert!(bolus["srvModified"].as_i64().unwrap() >= started, "{bolus}");
    let target = v3("2024-01-01T01:00:00.000Z");
    let spans = s
        .request(
            "GET",
            "/api/v4/state-spans?from=2023-12-31&category=TemporaryTarget",
            &[("Authorization", &bearer)],
            None,
        )
        .json();
    let spans = spans.as_array().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0]["startMills"], T0 + 3_600_000);
    assert_eq!(spans[0]["endMills"], T0 + 7_200_000);
    assert_eq!(spans[0]["originalId"], target["identifier"]);
    drop(s);

    let again = import(&data, &args);
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    for line in [
        "entries: 2 read: 0 inserted, 0 updated, 2 unchanged",
        "treatments: 3 read: 0 inserted, 0 updated, 2 unchanged",
        "devicestatus: 1 read: 0 inserted, 0 updated, 1 unchanged",
        "profile: 1 read: 0 inserted, 0 updated, 1 unchanged",
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }
    let s = TestServer::in_dir(&data, &[]);
    assert_eq!(s.list(ENTRIES).len(), 2);
    assert_eq!(s.list(TREATMENTS).len(), 2);
    assert_eq!(s.list(STATUSES).len(), 1);
}

#[test]
fn refused_documents_are_named_and_skipped_and_a_broken_file_stops_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("notes.json");
    std::fs::write(
        &file,
        r#"{"eventType":"Note","created_at":"2024-01-01T00:00:00Z","notes":"first"}
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910e02"},"eventType":"Note","created_at":"2024-01-01T00:01:00Z","insulin":{"$numberDouble":"NaN"}}
42
{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910e04"},"eventType":"Note","created_at":"last tuesday"}
{"eventType":"Note","created_at":"2024-01-01T00:04:00Z","notes":"fifth"}
"#,
    )
    .unwrap();
    let out = import(
        &data,
        &["--collection", "treatments", file.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for line in [
        "notes.json line 2 (_id 5f1c2a3b4c5d6e7f80910e02): refused: insulin: NaN is not a finite \
         number; nightlite stores only finite numbers",
        "notes.json line 3: refused: not a JSON object: 42",
        "notes.json line 4 (_id 5f1c2a3b4c5d6e7f80910e04): refused: treatments.created_at:",
        "treatments: 5 read: 2 inserted, 0 updated, 0 unchanged, 3 refused",
        "3 documents refused",
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }

    // A truncated array: the documents before the break are stored, the import stops.
    let broken = dir.path().join("entries.json");
    std::fs::write(
        &broken,
        r#"[{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910f01"},"sgv":100,"date":1704067200000,"type":"sgv"},
{"sgv":"#,
    )
    .unwrap();
    let out = import(&data, &[broken.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("entries.json: line 2: the file ends inside a document")
            && err.contains("import stopped"),
        "{err}"
    );

    let s = TestServer::in_dir(&data, &[]);
    let notes: Vec<String> = s
        .list(TREATMENTS)
        .iter()
        .map(|t| t["notes"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(notes, vec!["fifth", "first"]);
    let entries = s.list(ENTRIES);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["_id"], "5f1c2a3b4c5d6e7f80910f01");
}

#[test]
fn a_running_server_keeps_its_data_directory_and_unknown_collections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("entries.json");
    std::fs::write(&file, ENTRIES_RELAXED).unwrap();
    let s = TestServer::in_dir(&data, &[]);
    let out = import(&data, &[file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("server is running"),
        "{}",
        stderr(&out)
    );
    assert!(s.list(ENTRIES).is_empty());
    drop(s);

    let out = import(&data, &["--collection", "sgvs", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--collection sgvs: not a collection nightlite holds"),
        "{}",
        stderr(&out)
    );
}

/// A profile export is a history of the settings: two documents with their own `_id`s that
/// share `created_at` are both kept, as two API v1 uploads would be (Merge::History).
#[test]
fn profile_documents_sharing_created_at_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("profile.json");
    let doc = |id: &str, name: &str| {
        json!({"_id": {"$oid": id}, "defaultProfile": name,
            "startDate": "2024-01-01T00:00:00.000Z", "created_at": "2024-01-01T00:00:00.000Z",
            "store": {name: {"dia": 4}}})
        .to_string()
    };
    let text = format!(
        "{}\n{}\n",
        doc(P1, "A"),
        doc("5f1c2a3b4c5d6e7f80910d02", "B")
    );
    std::fs::write(&file, text).unwrap();
    let out = import(&data, &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = TestServer::in_dir(&data, &[]);
    let profiles = s.list("/api/v1/profile.json?count=10");
    assert_eq!(profiles.len(), 2, "{profiles:?}");
    assert_eq!(by_id(&profiles, P1)["defaultProfile"], "A");
    assert_eq!(
        by_id(&profiles, "5f1c2a3b4c5d6e7f80910d02")["defaultProfile"],
        "B"
    );
}

/// A later export in which a document an earlier import stored is deleted (`isValid: false`,
/// API v3's soft delete), in Extended JSON and in BSON: not imported, and deleted here too;
/// importing it again finds nothing more to delete.
#[test]
fn a_document_deleted_in_a_later_export_is_deleted_here() {
    use bson::{doc, oid::ObjectId, DateTime};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let treatments = dir.path().join("treatments.json");
    let statuses = dir.path().join("devicestatus.bson");
    let export = |deleted: bool| {
        // Canonical Extended JSON: the date as {"$date":{"$numberLong":..}}.
        let mut t = json!({"_id": {"$oid": T1}, "eventType": "Note", "notes": "n",
            "created_at": "2024-01-01T00:30:00.000Z",
            "mills": {"$numberLong": "1704069000000"},
            "seen": {"$date": {"$numberLong": "1704069001000"}}});
        let mut d = doc! {"_id": ObjectId::parse_str(D1).unwrap(), "device": "openaps://rig",
        "created_at": "2024-01-01T00:05:00.000Z", "when": DateTime::from_millis(T0)};
        if deleted {
            t["isValid"] = json!(false);
            d.insert("isValid", false);
        }
        std::fs::write(&treatments, format!("{t}\n")).unwrap();
        std::fs::write(&statuses, d.to_vec().unwrap()).unwrap();
    };
    let files = [treatments.to_str().unwrap(), statuses.to_str().unwrap()];
    export(false);
    let out = import(&data, &files);
    assert!(out.status.success(), "{}", stderr(&out));
    export(true);
    let out = import(&data, &files);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for coll in ["treatments", "devicestatus"] {
        let line = format!(
            "{coll}: 1 read: 0 inserted, 0 updated, 0 unchanged, 0 refused, 1 deleted in the \
             source (not imported; 1 of them deleted here)"
        );
        assert!(err.contains(&line), "{line:?} not in:\n{err}");
    }
    let out = import(&data, &files);
    let err = stderr(&out);
    assert!(
        err.contains("1 deleted in the source (not imported)") && !err.contains("deleted here"),
        "{err}"
    );
    let s = TestServer::in_dir(&data, &[]);
    assert!(s.list(TREATMENTS).is_empty(), "{:?}", s.list(TREATMENTS));
    assert!(s.list(STATUSES).is_empty(), "{:?}", s.list(STATUSES));
}
