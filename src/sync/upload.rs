//! UPLOADING: the outbox — the local changes the site has not acknowledged (store/sync.rs
//! `outbox`: rows after the cursor, less those that came from the site and those held in a
//! manual conflict) — sent through the site's API v3 with identifiers (a create of a document
//! the site holds is its update there; a delete is a delete), API v1 on a site without v3.
//! The cursor and what the site acknowledged are saved after each page, and after the last
//! document acknowledged when a page fails part way, so a restart or kill -9 resends at most
//! the documents in flight, which the identifiers make updates there, never copies.

use futures_util::StreamExt;

use serde_json::Value;

use super::content;
use super::engine::{Counts, Engine, SyncError, Watch};
use crate::remote::lookup::Found;
use crate::remote::write::Uploaded;
use crate::remote::Api;
use crate::store::sync::{self as book, Cursors, Known};
use crate::store::{Collection, StoredDoc};

/// Local changes read (and acknowledged) at a time.
const PAGE: usize = 100;
/// Uploads in flight at once.
const IN_FLIGHT: usize = 4;

/// What the site did with one upload.
pub(super) enum Sent {
    /// It holds this version now; its srvModified when it said.
    Done(Option<i64>),
    /// It refused it (400/422): reported, not sent again.
    Refused(u16),
}

impl Engine {
    /// Sends `coll`'s outbox; `cur.uploaded_through` moves on as the site acknowledges.
    pub(super) async fn upload(
        &self,
        api: Api,
        coll: Collection,
        cur: &mut Cursors,
        counts: &mut Counts,
        watch: &dyn Watch,
    ) -> Result<(), SyncError> {
        // Deletions the site took: its answer has no srvModified, so it is read back after.
        let mut deleted = std::collections::HashSet::new();
        let result = self
            .upload_pages(api, coll, cur, counts, watch, &mut deleted)
            .await;
        if api == Api::V3 && !deleted.is_empty() {
            self.confirm_deletes(coll, cur.remote_since, deleted)
                .await?;
        }
        result
    }

    async fn upload_pages(
        &self,
        api: Api,
        coll: Collection,
        cur: &mut Cursors,
        counts: &mut Counts,
        watch: &dyn Watch,
        deleted: &mut std::collections::HashSet<String>,
    ) -> Result<(), SyncError> {
        loop {
            let key = self.key().to_string();
            let after = cur.uploaded_through;
            let page = self
                .store
                .read(move |conn| book::outbox(conn, &key, coll, after, PAGE))
                .await
                .map_err(|e| super::engine::local(&e))?;
            let n = page.len();
            let mut acks = Vec::new();
            let mut failure = None;
            // Device statuses only from the recent window, by their own time.
            let floor = (coll == Collection::DeviceStatus).then(|| self.floor(coll));
            // A few requests in flight (answered in order), so the site's group commit
            // takes several documents per flush.
            let sends = futures_util::stream::iter(page.into_iter().map(|o| {
                let skip = o.echo || o.held || floor.is_some_and(|f| o.doc.mills < f);
                async move {
                    let sent = if skip {
                        None
                    } else {
                        Some(self.send(api, coll, &o.doc).await)
                    };
                    (o, sent)
                }
            }))
            .buffered(IN_FLIGHT);
            let mut sends = std::pin::pin!(sends);
            while let Some((o, sent)) = sends.next().await {
                match sent {
                    None => {}
                    Some(Ok(Sent::Done(remote_modified))) => {
                        let a = ack(coll, &o.doc, remote_modified);
                        if !o.doc.is_valid {
                            deleted.insert(a.0.clone());
                        }
                        acks.push(a);
                        counts.uploaded += 1;
                    }
                    Some(Ok(Sent::Refused(status))) => {
                        counts.refused += 1;
                        tracing::warn!(
                            sync = self.label(),
                            "sync: the site refused a document of {} (HTTP {status}); \
                             it is not sent again",
                            coll.table()
                        );
                    }
                    Some(Err(e)) => {
                        // Later documents in flight may have reached the site too: sent
                        // again next time, they are updates there.
                        failure = Some(e);
                        break;
                    }
                }
                cur.uploaded_through = o.doc.srv_modified;
            }
            self.acknowledge(coll, *cur, acks).await?;
            watch.progress(coll, counts.uploaded);
            if let Some(e) = failure {
                return Err(e);
            }
            if n < PAGE {
                return Ok(());
            }
        }
    }

