#![allow(clippy::unwrap_used)]

use serde_json::{json, Map, Value};

use super::*;
use crate::auth::Access;
use crate::error::Error;
use crate::store::changes::Op;
use crate::store::prepare::{prepare, NewDoc};
use crate::store::upsert::{Merge, Outcome as V1Outcome, Written};
use crate::store::{Collection, Store};

const T: Collection = Collection::Treatments;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn caller(permissions: &[&str]) -> Caller {
    Caller::new(&Access {
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        defaults: false,
        failed: false,
        subject: None,
    })
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn note(at: &str) -> Vec<NewDoc> {
    let doc = json!({ "eventType": "Note", "created_at": at, "notes": "n" });
    prepare(T, doc, "t", 0).unwrap()
}

async fn count(store: &Store) -> usize {
    let everything = crate::store::ListQuery {
        filter: crate::store::query::SqlFilter {
            sql: "1".into(),
            params: vec![],
        },
        order: None,
        limit: 100,
        skip: 0,
        include_deleted: false,
    };
    list(store, &Caller::server("test"), T, everything)
        .await
        .unwrap()
        .len()
}

/// A v1 POST of `docs`, which must succeed.
async fn post(store: &Store, caller: &Caller, docs: Vec<NewDoc>) -> Vec<Written> {
    let create = Action::Create;
    upsert(store, caller, T, docs, Merge::Replace, create, vec![])
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_upload_is_stored_once_and_published_once() {
    let (_dir, store) = open();
    let mut changes = store.subscribe();
    let bridge = Caller::server("bridge");
    let at = "2026-12-07T08:00:00.000Z";
    let first = post(&store, &bridge, note(at)).await;
    let again = post(&store, &bridge, note(at)).await;
    assert_eq!(first[0].outcome, V1Outcome::Inserted);
    assert_eq!(again[0].outcome, V1Outcome::Unchanged);
    assert_eq!(
        again[0].id, first[0].id,
        "the same document, by its dedup key"
    );
    assert_eq!(count(&store).await, 1);
    let set = changes.recv().await.unwrap();
    assert_eq!(set.changes.len(), 1);
    assert_eq!(set.changes[0].op, Op::Insert);
    assert!(
        changes.try_recv().is_err(),
        "an unchanged document publishes nothing"
    );
}

#[tokio::test]
async fn a_caller_without_the_permission_is_refused_and_nothing_is_written() {
    let (_dir, store) = open();
    let reader = caller(&["api:treatments:read"]);
    let at = "2026-12-07T08:00:00.000Z";
    let refused = upsert(
        &store,
        &reader,
        T,
        note(at),
        Merge::Replace,
        Action::Create,
        Vec::<Written>::new(),
    )
    .await;
    match refused {
        Err(Error::Forbidden(m)) => assert_eq!(m, "Missing permission api:treatments:create"),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(count(&store).await, 0);
    let doc = object(json!({ "identifier": "a", "eventType": "Note", "date": 1, "app": "t" }));
    assert!(matches!(
        create(&store, &reader, T, doc).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        delete_id(&store, &caller(&["api:entries:delete"]), T, "a").await,
        Err(Error::Forbidden(_))
    ));
}

fn v3_doc(identifier: &str, notes: &str) -> Map<String, Value> {
    object(json!({
        "identifier": identifier,
        "eventType": "Note",
        "date": 1_765_094_400_000_i64,
        "app": "test",
        "notes": notes,
    }))
}

#[tokio::test]
async fn a_v3_create_of_a_stored_identifier_is_a_deduplication_that_needs_update() {
    let (_dir, store) = open();
    let creator = caller(&["api:treatments:create", "api:treatments:read"]);
    let saved = create(&store, &creator, T, v3_doc("x1", "one"))
        .await
        .unwrap();
    assert_eq!(saved.outcome, Outcome::Inserted);
    assert_eq!(saved.identifier, "x1");
    assert!(matches!(
        create(&store, &creator, T, v3_doc("x1", "two")).await,
        Err(Error::Forbidden(m)) if m == "Missing permission api:treatments:update"
    ));
    let both = caller(&["api:treatments:create,update"]);
    let again = create(&store, &both, T, v3_doc("x1", "two")).await.unwrap();
    assert_eq!(again.outcome, Outcome::Deduplicated { previous: None });
    assert!(again.srv_modified > saved.srv_modified);
    let stored = find(&store, &both, T, "x1".into()).await;
    assert!(
        matches!(stored, Err(Error::Forbidden(_))),
        "reading needs read"
    );
    let stored = find(&store, &Caller::server("t"), T, "x1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.doc["notes"], "two");
}

#[tokio::test]
async fn a_v3_batch_stores_the_good_items_and_refuses_the_bad_each_with_its_reason() {
    let (_dir, store) = open();
    let items = vec![
        Ok(v3_doc("b1", "one")),
        Err(Error::bad_request("Bad or missing request body")),
        Ok(object(
            json!({ "identifier": "b3", "eventType": "Note", "app": "t" }),
        )),
        Ok(v3_doc("b1", "changed")),
        Ok(v3_doc("b5", "five")),
    ];
    let creator = caller(&["api:treatments:create,read"]);
    let results = create_each(&store, &creator, T, items).await.unwrap();
    assert_eq!(results.len(), 5);
    assert!(results[0].is_ok());
    assert!(matches!(&results[1], Err(Error::BadRequest(_))));
    assert!(
        matches!(&results[2], Err(Error::BadRequest(m)) if m == "Bad or missing date field"),
        "refused by the rules: {:?}",
        results[2]
    );
    assert!(
        matches!(&results[3], Err(Error::Forbidden(_))),
        "a duplicate needs update"
    );
    assert!(results[4].is_ok());
    assert_eq!(count(&store).await, 2);
    let b1 = find(&store, &creator, T, "b1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b1.doc["notes"], "one", "the refused item changed nothing");
}

#[tokio::test]
async fn replace_creates_then_updates_and_checks_the_permission_for_what_it_does() {
    let (_dir, store) = open();
    let creator = caller(&["api:treatments:create"]);
    let saved = replace(&store, &creator, T, "p1".into(), v3_doc("p1", "one"), None)
        .await
        .unwrap();
    assert_eq!(saved.outcome, Outcome::Inserted);
    assert!(matches!(
        replace(&store, &creator, T, "p1".into(), v3_doc("p1", "two"), None).await,
        Err(Error::Forbidden(m)) if m == "Missing permission api:treatments:update"
    ));
    let updater = caller(&["api:treatments:update"]);
    let updated = replace(&store, &updater, T, "p1".into(), v3_doc("p1", "two"), None)
        .await
        .unwrap();
    assert_eq!(updated.outcome, Outcome::Updated);
    let patched = patch(
        &store,
        &updater,
        T,
        "p1".into(),
        object(json!({ "notes": "three" })),
        None,
    )
    .await
    .unwrap();
    assert!(patched.srv_modified > updated.srv_modified);
}

#[tokio::test]
async fn a_deleted_document_leaves_the_lists_and_stays_in_history() {
    let (_dir, store) = open();
    let server = Caller::server("t");
    let written = post(&store, &server, note("2026-12-07T09:00:00.000Z")).await;
    assert_eq!(
        delete_id(&store, &server, T, &written[0].id).await.unwrap(),
        1
    );
    assert_eq!(count(&store).await, 0);
    let page = history(&store, &server, T, 0, false, 10, Ok).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(!page[0].is_valid);
    let settings = history(
        &store,
        &caller(&["api:settings:read"]),
        Collection::Settings,
        0,
        false,
        10,
        Ok,
    )
    .await;
    assert!(
        matches!(settings, Err(Error::Forbidden(m)) if m == "Missing permission api:settings:admin")
    );
}

/// Another site's version is written only over the version the caller saw: a document
/// edited here meanwhile is left alone (the sync sees a conflict next time, not a lost edit).
#[tokio::test]
async fn an_incoming_document_never_overwrites_an_edit_made_meanwhile() {
    let (_dir, store) = open();
    let server = Caller::server("test");
    let first = post(&store, &server, note("2024-01-01T00:00:00Z")).await;
    let ident = first[0].doc["identifier"].as_str().unwrap().to_string();
    let seen = first[0].srv_modified;
    // Edited here after the sync looked at it.
    let mut edited = first[0].doc.clone();
    edited.insert("notes".into(), "edited here".into());
    let edit = prepare(T, Value::Object(edited), "t", 0).unwrap();
    post(&store, &server, edit).await;
    let mut theirs = first[0].doc.clone();
    theirs.insert("notes".into(), "from the site".into());
    let incoming = Incoming::Store(prepare(T, Value::Object(theirs), "t", 0).unwrap());
    let outcomes = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let o = outcomes.clone();
    apply_incoming(
        &store,
        &server,
        T,
        Merge::Replace,
        vec![(incoming, ident.clone(), Some(seen))],
        move |_, _, a| {
            o.lock().unwrap().push(a);
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(*outcomes.lock().unwrap(), [Applied::Changed]);
    let now = find(&store, &server, T, ident).await.unwrap().unwrap();
    assert_eq!(now.doc["notes"], "edited here");
}
