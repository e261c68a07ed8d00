//! The v1 find language as clients write it in query strings: operators, lists, regular
//! expressions, `$or`, number and date forms, encodings, sorting and nested fields.

use serde_json::{json, Value};

use crate::support::{enc, ints, now_ms, sgv, TestServer};

const MIN: i64 = 60_000;

/// sgv 140, 120, 100 (newest first), one mbg and one cal, some with `noise`.
fn entries_server() -> (TestServer, i64) {
    let s = TestServer::start();
    let t = now_ms();
    let mut a = sgv("find", t, 140);
    a["noise"] = json!(1);
    let b = sgv("find", t - 5 * MIN, 120);
    let mut c = sgv("find", t - 10 * MIN, 100);
    c["noise"] = json!(2);
    s.post_ok(
        "/api/v1/entries",
        &json!([
            a,
            b,
            c,
            {"type": "mbg", "mbg": 150, "date": t - 15 * MIN, "device": "find"},
            {"type": "cal", "slope": 900, "date": t - 20 * MIN, "device": "find"}
        ]),
    );
    (s, t)
}

fn sgvs(s: &TestServer, query: &str) -> Vec<i64> {
    ints(&s.list(&format!("/api/v1/entries.json?{query}")), "sgv")
}

fn types(s: &TestServer, query: &str) -> Vec<String> {
    s.list(&format!("/api/v1/entries.json?{query}"))
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plain_equality() {
    let (s, _) = entries_server();
    assert_eq!(sgvs(&s, "find[sgv]=120"), vec![120]);
    assert_eq!(types(&s, "find[type]=mbg"), vec!["mbg"]);
}

#[test]
fn comparison_operators() {
    let (s, _) = entries_server();
    assert_eq!(sgvs(&s, "find[sgv][$eq]=120"), vec![120]);
    assert_eq!(
        sgvs(&s, "find[type]=sgv&find[sgv][$ne]=120"),
        vec![140, 100]
    );
    assert_eq!(sgvs(&s, "find[sgv][$gt]=120"), vec![140]);
    assert_eq!(sgvs(&s, "find[sgv][$gte]=120"), vec![140, 120]);
    assert_eq!(sgvs(&s, "find[sgv][$lt]=120"), vec![100]);
    assert_eq!(sgvs(&s, "find[sgv][$lte]=120"), vec![120, 100]);
    assert_eq!(sgvs(&s, "find[sgv][$gt]=100&find[sgv][$lt]=140"), vec![120]);
}

#[test]
fn in_and_nin_with_bracket_lists() {
    let (s, _) = entries_server();
    assert_eq!(
        sgvs(&s, "find[sgv][$in][]=100&find[sgv][$in][]=140"),
        vec![140, 100]
    );
    assert_eq!(
        sgvs(
            &s,
            "find[type]=sgv&find[sgv][$nin][]=100&find[sgv][$nin][]=140"
        ),
        vec![120]
    );
    assert_eq!(
        types(&s, "find[type][$in][]=mbg&find[type][$in][]=cal"),
        vec!["mbg", "cal"]
    );
}

#[test]
fn in_and_nin_with_indexed_lists() {
    let (s, _) = entries_server();
    assert_eq!(
        sgvs(&s, "find[sgv][$in][0]=100&find[sgv][$in][1]=120"),
        vec![120, 100]
    );
    assert_eq!(
        sgvs(
            &s,
            "find[type]=sgv&find[sgv][$nin][0]=120&find[sgv][$nin][1]=140"
        ),
        vec![100]
    );
}

#[test]
fn in_with_repeated_keys() {
    let (s, _) = entries_server();
    assert_eq!(
        sgvs(&s, "find[sgv][$in]=100&find[sgv][$in]=140"),
        vec![140, 100]
    );
    assert_eq!(
        types(&s, "find[type][]=mbg&find[type][]=cal"),
        vec!["mbg", "cal"]
    );
}

#[test]
fn and_and_nor() {
    let (s, _) = entries_server();
    assert_eq!(
        sgvs(
            &s,
            "find[$and][0][sgv][$gte]=100&find[$and][1][sgv][$lt]=140"
        ),
        vec![120, 100]
    );
    assert_eq!(
        types(&s, "find[$nor][0][type]=sgv&find[$nor][1][type]=cal"),
        vec!["mbg"]
    );
}

#[test]
fn exists_true_and_false() {
    let (s, _) = entries_server();
    assert_eq!(sgvs(&s, "find[noise][$exists]=true"), vec![140, 100]);
    assert_eq!(
        sgvs(&s, "find[type]=sgv&find[noise][$exists]=false"),
        vec![120]
    );
    assert_eq!(types(&s, "find[sgv][$exists]=false"), vec!["mbg", "cal"]);
}

#[test]
fn or_of_types() {
    let (s, _) = entries_server();
    assert_eq!(
        types(&s, "find[$or][0][type]=sgv&find[$or][1][type]=mbg"),
        vec!["sgv", "sgv", "sgv", "mbg"]
    );
}

#[test]
fn numbers_written_with_point_zero() {
    let (s, t) = entries_server();
    assert_eq!(sgvs(&s, "find[sgv][$gte]=120.0"), vec![140, 120]);
    let since = t - 5 * MIN;
    assert_eq!(
        sgvs(&s, &format!("find[date][$gte]={since}.0")),
        vec![140, 120]
    );
}

#[test]
fn percent_encoded_brackets_and_dollars() {
    let (s, _) = entries_server();
    assert_eq!(sgvs(&s, "find%5Bsgv%5D%5B%24gte%5D=120"), vec![140, 120]);
    assert_eq!(
        sgvs(
            &s,
            "find%5Bsgv%5D%5B%24in%5D%5B%5D=100&find%5Bsgv%5D%5B%24in%5D%5B%5D=120"
        ),
        vec![120, 100]
    );
}

#[test]
fn sort_ascending() {
    let (s, _) = entries_server();
    assert_eq!(sgvs(&s, "find[type]=sgv&sort[sgv]=1"), vec![100, 120, 140]);
    assert_eq!(sgvs(&s, "find[type]=sgv&sort[sgv]=-1"), vec![140, 120, 100]);
}

#[test]
fn treatments_sort_by_created_at_ascending() {
    let s = dated_treatments();
    assert_eq!(
        notes(&s, "find[created_at][$gte]=2023-01-01&sort[created_at]=1"),
        vec!["b", "a", "c"]
    );
}

/// Treatments on 2023-12-31, 2024-01-01 and 2024-01-02, each at 10:00Z.
fn dated_treatments() -> TestServer {
    let s = TestServer::start();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Note", "notes": "b", "created_at": "2023-12-31T10:00:00.000Z"},
            {"eventType": "Note", "notes": "a", "created_at": "2024-01-01T10:00:00.000Z"},
            {"eventType": "Note", "notes": "c", "created_at": "2024-01-02T10:00:00.000Z"}
        ]),
    );
    s
}