    /// The srvModified the site gave the deletions sent (`identities`), read from its history
    /// after `since` and remembered, so the digests of both sides agree after the run; the
    /// cursor stays (what else changed there is the next run's download).
    async fn confirm_deletes(
        &self,
        coll: Collection,
        since: Option<i64>,
        mut identities: std::collections::HashSet<String>,
    ) -> Result<(), SyncError> {
        let name = coll.table();
        let mut since = since.unwrap_or(self.floor(coll));
        while !identities.is_empty() {
            let page = self
                .remote
                .changes(name, since, crate::remote::read::page_size(name))
                .await?;
            let found: Vec<(String, i64)> = page
                .docs
                .iter()
                .filter_map(|d| {
                    let o = d.as_object()?;
                    let id = content::identity(o)?;
                    let m = o.get("srvModified")?.as_i64()?;
                    (!content::is_valid(o) && identities.remove(&id)).then_some((id, m))
                })
                .collect();
            let key = self.key().to_string();
            self.store
                .write(move |conn| {
                    for (id, m) in &found {
                        book::set_remote_modified(conn, &key, coll, id, *m)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| super::engine::local(&e))?;
            if page.complete || page.cursor <= since {
                return Ok(());
            }
            since = page.cursor;
        }
        Ok(())
    }

    /// Saves what the site acknowledged and the cursor, in one transaction.
    pub(super) async fn acknowledge(
        &self,
        coll: Collection,
        cur: Cursors,
        acks: Vec<(String, Known)>,
    ) -> Result<(), SyncError> {
        let key = self.key().to_string();
        self.store
            .write(move |conn| {
                for (identity, k) in &acks {
                    book::set_known(conn, &key, coll, identity, k)?;
                }
                book::set_cursors(conn, &key, coll, &cur)
            })
            .await
            .map_err(|e| super::engine::local(&e))
    }

    /// Sends one local document (or its deletion) to the site. A copy there may hold fields
    /// its API added when it stored it (an `app`, `created_at`, `utcOffset`), which API v3
    /// refuses to see changed: after such a refusal (400) the site's copy is read and the
    /// document sent once more with those fields.
    pub(super) async fn send(
        &self,
        api: Api,
        coll: Collection,
        d: &StoredDoc,
    ) -> Result<Sent, SyncError> {
        let name = coll.table();
        let view = content::local_view(coll, d);
        let identity = content::identity(&view).unwrap_or_else(|| d.id.clone());
        if !d.is_valid {
            return Ok(
                match self.remote.delete(api, name, &identity, &d.id).await? {
                    Uploaded::Refused(s) => Sent::Refused(s),
                    Uploaded::Created | Uploaded::Updated => Sent::Done(None),
                },
            );
        }
        let mut sent = self.remote.upload_stamped(api, name, view.clone()).await?;
        if let (Api::V3, (Uploaded::Refused(400), _)) = (api, &sent) {
            if let Found::Live(Value::Object(there)) =
                self.remote.document_v3(name, &identity).await?
            {
                let mut again = view.clone();
                content::keep_added(&mut again, &there);
                if again != view {
                    sent = self.remote.upload_stamped(api, name, again).await?;
                }
            }
        }
        Ok(match sent {
            (Uploaded::Refused(s), _) => Sent::Refused(s),
            (Uploaded::Created | Uploaded::Updated, stamp) => Sent::Done(stamp),
        })
    }
}

/// What both sides hold once the site acknowledged `d`.
pub(super) fn ack(
    coll: Collection,
    d: &StoredDoc,
    remote_modified: Option<i64>,
) -> (String, Known) {
    let view = content::local_view(coll, d);
    let identity = content::identity(&view).unwrap_or_else(|| d.id.clone());
    (
        identity,
        Known {
            local_modified: Some(d.srv_modified),
            remote_modified,
            hash: content::hash(&view, d.is_valid),
        },
    )
}
