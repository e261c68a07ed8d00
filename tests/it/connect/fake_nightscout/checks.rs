//! The fake's own checks: it behaves as Nightscout 15.0.7 where that differs from nightlite
//! (so the sync and import tests that use it meet those differences), and its test controls
//! (clock, faults, read-only) do what they say. Each is also an example of driving it.

use serde_json::{json, Value};

use super::{FakeNightscout, Fault, READ_TOKEN, TOKEN};
use crate::connect::fake_http::Fake;
use crate::support::{sha1hex, Http, Resp};

/// 2024-03-01T00:00:00Z.
const T0: i64 = 1_709_251_200_000;
const SECRET: &str = "fake-site-secret-0001";

fn iso(ms: i64) -> String {
    nightlite::dates::to_iso(ms)
}

/// A client of the fake with its API secret (API v1) and a JWT of `token` (API v3).
struct Client {
    http: Http,
    bearer: String,
}

impl Client {
    fn new(fake: &FakeNightscout, token: &str) -> Client {
        fake.api_secret(SECRET);
        let http = Http::new(fake.port(), sha1hex(SECRET));
        let jwt = http
            .get(&format!("/api/v2/authorization/request/{token}"))
            .json();
        let bearer = format!("Bearer {}", jwt["token"].as_str().unwrap());
        Client { http, bearer }
    }

    fn v1(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        let headers = [
            ("api-secret", self.http.secret_hash()),
            ("Content-Type", "application/json"),
        ];
        self.http
            .request(method, path, &headers, body.as_deref().map(str::as_bytes))
    }

