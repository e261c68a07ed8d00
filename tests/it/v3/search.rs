//! API v3 search: filters, sort, limit, skip, fields.

use super::*;

/// Five treatments a minute apart (oldest first), with assorted field types.
fn search_fixture(v3: &V3) -> (i64, Vec<String>) {
    let base = now_ms() - 60 * MIN;
    let docs = [
        json!({"eventType": "Meal Bolus", "carbs": 10, "notes": "lunch", "isSMB": false, "code": "123"}),
        json!({"eventType": "Meal Bolus", "carbs": 20, "notes": "dinner", "isSMB": false, "code": 123}),
        json!({"eventType": "Correction Bolus", "carbs": 30, "notes": "Lunch late", "isSMB": true}),
        json!({"eventType": "Note", "carbs": 40, "notes": "x", "device": "other"}),
        json!({"eventType": "Note", "carbs": 50, "notes": "y"}),
    ];
    let mut ids = vec![];
    for (i, d) in docs.iter().enumerate() {
        let date = base + i64::try_from(i).unwrap() * MIN;
        let body = with(
            json!({"date": date, "app": "s", "device": "dev", "utcOffset": 0}),
            d.clone(),
        );
        ids.push(v3.create("treatments", &body));
    }
    (base, ids)
}

#[test]
fn search_filters() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (base, ids) = search_fixture(&v3);
    let find =
        |q: &str| -> Vec<String> { sorted_identifiers(&v3.list(&format!("/treatments?{q}"))) };
    let pick = |idx: &[usize]| -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|i| ids[*i].clone()).collect();
        v.sort();
        v
    };
    assert_eq!(find(""), pick(&[0, 1, 2, 3, 4]));
    assert_eq!(find("carbs$eq=20"), pick(&[1]));
    assert_eq!(find("carbs=20"), pick(&[1]), "plain field=value is eq");
    assert_eq!(find("carbs$ne=20"), pick(&[0, 2, 3, 4]));
    assert_eq!(find("carbs$gt=30"), pick(&[3, 4]));
    assert_eq!(find("carbs$gte=30"), pick(&[2, 3, 4]));
    assert_eq!(find("carbs$lt=30"), pick(&[0, 1]));
    assert_eq!(find("carbs$lte=30"), pick(&[0, 1, 2]));
    assert_eq!(
        find("carbs$gte=20&carbs$lt=40"),
        pick(&[1, 2]),
        "two operators on one field"
    );
    assert_eq!(find("carbs$in=10|30|99"), pick(&[0, 2]));
    assert_eq!(find("carbs$nin=10|30"), pick(&[1, 3, 4]));
    assert_eq!(
        find(&format!("eventType={}", enc("Meal Bolus"))),
        pick(&[0, 1])
    );
    assert_eq!(
        find(&format!("eventType$in={}", enc("Note|Correction Bolus"))),
        pick(&[2, 3, 4])
    );
    assert_eq!(find("notes$re=unch"), pick(&[0, 2]));
    assert_eq!(find(&format!("notes$re={}", enc("^Lun"))), pick(&[2]));
    assert_eq!(find("isSMB=true"), pick(&[2]), "booleans");
    assert_eq!(find("isSMB=false"), pick(&[0, 1]));
    assert!(
        find("code=123").contains(&ids[1]),
        "an unquoted number matches the number"
    );
    assert_eq!(find("device=other"), pick(&[3]));
    assert_eq!(
        find("eventType=Note&carbs$gt=40"),
        pick(&[4]),
        "filters combine with AND"
    );

    // Dates: epoch ms and ISO, on `date` and `created_at`.
    let third = base + 2 * MIN;
    assert_eq!(find(&format!("date$gte={third}")), pick(&[2, 3, 4]));
    assert_eq!(
        find(&format!("date$lt={}", enc(&iso(third)))),
        pick(&[0, 1])
    );
    assert_eq!(find(&format!("date={third}")), pick(&[2]));
    assert_eq!(
        find(&format!("created_at$gte={}", enc(&iso(third)))),
        pick(&[2, 3, 4])
    );
    assert_eq!(find(&format!("created_at$lt={third}")), pick(&[0, 1]));
    let d = v3.doc("treatments", &ids[3]);
    assert_eq!(
        find(&format!("srvModified$gte={}", ms(&d["srvModified"]))),
        pick(&[3, 4])
    );

    // Only live documents.
    assert_eq!(v3.delete(&format!("/treatments/{}", ids[1])).status, 200);
    assert_eq!(find("eventType=Meal%20Bolus"), pick(&[0]));
    assert_eq!(find(""), pick(&[0, 2, 3, 4]));

    // An unknown operator.
    let r = v3.get("/treatments?device$foo=x");
    assert_error(&r, 400, "Unsupported filter operator foo");
}

