//! Nightscout as a source (src/connect/nightscout.rs, src/remote/): a nightlite follows a
//! second nightlite on loopback (through a logging proxy that can refuse a JWT), and fakes
//! of Nightscout 15.0.7 for what a nightlite never does (many documents in one srvModified
//! millisecond; no API v3, documents without srvModified).

use std::sync::Arc;

use nightlite::connect::ManualClock;
use serde_json::{json, Value};

use super::fake_http::Fake;
use super::fake_nightscout::{Counts, FakeNightscout, Proxy, TOKEN};
use super::{counter, Bridge, MIN};
use crate::support::{iso, now_ms, sgv, Setup, TestServer};

fn follower(clock: &Arc<ManualClock>, url: &str) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "nightscout")
        .env("CONNECT_SOURCE_ENDPOINT", url)
}

/// A second nightlite with a day of data in every collection the source follows.
fn upstream(t: i64) -> TestServer {
    let up = TestServer::start();
    let entries: Vec<Value> = (0..6)
        .map(|i| sgv("xDrip-DexcomG6", t - i * 5 * MIN, 100 + i))
        .collect();
    up.post_ok("/api/v1/entries", &Value::Array(entries));
    up.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType":"Meal Bolus","insulin":2.5,"carbs":30,"created_at":iso(t - 20 * MIN),
             "enteredBy":"careportal"},
            {"eventType":"Note","notes":"walk","created_at":iso(t - 10 * MIN)}
        ]),
    );
    up.post_ok(
        "/api/v1/devicestatus",
        &json!([{"device":"openaps://phone","created_at":iso(t - 5 * MIN),
                 "openaps":{"iob":{"iob":1.2}}}]),
    );
    up.post_ok(
        "/api/v1/profile",
        &json!({"defaultProfile":"Default","startDate":iso(t - 60 * MIN),
                "created_at":iso(t - 60 * MIN),
                "store":{"Default":{"dia":5,"units":"mg/dl","timezone":"UTC",
                "basal":[{"time":"00:00","value":0.8}]}}}),
    );
    up
}

fn token_url(port: u16, token: &str) -> String {
    format!("http://127.0.0.1:{port}?token={token}")
}

