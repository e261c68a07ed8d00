//! `check` and `sample` against a second nightlite started in this process, with a local
//! store whose sync_known rows the test writes as a sync run would leave them (the engine
//! that writes them is built elsewhere): the same documents agree by digest and by sample,
//! an edit on the site after the "sync" shows as drift in both, a row the site lacks too.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::config::bridges::{Password, RemoteSite};
use crate::documents::{self, Action, Caller};
use crate::store::sync_digest::{put_known, Known};

const SECRET: &str = "integrity-secret-0123";
const SITE: &str = "http://site.test";

/// A nightlite on 127.0.0.1:0 in a thread of its own; stops when the sender is dropped.
fn site(dir: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let map: HashMap<String, String> = [
        ("API_SECRET", SECRET),
        ("AUTH_DEFAULT_ROLES", "denied"),
        ("NIGHTLITE_DATA_DIR", dir.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = crate::Config::from_map(&map).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(crate::serve(config, listener, async move {
            let _ = rx.await;
        }))
    });
    (base, tx)
}

/// The site's client as the sync makes it: the API secret, reading as an admin subject.
async fn remote_of(base: &str) -> Remote {
    let site = RemoteSite {
        base: base.to_string(),
        token: None,
        api_secret: Some(Password::new(SECRET.to_string())),
    };
    let clock: Arc<dyn crate::connect::Clock> = Arc::new(crate::connect::SystemClock);
    let http = crate::connect::http::Http::new(clock.clone(), 10_000).unwrap();
    let remote = Remote::new(&site, http, clock).with_subject("integrity-test", &["admin"]);
    // The server may still be starting.
    for _ in 0..200 {
        if remote.login().await.is_ok() {
            return remote;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the site never answered");
}

fn entry(i: i64, sgv: i64) -> Value {
    let date = 1_709_251_200_000 + i * 300_000;
    json!({"_id": format!("5e00000000000000000000{i:02}"), "identifier": format!("entry-{i}"),
           "type": "sgv", "sgv": sgv, "date": date, "device": "test"})
}

async fn post(remote: &Remote, docs: Value) {
    let r = remote.post("/api/v1/entries", &docs).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// What a sync run leaves behind: the entries here, and per document in sync_known its
/// srvModified on the site (API v3 history) and the hash of its content as API v1 shows it.
async fn synced(store: &Store, remote: &Remote, entries: &[Value]) {
    let docs: Vec<_> = entries
        .iter()
        .flat_map(|e| {
            crate::store::prepare::prepare(Collection::Entries, e.clone(), "e", 0).unwrap()
        })
        .collect();
    documents::upsert(
        store,
        &Caller::server("test"),
        Collection::Entries,
        docs,
        crate::store::upsert::Merge::Shallow,
        Action::Create,
        Vec::new(),
    )
    .await
    .unwrap();
    let history = remote
        .changes("entries", crate::store::v3::MIN_TIMESTAMP, 1000)
        .await
        .unwrap()
        .docs;
    let v1 = remote.dated("entries", 0, 1000).await.unwrap().docs;
    assert_eq!((history.len(), v1.len()), (entries.len(), entries.len()));
    let rows: Vec<Known> = history
        .iter()
        .map(|d| {
            let identity = d["identifier"].as_str().unwrap().to_string();
            let shown = v1
                .iter()
                .find(|v| v["identifier"] == d["identifier"])
                .unwrap();
            Known {
                identity,
                local_modified: None,
                remote_modified: crate::remote::read::srv_modified(d),
                hash: crate::sync::content::hash(shown.as_object().unwrap(), true),
            }
        })
        .collect();
    store
        .write(move |c| put_known(c, SITE, Collection::Entries, &rows))
        .await
        .unwrap();
}

#[test]
fn integrity_by_digest_and_by_sample_against_a_second_nightlite() {
    let there = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let (base, _stop) = site(there.path());
    let store = Store::open(here.path()).unwrap();
    let entries = [entry(1, 100), entry(2, 110), entry(3, 120)];
    actix_web::rt::System::new().block_on(async {
        let remote = remote_of(&base).await;
        post(&remote, json!(entries)).await;
        synced(&store, &remote, &entries).await;
        let coll = Collection::Entries;

        let i = check(&remote, &store, SITE, coll, 0).await.unwrap();
        assert_eq!((i.method, i.matches), ("digest", true), "{i:?}");
        assert_eq!((i.local_count, i.remote_count, i.compared), (3, Some(3), 3));
        // A range of the site's srvModified: both sides bounded alike.
        let history = remote.changes("entries", crate::store::v3::MIN_TIMESTAMP, 1000);
        let docs = history.await.unwrap().docs;
        let first = docs
            .iter()
            .filter_map(crate::remote::read::srv_modified)
            .min();
        let first = first.unwrap();
        let i = check(&remote, &store, SITE, coll, first).await.unwrap();
        assert_eq!(
            (i.local_count, i.remote_count, i.matches),
            (2, Some(2), true)
        );
        for api in [Api::V3, Api::V1] {
            let i = sample(&remote, &store, SITE, coll, api).await.unwrap();
            assert_eq!((i.method, i.matches), ("sample", true), "{api:?}: {i:?}");
            assert_eq!((i.compared, i.differing), (3, Some(0)), "{api:?}");
        }

        // Drift: one entry changed on the site after the sync.
        post(&remote, json!([entry(2, 999)])).await;
        let i = check(&remote, &store, SITE, coll, 0).await.unwrap();
        assert_eq!((i.method, i.matches), ("digest", false), "{i:?}");
        assert_eq!((i.local_count, i.remote_count), (3, Some(3)));
        for api in [Api::V3, Api::V1] {
            let i = sample(&remote, &store, SITE, coll, api).await.unwrap();
            assert!(!i.matches, "{api:?}: {i:?}");
            assert_eq!((i.compared, i.differing), (3, Some(1)), "{api:?}");
        }

        // A document known to be on the site but neither there nor here: the sample finds
        // both sides agreeing it is gone; the digest, that the site lacks a known document.
        let ghost = Known {
            identity: "treatment-9".into(),
            local_modified: None,
            remote_modified: Some(1),
            hash: String::new(),
        };
        store
            .write(move |c| put_known(c, SITE, Collection::Treatments, &[ghost]))
            .await
            .unwrap();
        let t = Collection::Treatments;
        let i = sample(&remote, &store, SITE, t, Api::V3).await.unwrap();
        assert_eq!((i.compared, i.differing, i.matches), (1, Some(0), true));
        let i = check(&remote, &store, SITE, t, 0).await.unwrap();
        assert_eq!(
            (i.local_count, i.remote_count, i.matches),
            (1, Some(0), false)
        );
    });
}
