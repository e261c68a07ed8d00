//! API v3 search filters: a query string through the handler's own parser
//! (`api::v3::generic::search_params`: sort, limit, skip and `field$op=value` pairs) and, for every v3 collection,
//! `store::v3::compile_filters` and `compile_sort` (as `GET /api/v3/{col}` does). A filter the
//! compiler accepts must also run: the search is executed on an empty database with nightlite's
//! schema, so a filter that would fail in SQLite (a 500 for the client) is a
//! crash here.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use nightlite::api::v3::{generic, COLLECTIONS};
use nightlite::store::{self, v3};
use rusqlite::Connection;

thread_local! {
    static DB: RefCell<Connection> =
        RefCell::new(store::open_in_memory().expect("in-memory database"));
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    // The handler's own parsing of sort, sort$desc, limit, skip and the filters.
    let Ok(search) = generic::search_params(q) else {
        return;
    };
    for coll in COLLECTIONS {
        let Ok(filter) = v3::compile_filters(coll, &search.filters) else {
            continue;
        };
        let Ok(order) = v3::compile_sort(coll, search.sort.as_deref(), search.descending) else {
            continue;
        };
        let shown = format!("{filter:?} ORDER BY {order:?}");
        DB.with(|c| {
            if let Err(e) = v3::search(&c.borrow(), coll, filter, order, search.limit, search.skip) {
                panic!("accepted v3 filter fails in SQLite: {e}\nquery: {q}\nsql: {shown}");
            }
        });
    }
});