/// A v3 list, with an admin's JWT (API v3 takes no API secret).
fn v3_list(s: &TestServer, path: &str) -> Vec<Value> {
    let (_, token) = s.create_subject("lister", &["admin"]);
    let auth = format!("Bearer {}", s.jwt_for(&token));
    let r = s.request("GET", path, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["result"].as_array().unwrap().clone()
}

fn sorted_identifiers(list: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = list
        .iter()
        .map(|d| d["identifier"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_second_nightlite_is_followed_in_every_collection_once() {
    let t = now_ms();
    let up = upstream(t);
    let (_, token) = up.create_subject("follower", &["readable"]);
    let proxy = Proxy::start(up.port);
    let clock = ManualClock::new(t);
    let data = tempfile::tempdir().unwrap();
    let url = token_url(proxy.port(), &token);
    let b = Bridge::start(follower(&clock, &url).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["source"], "nightscout");
    assert_eq!(counter(&row, "stored"), 6 + 2 + 1 + 1, "{row}");

    for coll in ["entries", "treatments", "devicestatus", "profile"] {
        let theirs = v3_list(&up, &format!("/api/v3/{coll}?limit=100"));
        let ours = v3_list(&b.s, &format!("/api/v3/{coll}?limit=100"));
        assert_eq!(
            sorted_identifiers(&ours),
            sorted_identifiers(&theirs),
            "{coll}: the remote identifiers"
        );
        let their_ids: Vec<Value> = up
            .list(&format!("/api/v1/{coll}.json?count=100"))
            .iter()
            .map(|d| d["_id"].clone())
            .collect();
        for d in b.s.list(&format!("/api/v1/{coll}.json?count=100")) {
            assert!(
                !their_ids.contains(&d["_id"]),
                "{coll}: their _id as ours: {d}"
            );
        }
    }
    let e = &b.entries(10)[0];
    assert_eq!(
        (e["sgv"].as_i64(), e["date"].as_i64()),
        (Some(100), Some(t))
    );
    assert_eq!(e["device"], "xDrip-DexcomG6", "the remote's device kept");
    let tr =
        b.s.list("/api/v1/treatments.json?find[eventType]=Meal%20Bolus");
    assert_eq!(
        (tr[0]["insulin"].as_f64(), tr[0]["carbs"].as_i64()),
        (Some(2.5), Some(30))
    );
    // One JWT, never the token itself on a data request.
    assert_eq!(proxy.count_prefix("/api/v2/authorization/request/"), 1);
    for r in proxy.log() {
        if !r.path.starts_with("/api/v2/") && r.path != "/api/v3/version" {
            assert!(!r.query.contains(&token), "{r:?}");
            assert!(r
                .header("authorization")
                .is_some_and(|h| h.starts_with("Bearer ")));
        }
    }

    // A new reading and a new treatment upstream: the next poll brings those two only.
    up.post_ok(
        "/api/v1/entries",
        &json!([sgv("xDrip-DexcomG6", t + 5 * MIN, 120)]),
    );
    up.post_ok(
        "/api/v1/treatments",
        &json!([{"eventType":"Correction Bolus","insulin":1,"created_at":iso(t + 4 * MIN)}]),
    );
    let row = b.step();
    assert_eq!(counter(&row, "stored"), 12, "{row}");
    // Again with nothing new: nothing stored.
    let row = b.step();
    assert_eq!(counter(&row, "stored"), 12, "{row}");
    assert_eq!(b.entries(100).len(), 7);

    // A treatment deleted upstream through API v3 is deleted here.
    let note = v3_list(&up, "/api/v3/treatments?eventType$eq=Note")[0]["identifier"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, admin) = up.create_subject("deleter", &["admin"]);
    let jwt = format!("Bearer {}", up.jwt_for(&admin));
    let r = up.request(
        "DELETE",
        &format!("/api/v3/treatments/{note}"),
        &[("Authorization", &jwt)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let row = b.step();
    assert_eq!(counter(&row, "stored"), 13, "{row}");
    let left = b.s.list("/api/v1/treatments.json?count=100");
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|d| d["identifier"] != note.as_str()));
    drop(b);

    // A restart reads the backfill window again and stores nothing new.
    let b = Bridge::start(follower(&clock, &url).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert!(counter(&row, "duplicates") >= 11, "{row}");
    assert_eq!(b.entries(100).len(), 7);
    assert_eq!(
        b.s.list("/api/v1/treatments.json?count=100").len(),
        2,
        "deleted stays deleted"
    );
}

#[test]
fn a_refused_jwt_is_renewed_once_and_a_wrong_token_stops_the_source() {
    let t = now_ms();
    let up = upstream(t);
    let (_, token) = up.create_subject("follower", &["readable"]);
    let proxy = Proxy::start(up.port);
    let clock = ManualClock::new(t);
    let b = Bridge::start(follower(&clock, &token_url(proxy.port(), &token)), &clock);
    assert_eq!(proxy.count_prefix("/api/v2/authorization/request/"), 1);

    // The site stops accepting the JWT: one new JWT, the read again, the poll succeeds.
    proxy.refuse(1);
    up.post_ok(
        "/api/v1/entries",
        &json!([sgv("xDrip-DexcomG6", t + 5 * MIN, 130)]),
    );
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(proxy.count_prefix("/api/v2/authorization/request/"), 2);
    assert_eq!(b.entries(100).len(), 7);
    // Refused again after the new JWT: no loop of JWTs, an auth error and a back-off.
    proxy.refuse(100);
    let row = b.step();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "auth", "{row}");
    // At most: the renewal after the first 401, the engine's one new login, its renewal.
    assert!(proxy.count_prefix("/api/v2/authorization/request/") <= 5);
    drop(b);

    // A token the site does not know: fatal at once, never asked again, never shown.
    let proxy = Proxy::start(up.port);
    let wrong = "follower-ffffffffffffffff";
    let b = Bridge::start(follower(&clock, &token_url(proxy.port(), wrong)), &clock);
    let row = b.row();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert_eq!(row["lastError"]["class"], "fatal");
    assert_eq!(proxy.log().len(), 1, "the token exchange");
    clock.advance(1440 * MIN);
    assert_eq!(proxy.log().len(), 1, "no request after a fatal error");
    let text =
        b.s.request(
            "GET",
            "/api/v4/bridges",
            &[("Authorization", &b.auth)],
            None,
        )
        .text;
    assert!(!text.contains(wrong) && !text.contains(&token), "{text}");
}

/// With the API secret only: a reader subject of its own is made on the site with it (once),
/// and its token reads API v3; a wrong secret is fatal.
#[test]
fn the_api_secret_makes_a_reader_subject_and_a_wrong_one_is_fatal() {
    let t = now_ms();
    let up = upstream(t);
    let proxy = Proxy::start(up.port);
    let clock = ManualClock::new(t);
    let url = format!("http://127.0.0.1:{}", proxy.port());
    let with_secret =
        || follower(&clock, &url).env("CONNECT_SOURCE_API_SECRET", crate::support::SECRET);
    let b = Bridge::start(with_secret(), &clock);
    assert_eq!(b.row()["state"], "idle");
    assert_eq!(b.entries(100).len(), 6);
    let log = proxy.log();
    let first = &log[0];
    assert_eq!(first.path, "/api/v2/authorization/subjects");
    assert_eq!(
        first.header("api-secret"),
        Some(crate::support::secret_sha1().as_str())
    );
    let made = log.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(made.body["name"], "nightlite-reader");
    assert_eq!(made.body["roles"], json!(["readable"]));
    // The data came through v3 with the subject's JWT, not the secret.
    let reads: Vec<_> = log
        .iter()
        .filter(|r| r.path.contains("/history/"))
        .collect();
    assert!(!reads.is_empty());
    assert!(reads.iter().all(|r| r.header("api-secret").is_none()
        && r.header("authorization")
            .is_some_and(|h| h.starts_with("Bearer "))));
    drop(b);
    // A restart finds the subject: no second one.
    let b = Bridge::start(with_secret(), &clock);
    assert_eq!(b.row()["state"], "idle");
    let readers = up
        .list("/api/v2/authorization/subjects")
        .into_iter()
        .filter(|s| s["name"] == "nightlite-reader")
        .count();
    assert_eq!(readers, 1);
    assert_eq!(proxy.log().iter().filter(|r| r.method == "POST").count(), 1);
    drop(b);

    let b = Bridge::start(
        follower(&clock, &url).env("CONNECT_SOURCE_API_SECRET", "not-the-secret-0000"),
        &clock,
    );
    let row = b.row();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert!(
        row["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("API secret"),
        "{row}"
    );
    assert!(!row.to_string().contains("not-the-secret"), "{row}");
}

/// The token and the API secret never reach the log, even at trace level, nor the status or
/// `nightlite settings`.
#[test]
fn the_token_and_the_secret_are_never_logged() {
    let fake = FakeNightscout::start(true);
    let token = "follower-Never-Log-This-7733";
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "nightscout")
        .env("CONNECT_SOURCE_ENDPOINT", &token_url(fake.port(), token))
        .spawn();
    let status = super::spawned_status(&p, |b| b["state"] == "stopped: fatal");
    let logs = p.logs();
    assert!(logs.contains("refused the access token"), "{logs}");
    assert!(!logs.contains(token), "the token is in the log");
    assert!(!status.contains(token), "{status}");
    let out = crate::support::command()
        .arg("settings")
        .env("CONNECT_SOURCE_ENDPOINT", token_url(fake.port(), token))
        .env("CONNECT_OUTPUT", token_url(fake.port(), token))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONNECT_SOURCE_ENDPOINT"), "{text}");
    assert!(text.contains("?token=(not shown)"), "{text}");
    assert!(!text.contains(token), "{text}");
    drop(p);

    // The API secret, and its hash (which the header carries and which works as the secret).
    let secret = "Never-Log-This-Secret-5521";
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "nightscout")
        .env("CONNECT_SOURCE_ENDPOINT", &fake.url())
        .env("CONNECT_SOURCE_API_SECRET", secret)
        .spawn();
    let status = super::spawned_status(&p, |b| b["state"] == "stopped: fatal");
    let logs = p.logs();
    assert!(logs.contains("refused the API secret"), "{logs}");
    let hash = crate::support::sha1hex(secret);
    for text in [&logs, &status] {
        assert!(!text.contains(secret) && !text.contains(&hash), "{text}");
    }
}

/// Nightscout stamps srvModified with its clock: a batch shares one millisecond, and more
/// documents than a page can share it. None is skipped, none read forever.
#[test]
fn history_pages_across_a_shared_millisecond_without_skipping() {
    let t = now_ms();
    let fake = FakeNightscout::start(true);
    let stamps = [(t - 3000, 600), (t - 2000, 1500), (t - 1000, 10)];
    let mut n = 0i64;
    for (srv, count) in stamps {
        for _ in 0..count {
            let date = t - 2 * 1440 * MIN + 60_000 + n * 1000;
            fake.add(
                "entries",
                json!({"identifier":format!("e-{n:05}"),"type":"sgv","sgv":100 + n % 50,
                       "date":date,"dateString":iso(date),"device":"fake",
                       "srvModified":srv,"srvCreated":srv}),
            );
            n += 1;
        }
    }
    // What 15.0.7's v1 wrote: no srvModified, so never in history; its v3 search lists it
    // with its _id as identifier.
    fake.add(
        "treatments",
        json!({"identifier":"5f00000000000000000000c1","eventType":"Temporary Target",
               "targetTop":140,"targetBottom":140,"duration":60,"created_at":iso(t - 15 * MIN)}),
    );
    let clock = ManualClock::new(t);
    let b = Bridge::start(
        follower(&clock, &token_url(fake.port(), TOKEN))
            .env("CONNECT_SOURCE_COLLECTIONS", "entries treatments"),
        &clock,
    );
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(counter(&row, "stored"), 2111, "{row}");
    let tt = b.s.list("/api/v1/treatments.json");
    assert_eq!(tt[0]["identifier"], "5f00000000000000000000c1");
    let ours = v3_list(&b.s, "/api/v3/entries?limit=1000&sort=identifier");
    assert_eq!(ours[0]["identifier"], "e-00000");
    assert_eq!(b.entries(3000).len(), 2110, "every document, once");
    let history = fake.count_containing("/history/");
    assert!(history <= 5, "{history} history pages");
    // The next poll asks after the newest millisecond.
    b.step();
    let last = fake
        .log()
        .into_iter()
        .rfind(|r| r.path.starts_with("/api/v3/entries/history/"))
        .unwrap();
    assert!(
        last.path.ends_with(&format!("/{}", t - 1000)),
        "{}",
        last.path
    );
    assert_eq!(counter(&b.row(), "stored"), 2111);
}

/// A site without API v3 (v3 answers 404) and documents without srvModified, as Nightscout
/// 15.0.7's v1 writes them: read by v1 date windows, known by their `_id` as identifier.
#[test]
fn a_site_without_v3_is_read_by_v1_date_windows() {
    let t = now_ms();
    let fake = FakeNightscout::start(false);
    for i in 0..1200i64 {
        let date = t - i * 60_000;
        fake.add(
            "entries",
            json!({"_id":format!("{:024x}", 0x5f00_0000 + i),"type":"sgv","sgv":90 + i % 40,
                   "date":date,"dateString":iso(date),"device":"old-uploader"}),
        );
    }
    fake.add(
        "treatments",
        json!({"_id":"5f00000000000000000000aa","eventType":"Carb Correction","carbs":15,
               "created_at":iso(t - 30 * MIN)}),
    );
    let clock = ManualClock::new(t);
    let data = tempfile::tempdir().unwrap();
    let url = token_url(fake.port(), TOKEN);
    let setup = || {
        follower(&clock, &url)
            .data_dir(data.path())
            .env("CONNECT_SOURCE_COLLECTIONS", "entries treatments")
    };
    let b = Bridge::start(setup(), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(counter(&row, "stored"), 1201, "{row}");
    assert_eq!(fake.count_containing("/history/"), 0);
    let tr = b.s.list("/api/v1/treatments.json");
    assert_eq!(tr[0]["identifier"], "5f00000000000000000000aa");
    assert_ne!(tr[0]["_id"], "5f00000000000000000000aa");

    // A new reading: the next window starts at the newest read less the overlap.
    let date = t + 5 * MIN;
    fake.add(
        "entries",
        json!({"_id":"5f00000000000000000000ff","type":"sgv","sgv":150,"date":date,
               "dateString":iso(date),"device":"old-uploader"}),
    );
    let row = b.step();
    assert_eq!(counter(&row, "stored"), 1202, "{row}");
    let last = fake
        .log()
        .into_iter()
        .rfind(|r| r.path == "/api/v1/entries.json")
        .unwrap();
    assert!(
        last.query.contains(&format!("={}", t - 10 * MIN)),
        "{}",
        last.query
    );
    drop(b);
    let b = Bridge::start(setup(), &clock);
    assert_eq!(counter(&b.row(), "stored"), 0);
    assert_eq!(b.entries(2000).len(), 1201);
}

/// The JWT (8 hours on Nightscout) is renewed before it ends, on the engine's clock, and not
/// before.
#[test]
fn the_jwt_is_renewed_before_it_expires() {
    let t = now_ms();
    let fake = FakeNightscout::start(true);
    fake.add(
        "entries",
        json!({"identifier":"e-1","type":"sgv","sgv":100,"date":t - MIN,"dateString":iso(t - MIN),
               "device":"fake","srvModified":t - MIN}),
    );
    let clock = ManualClock::new(t);
    let b = Bridge::start(
        follower(&clock, &token_url(fake.port(), TOKEN))
            .env("CONNECT_SOURCE_COLLECTIONS", "entries"),
        &clock,
    );
    assert_eq!(fake.jwts(), 1);
    b.step();
    assert_eq!(fake.jwts(), 1, "one JWT serves the polls of its life");
    // Past nine tenths of its 8 hours: the next poll asks for a new one first.
    let before = b.row();
    clock.set(t + 7 * 60 * MIN + 15 * MIN);
    let row = b.wait(|r| r["nextPoll"] != before["nextPoll"]);
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.jwts(), 2);
    let last = fake.log().into_iter().last().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer jwt-2"));
    assert_eq!(counter(&row, "logins"), 1, "a renewal, not a new login");
}

/// A Nightscout whose API3_MAX_LIMIT is below the page asked for answers 400: smaller pages,
/// everything read.
#[test]
fn a_site_with_a_lower_v3_limit_is_read_in_smaller_pages() {
    let t = now_ms();
    let fake = FakeNightscout::start(true);
    fake.max_limit(100);
    for n in 0..250i64 {
        let date = t - 300 * MIN + n * MIN;
        fake.add(
            "entries",
            json!({"identifier":format!("e-{n:03}"),"type":"sgv","sgv":100,"date":date,
                   "dateString":iso(date),"device":"fake","srvModified":t - 250_000 + n}),
        );
    }
    let clock = ManualClock::new(t);
    let b = Bridge::start(
        follower(&clock, &token_url(fake.port(), TOKEN))
            .env("CONNECT_SOURCE_COLLECTIONS", "entries"),
        &clock,
    );
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(counter(&row, "stored"), 250, "{row}");
    let small = fake
        .log()
        .iter()
        .filter(|r| r.path.contains("/history/") && r.query == "limit=100")
        .count();
    assert_eq!(small, 3);
}