fn notes(s: &TestServer, query: &str) -> Vec<String> {
    s.list(&format!("/api/v1/treatments.json?{query}"))
        .iter()
        .map(|t| t["notes"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn date_only_created_at() {
    let s = dated_treatments();
    assert_eq!(
        notes(&s, "find[created_at][$gte]=2024-01-01"),
        vec!["c", "a"]
    );
    assert_eq!(notes(&s, "find[created_at][$lt]=2024-01-01"), vec!["b"]);
}

#[test]
fn exact_created_at_matches_the_instant() {
    let s = dated_treatments();
    assert_eq!(
        notes(&s, "find[created_at]=2024-01-01T10:00:00.000Z"),
        vec!["a"]
    );
    assert_eq!(
        notes(&s, "find[created_at][$eq]=2024-01-01T12:00:00%2B02:00"),
        vec!["a"]
    );
}

#[test]
fn offset_date_with_literal_plus() {
    let s = dated_treatments();
    // 11:00+02:00 is 09:00Z, before the 10:00Z treatment of that day.
    assert_eq!(
        notes(&s, "find[created_at][$gte]=2024-01-01T11:00:00+02:00"),
        vec!["c", "a"]
    );
    assert_eq!(
        notes(&s, "find[created_at][$lt]=2024-01-01T11:00:00+02:00"),
        vec!["b"]
    );
}

#[test]
fn offset_date_with_encoded_plus() {
    let s = dated_treatments();
    assert_eq!(
        notes(&s, "find[created_at][$gte]=2024-01-01T11:00:00%2B02:00"),
        vec!["c", "a"]
    );
    assert_eq!(
        notes(&s, "find[created_at][$lt]=2024-01-01T11:00:00%2B02:00"),
        vec!["b"]
    );
    assert_eq!(
        notes(
            &s,
            "find[created_at][$gte]=2024-01-01T08:00:00-02:00&find[created_at][$lt]=2024-01-02"
        ),
        vec!["a"]
    );
}

fn event_server() -> TestServer {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Meal Bolus", "insulin": 3, "carbs": 40, "enteredBy": "loop://iPhone", "created_at": nightlite::dates::to_iso(t - 4 * MIN)},
            {"eventType": "Correction Bolus", "insulin": 1.5, "enteredBy": "xdrip", "created_at": nightlite::dates::to_iso(t - 3 * MIN)},
            {"eventType": "Note", "notes": "Pizza night", "enteredBy": "careportal", "created_at": nightlite::dates::to_iso(t - 2 * MIN)},
            {"eventType": "Temp Basal", "absolute": 0.5, "duration": 30, "enteredBy": "loop://iPhone", "created_at": nightlite::dates::to_iso(t - MIN)}
        ]),
    );
    s
}

