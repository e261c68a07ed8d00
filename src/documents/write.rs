//! Writes. Each runs in one job of the store's writer (one transaction with the other jobs of
//! its group), so a write is on disk and published to followers before it is answered.

use serde_json::{Map, Value};

use super::{Action, Caller, Outcome, Saved};
use crate::dates;
use crate::error::Result;
use crate::store::prepare::NewDoc;
use crate::store::query::{self, SqlFilter};
use crate::store::upsert::{self, Merge, Written};
use crate::store::v3 as rules;
use crate::store::{self, Collection, Store};

/// Documents for [`upsert`]: API v1's rules prepare them (store::prepare).
pub trait Source: Send + 'static {
    /// Hands each prepared document to `each`, in order; stops at the first error.
    fn prepare_each(
        &self,
        coll: Collection,
        now: i64,
        each: &mut dyn FnMut(NewDoc) -> Result<()>,
    ) -> Result<()>;

    /// Prepares every document once before the writer is taken, so a bad one is refused
    /// without waiting for it; stops at the first error. They are dropped: the writer
    /// prepares each again as it writes it ([`Source::each`]), so only one is held prepared.
    fn check(&self, coll: Collection, now: i64) -> Result<()> {
        self.prepare_each(coll, now, &mut |_| Ok(()))
    }

    /// The documents as the writer writes them, in order.
    fn each(
        self,
        coll: Collection,
        now: i64,
        each: &mut dyn FnMut(NewDoc) -> Result<()>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.prepare_each(coll, now, each)
    }
}

/// Documents already prepared: nothing to check, and each is moved into the write.
impl Source for Vec<NewDoc> {
    fn prepare_each(
        &self,
        _: Collection,
        _: i64,
        each: &mut dyn FnMut(NewDoc) -> Result<()>,
    ) -> Result<()> {
        self.iter().cloned().try_for_each(each)
    }

    fn check(&self, _: Collection, _: i64) -> Result<()> {
        Ok(())
    }

    fn each(self, _: Collection, _: i64, each: &mut dyn FnMut(NewDoc) -> Result<()>) -> Result<()> {
        self.into_iter().try_for_each(each)
    }
}

/// Where [`upsert`] puts each written document, in order, inside the write (a reply can be
/// built as it goes rather than after holding every document).
pub trait Collect: Send + 'static {
    fn push(&mut self, written: Written) -> Result<()>;
}

impl Collect for Vec<Written> {
    fn push(&mut self, written: Written) -> Result<()> {
        Vec::push(self, written);
        Ok(())
    }
}

/// API v1's write (POST, PUT, Socket.IO dbAdd): each document inserted, or merged into the one
/// it is (identifier, `_id`, dedup key: store::upsert), in one transaction, in order.
/// `action` is the permission the caller needs (create for a POST, update for a PUT).
pub async fn upsert<S: Source, C: Collect>(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    items: S,
    merge: Merge,
    action: Action,
    mut out: C,
) -> Result<C> {
    caller.require(coll, action)?;
    let prepared_at = dates::now_ms();
    items.check(coll, prepared_at)?;
    let now = dates::now_ms();
    store
        .write(move |conn| {
            items.each(coll, prepared_at, &mut |doc| {
                out.push(upsert::upsert(conn, coll, doc, merge, now)?)
            })?;
            Ok(out)
        })
        .await
}

fn created(w: rules::Written) -> Saved {
    match w {
        rules::Written::Created {
            identifier,
            srv_modified,
        } => Saved {
            identifier,
            outcome: Outcome::Inserted,
            srv_modified,
        },
        rules::Written::Replaced {
            identifier,
            previous,
            srv_modified,
        } => Saved {
            identifier,
            outcome: Outcome::Deduplicated { previous },
            srv_modified,
        },
    }
}

/// API v3's create of one document: made ready (store::v3::ready), then inserted, or, when it
/// duplicates a stored one, a replacement of it, which needs the update permission too.
pub async fn create(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    mut doc: Map<String, Value>,
) -> Result<Saved> {
    caller.require(coll, Action::Create)?;
    rules::ready(&mut doc)?;
    let can_update = caller.can(coll, Action::Update);
    let caller = caller.clone();
    let now = dates::now_ms();
    store
        .write(move |conn| rules::create(conn, coll, doc, caller.subject(), can_update, now))
        .await
        .map(created)
}

/// API v3's create of a batch: one result per item, in order; each item is stored or refused
/// on its own (an item that already failed preparation is refused with that error).
pub async fn create_each(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    docs: Vec<Result<Map<String, Value>>>,
) -> Result<Vec<Result<Saved>>> {
    caller.require(coll, Action::Create)?;
    let docs: Vec<Result<Map<String, Value>>> = docs
        .into_iter()
        .map(|d| {
            let mut doc = d?;
            rules::ready(&mut doc)?;
            Ok(doc)
        })
        .collect();
    let can_update = caller.can(coll, Action::Update);
    let caller = caller.clone();
    let now = dates::now_ms();
    let results = store
        .write(move |conn| rules::create_each(conn, coll, docs, caller.subject(), can_update, now))
        .await?;
    Ok(results.into_iter().map(|r| r.map(created)).collect())
}

