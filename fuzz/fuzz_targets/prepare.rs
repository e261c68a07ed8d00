//! Document preparation: any JSON body, for every collection, through prepare() and, when
//! accepted, into the table with upsert (rolled back): a document prepare accepts must be
//! storable (valid JSON for the CHECK, no SQL error), or the client would get a 500. The
//! first 24 bytes also become three floats placed in a Meal Bolus treatment's numeric fields,
//! so extreme numbers (preBolus, carbs, insulin) are reached at once.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use nightlite::store::upsert::{self, Merge};
use nightlite::store::{self, prepare, Collection};
use rusqlite::Connection;
use serde_json::Value;

const NOW: i64 = 1_700_000_000_000;

thread_local! {
    static DB: RefCell<Connection> =
        RefCell::new(store::open_in_memory().expect("in-memory database"));
}

fn check(items: &[Value]) {
    for coll in Collection::ALL {
        let mut docs = vec![];
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match prepare::prepare(coll, item.clone(), &format!("x[{i}]"), NOW) {
                Ok(d) => docs.extend(d),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        DB.with(|c| {
            let c = c.borrow();
            c.execute_batch("SAVEPOINT fuzz").expect("savepoint");
            for d in docs {
                let doc = d.doc.clone();
                if let Err(e) = upsert::upsert(&c, coll, d, Merge::Replace, NOW) {
                    panic!("prepared {coll:?} document cannot be stored: {e}\n{doc:?}");
                }
            }
            c.execute_batch("ROLLBACK TO fuzz; RELEASE fuzz")
                .expect("rollback");
        });
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        let items = match body {
            Value::Array(items) => items,
            other => vec![other],
        };
        check(&items);
    }
    if data.len() >= 24 {
        let f: Vec<f64> = data[..24]
            .chunks(8)
            .map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
            .collect();
        let num = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        let doc = serde_json::json!({
            "eventType": "Meal Bolus",
            "created_at": "2024-01-01T10:00:00Z",
            "preBolus": num(f[0]),
            "carbs": num(f[1]),
            "insulin": num(f[2]),
        });
        check(&[doc]);
    }
});