fn event_types(s: &TestServer, query: &str) -> Vec<String> {
    s.list(&format!("/api/v1/treatments.json?{query}"))
        .iter()
        .map(|t| t["eventType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn regex_operator() {
    let s = event_server();
    assert_eq!(
        event_types(&s, "find[eventType][$regex]=Bolus"),
        vec!["Correction Bolus", "Meal Bolus"]
    );
    assert_eq!(
        event_types(&s, "find[notes][$regex]=PIZZA&find[notes][$options]=i"),
        vec!["Note"]
    );
}

#[test]
fn overlong_regular_expressions_are_refused() {
    let s = event_server();
    let long = "a".repeat(1025);
    let r = s.get_auth(&format!(
        "/api/v1/treatments.json?find[notes][$regex]={long}"
    ));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("longer than 1024 bytes"), "{}", r.text);
    let ok = "a".repeat(1024);
    let r = s.get_auth(&format!("/api/v1/treatments.json?find[notes][$regex]={ok}"));
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn regex_literals_on_text_fields() {
    let s = event_server();
    assert_eq!(
        event_types(
            &s,
            &format!("find[eventType]={}", enc("/meal|correction/i"))
        ),
        vec!["Correction Bolus", "Meal Bolus"]
    );
    assert_eq!(
        event_types(&s, "find[eventType]=/meal|correction/i"),
        vec!["Correction Bolus", "Meal Bolus"]
    );
    assert_eq!(
        event_types(&s, &format!("find[enteredBy]={}", enc("/^loop/"))),
        vec!["Temp Basal", "Meal Bolus"]
    );
    assert_eq!(
        event_types(&s, &format!("find[notes]={}", enc("/pizza/i"))),
        vec!["Note"]
    );
}

#[test]
fn treatment_numbers_compare_numerically() {
    let s = event_server();
    assert_eq!(
        event_types(&s, "find[insulin][$gte]=1.5"),
        vec!["Correction Bolus", "Meal Bolus"]
    );
    assert_eq!(event_types(&s, "find[insulin][$gt]=2"), vec!["Meal Bolus"]);
    assert_eq!(event_types(&s, "find[carbs][$gt]=0"), vec!["Meal Bolus"]);
}

#[test]
fn nested_field_on_devicestatus() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/devicestatus",
        &json!([
            {"device": "pump-a", "created_at": nightlite::dates::to_iso(t - MIN), "pump": {"battery": {"percent": 62}}},
            {"device": "pump-b", "created_at": nightlite::dates::to_iso(t), "pump": {"battery": {"percent": 80}}}
        ]),
    );
    let items = s.list("/api/v1/devicestatus.json?find[pump][battery][percent]=62");
    let devices: Vec<&Value> = items.iter().map(|d| &d["device"]).collect();
    assert_eq!(devices, vec!["pump-a"]);
    let items = s.list("/api/v1/devicestatus.json?find[pump.battery.percent][$gte]=70");
    let devices: Vec<&Value> = items.iter().map(|d| &d["device"]).collect();
    assert_eq!(devices, vec!["pump-b"]);
}

#[test]
fn uuid_id_finds_by_identifier() {
    let s = TestServer::start();
    let uuid = "0e8f4a3c-6b1d-4f4e-9b8a-2d1c3e4f5a6b";
    s.post_ok(
        "/api/v1/treatments",
        &json!({"_id": uuid, "eventType": "Note", "notes": "loop", "created_at": nightlite::dates::to_iso(now_ms())}),
    );
    let items = s.list(&format!("/api/v1/treatments.json?find[_id]={uuid}"));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["identifier"], uuid);
}

#[test]
fn values_match_the_type_the_client_meant() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Announcement", "notes": "hello", "created_at": nightlite::dates::to_iso(t - 3 * MIN)},
            {"eventType": "Note", "notes": "offset", "utcOffset": -300, "created_at": nightlite::dates::to_iso(t - 2 * MIN)},
            {"eventType": "Correction Bolus", "insulin": 1.5, "created_at": nightlite::dates::to_iso(t - MIN)}
        ]),
    );
    assert_eq!(
        event_types(&s, "find[isAnnouncement]=true"),
        vec!["Announcement"]
    );
    assert_eq!(event_types(&s, "find[utcOffset]=-300"), vec!["Note"]);
    assert_eq!(
        event_types(&s, "find[insulin]=1.5"),
        vec!["Correction Bolus"]
    );
}