/// search/input.js parseValue: a value in single quotes is a string, so it does not match a
/// number (MongoDB compares by type).
#[test]
fn quoted_search_value_matches_strings_only() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (_, ids) = search_fixture(&v3);
    let found = identifiers(&v3.list("/treatments?code='123'"));
    assert_eq!(found, vec![ids[0].clone()], "only the string \"123\"");
}

#[test]
fn search_sort_limit_skip_fields() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (_, ids) = search_fixture(&v3);
    let carbs = |q: &str| -> Vec<i64> {
        v3.list(&format!("/treatments?{q}"))
            .iter()
            .map(|d| ms(&d["carbs"]))
            .collect()
    };
    assert_eq!(carbs("sort=carbs"), vec![10, 20, 30, 40, 50]);
    assert_eq!(carbs("sort$desc=carbs"), vec![50, 40, 30, 20, 10]);
    assert_eq!(carbs("sort=date"), vec![10, 20, 30, 40, 50]);
    assert_eq!(carbs("sort$desc=date"), vec![50, 40, 30, 20, 10]);
    assert_eq!(carbs("sort=carbs&limit=2"), vec![10, 20]);
    assert_eq!(carbs("sort=carbs&limit=2&skip=2"), vec![30, 40]);
    assert_eq!(carbs("sort$desc=carbs&skip=4"), vec![10]);
    assert_eq!(carbs("sort=carbs&skip=5"), Vec::<i64>::new());
    assert_eq!(carbs("sort=carbs&limit=1000").len(), 5);
    let r = v3.get("/treatments?sort=carbs&sort$desc=carbs");
    assert_error(&r, 400, "Parameters sort and sort_desc cannot be combined");
    for bad in ["0", "-1", "1001", "abc"] {
        let r = v3.get(&format!("/treatments?limit={bad}"));
        assert_error(&r, 400, "Parameter limit out of tolerance");
        let r = v3.get(&format!("/treatments/history/1700000000000?limit={bad}"));
        assert_error(&r, 400, "Parameter limit out of tolerance");
    }
    for bad in ["-1", "abc"] {
        let r = v3.get(&format!("/treatments?skip={bad}"));
        assert_error(&r, 400, "Parameter skip out of tolerance");
    }
    // fields: exactly the fields asked for.
    let items = v3.list("/treatments?sort=carbs&fields=carbs,notes");
    assert_eq!(items[0], json!({"carbs": 10, "notes": "lunch"}));
    assert!(
        items.iter().all(|d| d.as_object().unwrap().len() == 2),
        "{items:?}"
    );
    let items = v3.list("/treatments?sort=carbs&fields=identifier");
    assert_eq!(items[0], json!({"identifier": ids[0]}));
}

#[test]
fn search_limit_defaults_to_1000() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let base = now_ms() - 2000 * MIN;
    let batch: Vec<Value> = (0..1005)
        .map(|i| sgv("bulk", base + i * MIN, 100 + i % 50))
        .collect();
    assert_eq!(
        s.post_ok("/api/v1/entries", &Value::Array(batch)).len(),
        1005
    );
    assert_eq!(v3.list("/entries").len(), 1000);
    assert_eq!(v3.list("/entries?limit=1000").len(), 1000);
    assert_eq!(v3.list("/entries?limit=1000&skip=1000").len(), 5);
    let all = v3.list("/entries?sort=date&limit=3");
    assert_eq!(ints(&all, "date"), vec![base, base + MIN, base + 2 * MIN]);
    // Entries' own date filters (numbers in storage), epoch and ISO.
    let from = base + 1000 * MIN;
    assert_eq!(v3.list(&format!("/entries?date$gte={from}")).len(), 5);
    assert_eq!(
        v3.list(&format!("/entries?date$gte={}", enc(&iso(from))))
            .len(),
        5
    );
    assert_eq!(
        v3.list("/entries/history/1700000000000").len(),
        1000,
        "history limit too"
    );
}
