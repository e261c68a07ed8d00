//! DOWNLOADING: the site's changes since the cursors, written here.
//!
//! Where the site has API v3, its history by srvModified (src/remote/read.rs never skips at a
//! shared millisecond); then, on every site, an API v1 pass by document time for what v3
//! history cannot show (Nightscout 15.0.7's v1 writes have no srvModified): from the newest
//! document time read last time less [`V1_OVERLAP_MS`], all of history at the first run. Each
//! page is decided against what both sides held at the last sync (sync_known) and written in
//! one transaction with that bookkeeping (documents::apply_incoming).

use serde_json::{Map, Value};

use super::content;
use super::engine::{Counts, Engine, SyncError, Watch};
use crate::documents::{self, Applied, Incoming};
use crate::remote::read::{doc_time, page_size};
use crate::remote::windows::by_time;
use crate::remote::Api;
use crate::store::sync::{self as book, Conflict, Cursors, Known};
use crate::store::upsert::Merge;
use crate::store::{Collection, StoredDoc};

/// How far before the newest document time read last time the API v1 pass reads again:
/// uploaders send late (a phone offline for a while), and a day covers what they hold back.
pub const V1_OVERLAP_MS: i64 = 86_400_000;

/// Which read a page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// API v3 history: every document has the site's srvModified.
    History,
    /// API v1 lists; `only` when the site has no v3 (then this pass sees every change).
    V1 { only: bool },
}

/// What to do with one of the site's documents.
enum Plan {
    /// Unchanged there since the last sync.
    Skip,
    /// The same on both sides: only remember it.
    Same,
    /// Changed on both sides: logged, settled in RESOLVING.
    Conflict(Box<Conflict>),
    /// A conflict about it waits for a decision: its site version is updated.
    Held { id: i64, doc: String },
    /// The site's version is taken here.
    Take,
    /// The store refused it.
    Refused,
}

/// One document of a page, as read.
struct Item {
    identity: String,
    doc: Map<String, Value>,
    valid: bool,
    modified: Option<i64>,
    hash: String,
}

impl Engine {
    /// The site's changes to `coll` since `cur`, written here; `cur` moves on page by page
    /// (each page saved once written).
    pub(super) async fn download(
        &self,
        api: Api,
        coll: Collection,
        cur: &mut Cursors,
        counts: &mut Counts,
        watch: &dyn Watch,
    ) -> Result<(), SyncError> {
        let name = coll.table();
        let floor = self.floor(coll);
        if api == Api::V3 {
            let mut since = cur.remote_since.unwrap_or(floor);
            loop {
                let page = self.remote.changes(name, since, page_size(name)).await?;
                self.apply_page(coll, cur, page.docs, Pass::History, counts)
                    .await?;
                watch.progress(coll, counts.downloaded);
                let done = page.complete || page.cursor <= since;
                since = since.max(page.cursor);
                cur.remote_since = Some(since);
                self.save(coll, *cur).await?;
                if done {
                    break;
                }
            }
        }
        let pass = Pass::V1 {
            only: api == Api::V1,
        };
        if !by_time(name) {
            let docs = self.remote.whole(name, crate::store::MAX_LIST).await?;
            return self.apply_page(coll, cur, docs, pass, counts).await;
        }
        let from = cur
            .remote_dated
            .map_or(floor, |d| (d - V1_OVERLAP_MS).max(floor));
        let now = self.clock.now_ms();
        let mut newest = cur.remote_dated;
        let mut below = None;
        // What the site lists in the window (a later run's window is a day or so).
        let incremental = cur.remote_dated.is_some();
        let mut listed = std::collections::HashSet::new();
        loop {
            let page = self.remote.history_page(name, below).await?;
            // A document dated ahead of the clock must not move the pass past what comes.
            newest = newest.max(page.newest.map(|n| n.min(now)));
            let docs: Vec<Value> = page
                .docs
                .into_iter()
                .filter(|d| doc_time(name, d).is_none_or(|t| t >= from))
                .collect();
            if incremental {
                listed.extend(
                    docs.iter()
                        .filter_map(|d| d.as_object().and_then(content::identity)),
                );
            }
            self.apply_page(coll, cur, docs, pass, counts).await?;
            watch.progress(coll, counts.downloaded);
            match page.next {
                Some(n) if n >= from => below = Some(n),
                _ => break,
            }
        }
        if incremental {
            self.deleted_through_v1(coll, from, &listed, counts).await?;
        }
        cur.remote_dated = newest;
        self.save(coll, *cur).await
    }