/// API v3's PUT: replaces the document with this identifier, or creates it. Which permission
/// is needed (update or create) is decided inside the write, on what is stored then.
pub async fn replace(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    identifier: String,
    mut doc: Map<String, Value>,
    unmodified_since: Option<i64>,
) -> Result<Saved> {
    rules::ready(&mut doc)?;
    // The identifier names the document, whatever the document says.
    rules::check_identifier(&identifier)?;
    doc.insert("identifier".into(), identifier.clone().into());
    let caller = caller.clone();
    let now = dates::now_ms();
    store
        .write(move |conn| {
            if rules::find(conn, coll, &identifier)?.is_some() {
                caller.require(coll, Action::Update)?;
                let m = rules::update(
                    conn,
                    coll,
                    &identifier,
                    doc,
                    caller.subject(),
                    unmodified_since,
                )?;
                Ok(Saved {
                    identifier,
                    outcome: Outcome::Updated,
                    srv_modified: m.unwrap_or(now),
                })
            } else {
                caller.require(coll, Action::Create)?;
                rules::insert(conn, coll, doc, caller.subject(), now).map(created)
            }
        })
        .await
}

/// Whether [`replace`] could be permitted, before the document is read from a request: the
/// update or create permission, whichever applies to what is stored now (403 naming it).
pub async fn may_replace(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    identifier: String,
) -> Result<()> {
    let (update, create) = (
        caller.can(coll, Action::Update),
        caller.can(coll, Action::Create),
    );
    if update == create {
        // Both (nothing to decide) or neither (refused as Nightscout does, naming update).
        return caller.require(coll, Action::Update);
    }
    let exists = store
        .read(move |conn| Ok(rules::find(conn, coll, &identifier)?.is_some()))
        .await?;
    caller.require(
        coll,
        if exists {
            Action::Update
        } else {
            Action::Create
        },
    )
}

/// API v3's PATCH: `fields` merged into the stored document (shallow).
pub async fn patch(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    identifier: String,
    fields: Map<String, Value>,
    unmodified_since: Option<i64>,
) -> Result<Saved> {
    caller.require(coll, Action::Update)?;
    let caller = caller.clone();
    store
        .write(move |conn| {
            let m = rules::patch(
                conn,
                coll,
                &identifier,
                fields,
                caller.subject(),
                unmodified_since,
            )?;
            Ok(Saved {
                identifier,
                outcome: Outcome::Updated,
                srv_modified: m,
            })
        })
        .await
}

/// API v3's DELETE of one document: soft (kept for sync history) or `permanent`.
pub async fn delete(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    identifier: String,
    permanent: bool,
) -> Result<()> {
    caller.require(coll, Action::Delete)?;
    let caller = caller.clone();
    store
        .write_freeing(move |conn| {
            rules::delete(conn, coll, &identifier, permanent, caller.subject())
        })
        .await
}

/// API v1's DELETE: soft-deletes every live document `filter` matches; returns how many.
pub async fn delete_matching(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    filter: SqlFilter,
) -> Result<usize> {
    caller.require(coll, Action::Delete)?;
    store
        .write_freeing(move |conn| store::soft_delete(conn, coll, &filter))
        .await
}

/// Soft-deletes the live document with this `_id` (or identifier); returns how many (0 or 1).
pub async fn delete_id(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    id: &str,
) -> Result<usize> {
    let filter = query::id_filter(coll, id)?;
    delete_matching(store, caller, coll, filter).await
}

/// Socket.IO's dbUpdate / dbUpdateUnset: top-level fields set and removed on the live document
/// with this `_id`; false when there is none.
pub async fn merge_fields(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    id: String,
    set: Map<String, Value>,
    unset: Vec<String>,
) -> Result<bool> {
    caller.require(coll, Action::Update)?;
    store
        .write(move |conn| store::merge_fields(conn, coll, &id, &set, &unset))
        .await
}

/// One document of a page another site sent (src/sync/): stored as API v1 stores it
/// (prepared already), soft-deleted by identifier, or nothing to write.
pub enum Incoming {
    Store(Vec<NewDoc>),
    Delete(String),
    Nothing,
}

/// What [`apply_incoming`] did with one [`Incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written (or nothing to write): the row's srvModified after it, None when there is no
    /// such row.
    Done(Option<i64>),
    /// Not written: the document here changed since the caller looked (its srvModified is
    /// not the one expected), so the caller's decision no longer holds.
    Changed,
}

/// Writes a page of another site's documents in one transaction: each [`Incoming`] in
/// order, unless the document `identity` here no longer has the srvModified the caller saw
/// (`expected`, None for no document), then `then(conn, index, applied)`, so the caller's
/// bookkeeping (the sync's known versions) commits with the documents or not at all.
pub async fn apply_incoming<F>(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    merge: Merge,
    items: Vec<(Incoming, String, Option<i64>)>,
    mut then: F,
) -> Result<()>
where
    F: FnMut(&rusqlite::Connection, usize, Applied) -> Result<()> + Send + 'static,
{
    caller.require(coll, Action::Create)?;
    caller.require(coll, Action::Update)?;
    caller.require(coll, Action::Delete)?;
    let subject = caller.subject().map(str::to_string);
    let now = dates::now_ms();
    store
        .write(move |conn| {
            for (i, (item, identity, expected)) in items.into_iter().enumerate() {
                let current = rules::find(conn, coll, &identity)?;
                if current.as_ref().map(|d| d.srv_modified) != expected {
                    then(conn, i, Applied::Changed)?;
                    continue;
                }
                let m = match item {
                    Incoming::Store(docs) => {
                        let mut last = None;
                        for d in docs {
                            last = Some(upsert::upsert(conn, coll, d, merge, now)?.srv_modified);
                        }
                        last
                    }
                    Incoming::Delete(identifier) => {
                        if current.as_ref().is_some_and(|d| d.is_valid) {
                            rules::delete(conn, coll, &identifier, false, subject.as_deref())?;
                        }
                        rules::find(conn, coll, &identifier)?.map(|d| d.srv_modified)
                    }
                    Incoming::Nothing => current.map(|d| d.srv_modified),
                };
                then(conn, i, Applied::Done(m))?;
            }
            Ok(())
        })
        .await
}
