//! Lists too long to hold in memory: a v1 list of up to [`super::MAX_LIST`] documents (an
//! export of years of readings) is read as the matching rows' `seq` numbers, in the list's
//! order, and then in chunks of at most [`CHUNK_ROWS`] rows or [`CHUNK_BYTES`] of text, each a
//! read of its own, so the reply streams out while no more than a chunk is held (and no
//! reader connection waits on a slow client). A list that fits in one chunk is read whole,
//! as before.
//!
//! Between the first read and a chunk's, a document may change or be deleted: a chunk shows
//! it as it is then, and leaves out what is no longer live (as a Mongo cursor would).

use rusqlite::Connection;

use super::v1json::{self, TimeField};
use super::{Collection, ListQuery, RawDoc, StoredDoc, COLUMNS};
use crate::error::Result;

/// A chunk holds at most this many documents ...
pub const CHUNK_ROWS: usize = 1000;
/// ... and stops after the document that takes its text past this many bytes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// A list as read: whole when it fits in a chunk, else where its documents are.
pub enum Listed {
    All(Vec<RawDoc>),
    Paged(Paged),
}

/// The `seq` of every matching document in the list's order, and the newest `time` among
/// them (Last-Modified needs it before the first byte is sent).
pub struct Paged {
    pub seqs: Vec<i64>,
    pub newest: Option<i64>,
}

/// Runs a list query; `time` is the field whose newest value a paged list reports.
pub fn list(
    conn: &Connection,
    coll: Collection,
    q: &ListQuery,
    time: Option<TimeField>,
) -> Result<Listed> {
    let (sql, params) = super::list_sql(coll, q);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut docs: Vec<RawDoc> = Vec::new();
    let mut bytes = 0;
    let mut paged: Option<Paged> = None;
    while let Some(row) = rows.next()? {
        let doc = StoredDoc::from_row(row)?;
        if let Some(p) = &mut paged {
            note(p, &doc, time)?;
            continue;
        }
        bytes += doc.doc.len();
        docs.push(doc);
        if docs.len() > CHUNK_ROWS || bytes > CHUNK_BYTES {
            let mut p = Paged {
                seqs: Vec::new(),
                newest: None,
            };
            for d in std::mem::take(&mut docs) {
                note(&mut p, &d, time)?;
            }
            paged = Some(p);
        }
    }
    Ok(match paged {
        Some(p) => Listed::Paged(p),
        None => Listed::All(docs),
    })
}

fn note(p: &mut Paged, doc: &RawDoc, time: Option<TimeField>) -> Result<()> {
    p.seqs.push(doc.seq);
    if let Some(t) = time {
        p.newest = p.newest.max(v1json::time_of(&doc.doc, t)?);
    }
    Ok(())
}

/// The live documents of the next chunk of `seqs`, and how many of `seqs` it used.
pub fn chunk(conn: &Connection, coll: Collection, seqs: &[i64]) -> Result<(Vec<RawDoc>, usize)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE seq = ? AND is_valid = 1",
        coll.table()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut docs = Vec::new();
    let mut bytes = 0;
    let mut used = 0;
    for seq in seqs.iter().take(CHUNK_ROWS) {
        used += 1;
        let mut rows = stmt.query([seq])?;
        if let Some(row) = rows.next()? {
            let doc = StoredDoc::from_row(row)?;
            bytes += doc.doc.len();
            docs.push(doc);
        }
        if bytes > CHUNK_BYTES {
            break;
        }
    }
    Ok((docs, used))
}
