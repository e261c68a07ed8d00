//! Reads for the effective profile (src/profiles): the profile documents, and the `Profile
//! Switch` treatments that can be in force in a time range.

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoredDoc, COLUMNS};
use crate::error::Result;

/// The live profile documents that can be in force from `from` to `to` (inclusive), oldest
/// first (startDate, then storage order): the newest starting at or before `from` (else the
/// first of all) and those starting after it up to `to`.
pub fn documents(conn: &Connection, from: i64, to: i64) -> Result<Vec<StoredDoc>> {
    let at_from = format!(
        "SELECT {COLUMNS} FROM profile WHERE is_valid = 1 AND mills <= ?1
         ORDER BY mills DESC, seq DESC LIMIT 1"
    );
    let first =
        format!("SELECT {COLUMNS} FROM profile WHERE is_valid = 1 ORDER BY mills, seq LIMIT 1");
    let base = match conn
        .prepare_cached(&at_from)?
        .query_row([from], StoredDoc::from_row)
        .optional()?
    {
        Some(d) => Some(d),
        None => conn
            .prepare_cached(&first)?
            .query_row([], StoredDoc::from_row)
            .optional()?,
    };
    let after = format!(
        "SELECT {COLUMNS} FROM profile WHERE is_valid = 1 AND mills > ?1 AND mills <= ?2
         ORDER BY mills, seq"
    );
    let mut stmt = conn.prepare_cached(&after)?;
    let rows = stmt.query_map(params![from, to], StoredDoc::from_row)?;
    let mut out = Vec::new();
    for raw in base.into_iter().map(Ok).chain(rows) {
        let d = StoredDoc::parse(raw?)?;
        // The first of all may itself start inside the range.
        if out.iter().all(|o: &StoredDoc| o.seq != d.seq) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The live `Profile Switch` treatments that can be in force from `from` to `to` (inclusive):
/// those starting in that range, and before `from` (back to `floor`, the start of the profile
/// document in force at `from`: older switches never count) the newest ones down to and
/// including the first for which `stop` holds; the caller stops at a switch without a
/// duration, after which nothing older can be in force. Oldest first, ties in storage order.
pub fn switches(
    conn: &Connection,
    floor: i64,
    from: i64,
    to: i64,
    mut stop: impl FnMut(&StoredDoc) -> bool,
) -> Result<Vec<StoredDoc>> {
    let before = format!(
        "SELECT {COLUMNS} FROM treatments WHERE eventType = 'Profile Switch' AND is_valid = 1
         AND mills >= ?1 AND mills < ?2 ORDER BY mills DESC, seq DESC"
    );
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(&before)?;
    let mut rows = stmt.query(params![floor, from])?;
    while let Some(row) = rows.next()? {
        let doc = StoredDoc::parse(StoredDoc::from_row(row)?)?;
        let last = stop(&doc);
        out.push(doc);
        if last {
            break;
        }
    }
    out.reverse();
    let within = format!(
        "SELECT {COLUMNS} FROM treatments WHERE eventType = 'Profile Switch' AND is_valid = 1
         AND mills >= ?1 AND mills <= ?2 ORDER BY mills, seq"
    );
    let mut stmt = conn.prepare_cached(&within)?;
    let rows = stmt.query_map(params![from, to], StoredDoc::from_row)?;
    for r in rows {
        out.push(StoredDoc::parse(r?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn insert(conn: &Connection, table: &str, id: &str, mills: i64, doc: &str, valid: i64) {
        conn.execute(
            &format!(
                "INSERT INTO {table} (id, doc, mills, srv_created, is_valid)
                 VALUES (?1, ?2, ?3, 0, ?4)"
            ),
            params![id, doc, mills, valid],
        )
        .unwrap();
    }

    #[test]
    fn switches_in_range_and_back_to_the_first_permanent_one() {
        let conn = super::super::open_in_memory().unwrap();
        let ps = |d: &str| format!(r#"{{"eventType":"Profile Switch","duration":{d}}}"#);
        insert(&conn, "treatments", "a", 10, &ps("0"), 1);
        insert(&conn, "treatments", "b", 20, &ps("0"), 1);
        insert(&conn, "treatments", "c", 30, &ps("60"), 1);
        insert(&conn, "treatments", "gone", 35, &ps("0"), 0);
        insert(
            &conn,
            "treatments",
            "note",
            36,
            r#"{"eventType":"Note"}"#,
            1,
        );
        insert(&conn, "treatments", "d", 40, &ps("0"), 1);
        insert(&conn, "treatments", "e", 60, &ps("0"), 1);
        let permanent = |d: &StoredDoc| d.doc.get("duration") == Some(&serde_json::json!(0));
        let ids = |v: Vec<StoredDoc>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(
            ids(switches(&conn, 0, 40, 50, permanent).unwrap()),
            ["b", "c", "d"]
        );
        assert_eq!(
            ids(switches(&conn, 25, 40, 60, permanent).unwrap()),
            ["c", "d", "e"]
        );
        insert(&conn, "profile", "p2", 20, "{}", 1);
        insert(&conn, "profile", "p1", 10, "{}", 1);
        insert(&conn, "profile", "p0", 5, "{}", 0);
        insert(&conn, "profile", "p1b", 10, "{}", 1);
        insert(&conn, "profile", "p3", 30, "{}", 1);
        let docs = |from, to| ids(documents(&conn, from, to).unwrap());
        assert_eq!(docs(15, 25), ["p1b", "p2"], "the later stored of a tie");
        assert_eq!(docs(20, 20), ["p2"]);
        assert_eq!(
            docs(0, 15),
            ["p1", "p1b"],
            "before all: the first, then the rest"
        );
        assert_eq!(docs(0, 5), ["p1"]);
        assert_eq!(docs(40, 50), ["p3"]);
    }
}
