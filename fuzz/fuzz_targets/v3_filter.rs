//! API v3 search filters: a query string through the handler's own parser
//! (`api::v3::generic::filters`: `field$op=value` pairs) and, for every v3 collection,
//! `store::v3::compile_filters` and `compile_sort` (as `GET /api/v3/{col}` does). A filter the
//! compiler accepts must also run: the search is executed on an empty database with nightlite's
//! schema, so a filter that would fail in SQLite (a 500 for the client) is a
//! crash here.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use nightlite::api::qs;
use nightlite::api::v3::{generic, COLLECTIONS};
use nightlite::store::{self, v3};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

fn db() -> Connection {
    let mut c = Connection::open_in_memory().expect("in-memory database");
    store::migrate::migrate(&mut c).expect("schema");
    // The server registers its own REGEXP (store::sqlfn, crate-private); on an empty
    // database the SQL only needs one to exist.
    c.create_scalar_function("regexp", 2, FunctionFlags::SQLITE_DETERMINISTIC, |_| {
        Ok(false)
    })
    .expect("regexp");
    c
}

thread_local! {
    static DB: RefCell<Connection> = RefCell::new(db());
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filters) = generic::filters(q) else {
        return;
    };
    let sort = qs::first_value(q, "sort");
    let sort_desc = qs::first_value(q, "sort$desc");
    if sort.is_some() && sort_desc.is_some() {
        return;
    }
    let skip = match qs::first_value(q, "skip") {
        None => 0,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => return,
        },
    };
    for coll in COLLECTIONS {
        let Ok(filter) = v3::compile_filters(coll, &filters) else {
            continue;
        };
        let Ok(order) = v3::compile_sort(
            coll,
            sort_desc.as_deref().or(sort.as_deref()),
            sort_desc.is_some(),
        ) else {
            continue;
        };
        let shown = format!("{filter:?} ORDER BY {order:?}");
        DB.with(|c| {
            if let Err(e) = v3::search(&c.borrow(), coll, filter, order, 10, skip) {
                panic!("accepted v3 filter fails in SQLite: {e}\nquery: {q}\nsql: {shown}");
            }
        });
    }
});
