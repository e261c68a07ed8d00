//! The v1 find language: a query string through qs::parse and, for every collection,
//! build_list (compile_find, compile_sort, count). A query the compiler accepts must also run:
//! its SQL is executed on an empty database with nightlite's schema, so a filter that would
//! fail in SQLite (a 500 for the client) is a crash here.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use nightlite::qs;
use nightlite::store::query::{self, ListRequest};
use nightlite::store::{self, Collection};
use rusqlite::Connection;
use serde_json::Value;

thread_local! {
    static DB: RefCell<Connection> =
        RefCell::new(store::open_in_memory().expect("in-memory database"));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tree) = qs::parse(text) else {
        return;
    };
    let null = Value::Null;
    for coll in Collection::ALL {
        let find = tree.get("find").unwrap_or(&null);
        let _ = query::has_time_filter(coll, find);
        let req = ListRequest {
            find,
            sort: tree.get("sort").unwrap_or(&null),
            count: qs::scalar(&tree, "count"),
            default_count: 10,
            window: true,
            extra: None,
        };
        let Ok(q) = query::build_list(coll, &req, 1_700_000_000_000) else {
            continue;
        };
        DB.with(|c| {
            if let Err(e) = store::list(&c.borrow(), coll, &q) {
                panic!("accepted query fails in SQLite: {e}\nquery: {text}\nsql: {q:?}");
            }
        });
    }
});