    fn v3(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        let headers = [
            ("Authorization", self.bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        self.http
            .request(method, path, &headers, body.as_deref().map(str::as_bytes))
    }
}

#[test]
fn v1_writes_carry_no_srv_modified_upsert_as_15_0_7_and_delete_without_a_trace() {
    let fake = FakeNightscout::start(true);
    let c = Client::new(&fake, TOKEN);
    let at = iso(T0);
    let r = c.v1(
        "POST",
        "/api/v1/treatments",
        Some(json!([
            {"eventType":"Note","notes":"first","created_at":at,"carbs":0},
            {"_id":"0f1e2d3c-aaaa-4bbb-8ccc-123456789abc","eventType":"Temporary Target",
             "created_at":iso(T0 + 60_000),"duration":"30","targetTop":90,"targetBottom":90},
            {"_id":"5f0000000000000000000a01","eventType":"Meal Bolus","insulin":2,
             "created_at":iso(T0 + 120_000)}
        ])),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let docs = fake.docs("treatments");
    assert_eq!(docs.len(), 3);
    assert!(
        docs.iter().all(|d| d.get("srvModified").is_none()),
        "{docs:?}"
    );
    assert!(docs[0].get("carbs").is_none(), "Number()ed and 0 removed");
    assert_eq!(
        docs[1]["identifier"],
        "0f1e2d3c-aaaa-4bbb-8ccc-123456789abc"
    );
    assert_eq!(docs[1]["duration"], 30);
    assert_eq!(docs[2]["_id"], "5f0000000000000000000a01");
    // (created_at, eventType): the same Note again replaces it.
    let r = c.v1(
        "POST",
        "/api/v1/treatments",
        Some(json!({"eventType":"Note","notes":"second","created_at":at})),
    );
    assert_eq!(r.json()[0]["_id"], docs[0]["_id"]);
    assert_eq!(fake.docs("treatments").len(), 3);
    // History never lists them; a search does, with srvModified filled in from created_at.
    let h = c
        .v3("GET", "/api/v3/treatments/history/1000000000000", None)
        .json();
    assert_eq!(h["result"], json!([]));
    let found = c
        .v3(
            "GET",
            "/api/v3/treatments?created_at$gte=2024-01-01&sort=created_at",
            None,
        )
        .json();
    assert_eq!(found["result"][0]["srvModified"], T0);
    assert_eq!(
        found["result"][0]["identifier"], docs[0]["_id"],
        "identifier = _id"
    );
    assert!(found["result"][0].get("_id").is_none());
    // A v1 delete leaves nothing, anywhere.
    let r = c.v1(
        "DELETE",
        "/api/v1/treatments/5f0000000000000000000a01",
        None,
    );
    assert_eq!(r.json()["deletedCount"], 1);
    let r = c.v1(
        "DELETE",
        &format!("/api/v1/treatments?find[created_at][$eq]={at}"),
        None,
    );
    assert_eq!(r.json()["deletedCount"], 1);
    assert_eq!(fake.docs("treatments").len(), 1);
    assert_eq!(
        c.v3("GET", "/api/v3/treatments/history/1000000000000", None)
            .json()["result"],
        json!([])
    );
    // Entries: one per sysTime and type; fields merge.
    for sgv in [100, 101] {
        let e = json!({"type":"sgv","sgv":sgv,"date":T0,"dateString":at,"device":"d"});
        assert_eq!(c.v1("POST", "/api/v1/entries", Some(e)).status, 200);
    }
    let e = fake.docs("entries");
    assert_eq!((e.len(), &e[0]["sgv"]), (1, &json!(101)));
    assert!(e[0].get("srvModified").is_none());
    // A device status with a string `_id` is refused.
    let r = c.v1(
        "POST",
        "/api/v1/devicestatus",
        Some(json!({"_id":"abc","device":"x"})),
    );
    assert_eq!(r.status, 400, "{}", r.text);
}

#[test]
fn v3_stamps_its_clock_deduplicates_and_deletes_softly() {
    let fake = FakeNightscout::start(true);
    let c = Client::new(&fake, TOKEN);
    fake.freeze(T0 + 5000);
    let doc = json!({"eventType":"Note","notes":"n","created_at":iso(T0),"device":"dev-a"});
    let r = c.v3("POST", "/api/v3/treatments", Some(doc.clone()));
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("Bad or missing app field"))
    );
    let mut doc = doc;
    doc["app"] = json!("test");
    let r = c.v3("POST", "/api/v3/treatments", Some(doc.clone()));
    assert_eq!(r.status, 201, "{}", r.text);
    let ns = uuid::Uuid::from_bytes(*b"NightscoutRocks!");
    let id = uuid::Uuid::new_v5(&ns, format!("dev-a_{T0}_Note").as_bytes()).to_string();
    assert_eq!(
        r.json(),
        json!({"status":201,"identifier":id,"lastModified":T0 + 5000})
    );
    let stored = fake.get("treatments", &id).unwrap();
    assert_eq!(
        (stored["srvModified"].clone(), stored["subject"].clone()),
        (json!(T0 + 5000), json!("follower"))
    );
    // The same again: a deduplication.
    let r = c.v3("POST", "/api/v3/treatments", Some(doc.clone()));
    assert_eq!(
        r.json(),
        json!({"status":200,"lastModified":T0 + 5000,"identifier":id,"isDeduplication":true})
    );
    let r = c.v3(
        "PATCH",
        &format!("/api/v3/treatments/{id}"),
        Some(json!({"device":"other"})),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Deleted: 410 to a read, still in history and in v1 lists.
    fake.freeze(T0 + 9000);
    assert_eq!(
        c.v3("DELETE", &format!("/api/v3/treatments/{id}"), None)
            .status,
        200
    );
    let r = c.v3("GET", &format!("/api/v3/treatments/{id}"), None);
    assert_eq!((r.status, r.json()), (410, json!({"status":410})));
    let h = c.v3(
        "GET",
        &format!("/api/v3/treatments/history/{}", T0 + 5000),
        None,
    );
    assert_eq!(
        h.header("etag"),
        Some(format!("W/\"{}\"", T0 + 9000).as_str())
    );
    assert_eq!(h.json()["result"][0]["isValid"], false);
    let v1 = c
        .v1(
            "GET",
            "/api/v1/treatments.json?find[created_at][$gte]=2024-01-01",
            None,
        )
        .json();
    assert_eq!(v1[0]["isValid"], false, "v1 lists deleted documents");
    assert!(
        c.v3("GET", "/api/v3/treatments?limit=10", None).json()["result"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A re-POST of the deleted document brings it back (no restriction on deleted ones).
    let r = c.v3("POST", "/api/v3/treatments", Some(doc));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(fake
        .get("treatments", &id)
        .unwrap()
        .get("isValid")
        .is_none());
    let r = c.v3(
        "DELETE",
        &format!("/api/v3/treatments/{id}?permanent=true"),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(fake.get("treatments", &id).is_none());
    // History from 0 is no date to 15.0.7 (before 2000, even as seconds).
    let r = c.v3("GET", "/api/v3/treatments/history/0", None);
    assert_eq!(r.status, 400, "{}", r.text);
    let lm = c.v3("GET", "/api/v3/lastModified", None).json();
    assert_eq!(lm["result"]["srvDate"], T0 + 9000);
    fake.thaw();
    assert!(fake.now() > T0 + 9000);
}

#[test]
fn v1_lists_keep_a_4_day_window_and_count_by_the_entries_rules() {
    let fake = FakeNightscout::start(false);
    fake.freeze(T0);
    let c = Client::new(&fake, TOKEN);
    for (i, age) in [1i64, 5].iter().enumerate() {
        let t = T0 - age * 86_400_000;
        fake.add("entries", json!({"type":"sgv","sgv":100 + i,"date":t}));
        fake.add(
            "treatments",
            json!({"eventType":"Note","created_at":iso(t)}),
        );
    }
    assert_eq!(
        c.v1("GET", "/api/v1/entries.json?count=10", None)
            .list()
            .len(),
        1
    );
    assert_eq!(c.v1("GET", "/api/v1/treatments.json", None).list().len(), 1);
    // Deleted in place (as API v3 leaves it): v1 lists it all the same.
    let id = fake.docs("treatments")[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fake.edit("treatments", &id, |d| {
        d.insert("isValid".into(), false.into());
    }));
    let all = c.v1(
        "GET",
        "/api/v1/treatments.json?find[created_at][$gte]=2000-01-01",
        None,
    );
    assert_eq!(all.list().len(), 2);
    assert_eq!(
        all.list()[0]["carbs"],
        Value::Null,
        "Number(undefined) shown as null"
    );
    let n = c
        .v1(
            "GET",
            "/api/v1/count/entries/where?find[date][$gte]=0",
            None,
        )
        .json();
    assert_eq!(n, json!([{"_id":null,"count":2}]));
    // Treatments have no `date`, which the count's default window is on.
    let n = c
        .v1(
            "GET",
            "/api/v1/count/treatments/where?find[created_at][$gte]=2000-01-01",
            None,
        )
        .json();
    assert_eq!(n, json!([]));
    assert_eq!(c.v1("GET", "/api/v3/version", None).status, 404, "no v3");
}

#[test]
fn faults_and_read_only_tokens() {
    let fake = FakeNightscout::start(true);
    let c = Client::new(&fake, READ_TOKEN);
    let e = json!({"type":"sgv","sgv":100,"date":T0,"app":"t","device":"d"});
    let r = c.v3("POST", "/api/v3/entries", Some(e.clone()));
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (403, json!("Missing permission api:entries:create"))
    );
    fake.read_only(true);
    let w = Client::new(&fake, TOKEN);
    assert_eq!(w.v1("POST", "/api/v1/entries", Some(e.clone())).status, 401);
    fake.read_only(false);
    assert_eq!(w.v3("POST", "/api/v3/entries", Some(e.clone())).status, 201);
    fake.clear_log();
    // After one good request, two 500s, then a 429 with Retry-After.
    fake.fail(1, 2, Fault::Status(500));
    fake.fail(0, 1, Fault::Throttle(7));
    let statuses: Vec<u16> = (0..4)
        .map(|_| w.v1("GET", "/api/v1/entries.json", None).status)
        .collect();
    assert_eq!(statuses, [200, 500, 500, 429]);
    assert_eq!(fake.faults_left(), 0);
    // A dropped connection and a cut answer are transport errors to the client; the cut
    // request was carried out.
    fake.fail_on("/api/v1/entries", 0, 1, Fault::Drop);
    fake.fail_on("/api/v1/treatments", 0, 1, Fault::Cut);
    let url = |p: &str| format!("{}{p}?token={TOKEN}", fake.url());
    assert!(ureq::get(&url("/api/v1/entries.json")).call().is_err());
    let t = json!({"eventType":"Note","created_at":iso(T0)});
    let cut = ureq::post(&url("/api/v1/treatments")).send_json(t);
    assert!(cut.map(|r| r.into_string()).map_or(true, |b| b.is_err()));
    assert_eq!(fake.docs("treatments").len(), 1);
    let seen: Vec<u16> = fake.answered().iter().map(|(_, s)| *s).collect();
    assert_eq!(seen, [200, 500, 500, 429, 0, 200]);
    // `call` writes as the site's administrator, unlogged.
    let before = fake.log().len();
    let (status, _) = fake.call("DELETE", "/api/v1/treatments/*", Value::Null);
    assert_eq!((status, fake.log().len()), (200, before));
}
