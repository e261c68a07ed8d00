//! Reads, on the store's reader threads. Lists of whole collections (API v3 search and
//! history) of settings are for admins only, as Nightscout's lib/api3 has it.

use super::{Action, Caller};
use crate::error::{Error, Result};
use crate::store::pages::Listed;
use crate::store::query::SqlFilter;
use crate::store::v1json::TimeField;
use crate::store::v3 as rules;
use crate::store::{self, Collection, ListQuery, RawDoc, Store, StoredDoc};

/// Listing a collection: its read permission; settings need `api:settings:admin`.
fn require_list(caller: &Caller, coll: Collection) -> Result<()> {
    if coll == Collection::Settings {
        if caller.has("api:settings:admin") {
            return Ok(());
        }
        return Err(Error::Forbidden(
            "Missing permission api:settings:admin".into(),
        ));
    }
    caller.require(coll, Action::Read)
}

/// An API v1 list (find, sort, count and window already compiled into `q`), as stored text.
pub async fn list(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    q: ListQuery,
) -> Result<Vec<RawDoc>> {
    caller.require(coll, Action::Read)?;
    store
        .read(move |conn| store::list_raw(conn, coll, &q))
        .await
}

/// As [`list`] for lists that may be long: past one chunk, where the rest is, to stream it
/// (store::pages).
pub async fn list_paged(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    q: ListQuery,
    time: Option<TimeField>,
) -> Result<Listed> {
    caller.require(coll, Action::Read)?;
    store
        .read(move |conn| store::pages::list(conn, coll, &q, time))
        .await
}

/// One live document by `_id` or identifier, as stored text.
pub async fn get(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    key: String,
) -> Result<Option<RawDoc>> {
    caller.require(coll, Action::Read)?;
    store
        .read(move |conn| store::get_raw(conn, coll, &key))
        .await
}

/// One document by identifier (or `_id`), deleted ones included (API v3 answers 410 for them).
pub async fn find(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    identifier: String,
) -> Result<Option<StoredDoc>> {
    caller.require(coll, Action::Read)?;
    store
        .read(move |conn| rules::find(conn, coll, &identifier))
        .await
}

/// An API v3 search, compiled (store::v3::compile_filters, compile_sort).
pub struct Search {
    pub filter: SqlFilter,
    pub order: SqlFilter,
    pub limit: usize,
    pub skip: usize,
}

pub async fn search(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    s: Search,
) -> Result<Vec<StoredDoc>> {
    require_list(caller, coll)?;
    store
        .read(move |conn| rules::search(conn, coll, s.filter, s.order, s.limit, s.skip))
        .await
}

/// Changes after `since` (at or after, with `inclusive`), oldest first, deleted documents
/// included: what sync clients page through. `shape` turns the page into the reply on the
/// reader thread, so a page of stored text is spliced without being parsed.
pub async fn history<T, F>(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    since: i64,
    inclusive: bool,
    limit: usize,
    shape: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Vec<RawDoc>) -> Result<T> + Send + 'static,
{
    require_list(caller, coll)?;
    store
        .read(move |conn| shape(rules::history(conn, coll, since, inclusive, limit)?))
        .await
}

/// The time of the newest live document of `device` in `coll` (a bridge's own newest).
pub async fn newest_of_device(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    device: String,
) -> Result<Option<i64>> {
    caller.require(coll, Action::Read)?;
    store
        .read(move |conn| store::newest_of_device(conn, coll, &device))
        .await
}