    /// Documents the site's API v1 deleted: it leaves no trace (Nightscout 15.0.7 removes
    /// the document), so a document that came through the v1 pass, lies in the window just
    /// read and is no longer listed there is deleted here too — unless it changed here since
    /// (that edit is kept, and goes up again).
    async fn deleted_through_v1(
        &self,
        coll: Collection,
        from: i64,
        listed: &std::collections::HashSet<String>,
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        let key = self.key().to_string();
        let to = self.clock.now_ms();
        let candidates = self
            .store
            .read(move |conn| book::known_without_stamp(conn, &key, coll, from, to))
            .await
            .map_err(|e| super::engine::local(&e))?;
        // Each one not listed is asked for alone before it goes: a list window can miss a
        // document whose time its site compares as text (an offset in created_at).
        let mut gone: Vec<(String, i64, String)> = Vec::new();
        for (identity, m, hash, id) in candidates {
            if listed.contains(&identity) {
                continue;
            }
            if self.remote.document_v1(coll.table(), &id).await?
                == crate::remote::lookup::Found::Missing
            {
                gone.push((identity, m, hash));
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let key = self.key().to_string();
        let writes = gone
            .iter()
            .map(|(identity, m, _)| {
                (
                    Incoming::Delete(identity.clone()),
                    identity.clone(),
                    Some(*m),
                )
            })
            .collect();
        counts.downloaded += self
            .apply_counted(coll, writes, move |conn, i, applied| {
                let Applied::Done(m) = applied else {
                    return Ok(false);
                };
                let (identity, _, hash) = &gone[i];
                book::set_known(
                    conn,
                    &key,
                    coll,
                    identity,
                    &Known {
                        local_modified: m,
                        remote_modified: None,
                        hash: format!("{hash}:gone"),
                    },
                )?;
                Ok(true)
            })
            .await?;
        Ok(())
    }

    /// Writes a page (documents::apply_incoming) with `then`'s bookkeeping in the same
    /// transaction; returns how many `then` counted as taken.
    async fn apply_counted<F>(
        &self,
        coll: Collection,
        writes: Vec<(Incoming, String, Option<i64>)>,
        mut then: F,
    ) -> Result<u64, SyncError>
    where
        F: FnMut(&rusqlite::Connection, usize, Applied) -> crate::error::Result<bool>
            + Send
            + 'static,
    {
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = taken.clone();
        documents::apply_incoming(
            &self.store,
            &self.caller,
            coll,
            merge_for(coll),
            writes,
            move |conn, i, applied| {
                if then(conn, i, applied)? {
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| super::engine::local(&e))?;
        Ok(taken.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Decides each document of a page and writes the page in one transaction.
    async fn apply_page(
        &self,
        coll: Collection,
        cur: &Cursors,
        docs: Vec<Value>,
        pass: Pass,
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        // Device statuses only from the recent window, by their own time (a first run
        // reads the site's history from the window's start, by its write time).
        let floor = (coll == Collection::DeviceStatus).then(|| self.floor(coll));
        let items: Vec<Item> = docs
            .into_iter()
            .filter(|d| match floor {
                Some(f) => doc_time(coll.table(), d).is_none_or(|t| t >= f),
                None => true,
            })
            .filter_map(|d| {
                let Value::Object(doc) = d else { return None };
                let identity = content::identity(&doc)?;
                let modified = doc.get("srvModified").and_then(Value::as_i64);
                // v3 history lists these; the v1 pass is for what it cannot.
                if pass == (Pass::V1 { only: false }) && modified.is_some() {
                    return None;
                }
                let valid = content::is_valid(&doc);
                let doc = content::named(doc, &identity);
                let hash = content::hash(&doc, valid);
                Some(Item {
                    identity,
                    doc,
                    valid,
                    modified,
                    hash,
                })
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let key = self.key().to_string();
        let ids: Vec<String> = items.iter().map(|i| i.identity.clone()).collect();
        let seen = self
            .store
            .read(move |conn| {
                ids.iter()
                    .map(|i| book::seen(conn, &key, coll, i))
                    .collect::<crate::error::Result<Vec<_>>>()
            })
            .await
            .map_err(|e| super::engine::local(&e))?;
        let now = self.clock.now_ms();
        let mut plans = Vec::with_capacity(items.len());
        let mut incoming = Vec::with_capacity(items.len());
        for (item, (known, local, held)) in items.iter().zip(seen) {
            let seen_here = local.as_ref().map(|l| l.srv_modified);
            let (plan, write) = self.plan(coll, cur, item, pass, known, local, held, now);
            plans.push(plan);
            incoming.push((write, seen_here));
        }
        self.write_page(coll, items, plans, incoming, counts).await
    }

    /// What to do with one document (see [`Plan`]) and what to write here for it.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        coll: Collection,
        cur: &Cursors,
        item: &Item,
        pass: Pass,
        known: Option<Known>,
        local: Option<StoredDoc>,
        held: Option<Conflict>,
        now: i64,
    ) -> (Plan, Incoming) {
        if let Some(k) = &known {
            let from_history = k.remote_modified.is_some();
            if (pass == (Pass::V1 { only: false }) && from_history)
                || (item.modified.is_some() && item.modified == k.remote_modified)
            {
                return (Plan::Skip, Incoming::Nothing);
            }
            if k.hash == item.hash {
                // The same content under a new srvModified there (a delete sent from here
                // comes back so): remembered with it while unchanged here, so the digests
                // of both sides agree (integrity.rs).
                let unchanged_here = local.as_ref().map(|l| l.srv_modified) == k.local_modified;
                let plan = if unchanged_here && item.modified.is_some() {
                    Plan::Same
                } else {
                    Plan::Skip
                };
                return (plan, Incoming::Nothing);
            }
        }
        let doc_text = || Value::Object(item.doc.clone()).to_string();
        if let Some(c) = held {
            return (
                Plan::Held {
                    id: c.id,
                    doc: doc_text(),
                },
                Incoming::Nothing,
            );
        }
        let both_deleted = !item.valid && local.as_ref().is_none_or(|l| !l.is_valid);
        let same = local.as_ref().is_some_and(|l| {
            l.is_valid == item.valid
                && content::equivalent(&content::local_view(coll, l), &item.doc)
        });
        if both_deleted || same {
            return (Plan::Same, Incoming::Nothing);
        }
        let changed_here = match (&local, &known) {
            (None, _) => false,
            (Some(l), Some(k)) => Some(l.srv_modified) != k.local_modified,
            (Some(l), None) => l.srv_modified > cur.uploaded_through,
        };
        if let (true, Some(l)) = (changed_here, &local) {
            let conflict = Conflict::found(
                coll.table(),
                &item.identity,
                now,
                self.settings.conflict.name(),
                (
                    Value::Object(content::local_view(coll, l)).to_string(),
                    Some(l.srv_modified),
                ),
                (doc_text(), item.modified),
            );
            return (Plan::Conflict(Box::new(conflict)), Incoming::Nothing);
        }
        match self.incoming(coll, &item.identity, &item.doc, item.valid) {
            Some(w) => (Plan::Take, w),
            None => (Plan::Refused, Incoming::Nothing),
        }
    }

    /// The write that makes the site's version of a document this server's; None when the
    /// store refuses it (counted; the rest goes on).
    pub(super) fn incoming(
        &self,
        coll: Collection,
        identity: &str,
        doc: &Map<String, Value>,
        valid: bool,
    ) -> Option<Incoming> {
        if !valid {
            return Some(Incoming::Delete(identity.to_string()));
        }
        let carried = content::carried(doc.clone(), identity);
        let label = format!("{} {}", self.label(), coll.table());
        match crate::store::prepare::prepare(
            coll,
            Value::Object(carried),
            &label,
            self.clock.now_ms(),
        ) {
            Ok(p) => Some(Incoming::Store(p)),
            Err(e) => {
                tracing::warn!(
                    sync = self.label(),
                    "sync: a document of {} refused here: {}",
                    coll.table(),
                    e.client_message()
                );
                None
            }
        }
    }

    /// Writes a page's plans: the documents taken and the bookkeeping, in one transaction.
    /// A document changed here since it was looked at is left alone: the next run sees the
    /// change (a conflict then, not a lost edit).
    async fn write_page(
        &self,
        coll: Collection,
        items: Vec<Item>,
        plans: Vec<Plan>,
        incoming: Vec<(Incoming, Option<i64>)>,
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        for p in &plans {
            match p {
                Plan::Conflict(_) => counts.conflicts += 1,
                Plan::Refused => counts.refused += 1,
                _ => {}
            }
        }
        if plans
            .iter()
            .all(|p| matches!(p, Plan::Skip | Plan::Refused))
        {
            return Ok(());
        }
        let key = self.key().to_string();
        let writes = incoming
            .into_iter()
            .zip(&items)
            .map(|((w, seen), i)| (w, i.identity.clone(), seen))
            .collect();
        let rows: Vec<(String, Option<i64>, String)> = items
            .into_iter()
            .map(|i| (i.identity, i.modified, i.hash))
            .collect();
        counts.downloaded += self
            .apply_counted(coll, writes, move |conn, i, applied| {
                let (identity, modified, hash) = &rows[i];
                let remember = |local_modified| {
                    book::set_known(
                        conn,
                        &key,
                        coll,
                        identity,
                        &Known {
                            local_modified,
                            remote_modified: *modified,
                            hash: hash.clone(),
                        },
                    )
                };
                match (&plans[i], applied) {
                    (Plan::Conflict(c), _) => book::add_conflict(conn, &key, c).map(|_| false),
                    (Plan::Held { id, doc }, _) => {
                        book::update_held_remote(conn, *id, doc, *modified).map(|()| false)
                    }
                    (_, Applied::Changed) | (Plan::Skip | Plan::Refused, _) => Ok(false),
                    (Plan::Same, Applied::Done(m)) => remember(m).map(|()| false),
                    (Plan::Take, Applied::Done(m)) => remember(m).map(|()| true),
                }
            })
            .await?;
        Ok(())
    }
}

/// How a site's document is merged into the copy here: replaced; profiles as a history
/// (two profile documents are never merged into one).
pub fn merge_for(coll: Collection) -> Merge {
    if coll == Collection::Profile {
        Merge::History
    } else {
        Merge::Replace
    }
}
