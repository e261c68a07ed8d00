//! RESOLVING carried out: the conflicts a run found, settled by their strategy
//! (resolve.rs decides), and the decisions made through the API; the kept version is made
//! the one on both sides, the other stays in the conflict log.

use serde_json::Value;

use super::content;
use super::resolve::{decide, Keep, Side};

/// Conflicts settled per read.
const BATCH: usize = 100;

impl super::engine::Engine {
    /// RESOLVING: the conflicts this run found, settled by SYNC_CONFLICT (a manual one is
    /// held), and the decisions made through the API, carried out.
    pub(super) async fn resolve(
        &self,
        api: crate::remote::Api,
        mode: crate::config::sync::Mode,
    ) -> Result<(), super::engine::SyncError> {
        let now = self.clock.now_ms();
        loop {
            let batch = self.conflicts(false).await?;
            let n = batch.len();
            let mut settled = 0;
            for c in batch {
                let (Some(local), Some(remote)) = (
                    side(&c.local_doc, c.local_modified),
                    side(&c.remote_doc, c.remote_modified),
                ) else {
                    continue;
                };
                let strategy = crate::config::sync::Strategy::parse(&c.strategy)
                    .unwrap_or(self.settings.conflict);
                if let Some((keep, reason)) = decide(strategy, &local, &remote, now) {
                    self.carry_out(api, mode, &c, keep, reason).await?;
                    settled += 1;
                }
            }
            if n < BATCH || settled == 0 {
                break;
            }
        }
        loop {
            let batch = self.conflicts(true).await?;
            let n = batch.len();
            let mut carried = 0;
            for c in batch {
                let Some(keep) = c.kept.as_deref().and_then(Keep::parse) else {
                    continue;
                };
                let reason = c.reason.clone();
                if self.carry_out(api, mode, &c, keep, &reason).await? {
                    carried += 1;
                }
            }
            if n < BATCH || carried == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The next conflicts to settle (`decided`: decisions made through the API to carry out).
    async fn conflicts(
        &self,
        decided: bool,
    ) -> Result<Vec<crate::store::sync::Conflict>, super::engine::SyncError> {
        let key = self.key().to_string();
        self.store
            .read(move |conn| {
                if decided {
                    crate::store::sync::decided(conn, &key, BATCH)
                } else {
                    crate::store::sync::unsettled(conn, &key, BATCH)
                }
            })
            .await
            .map_err(|e| super::engine::local(&e))
    }

    /// The srvModified here of the document `identity` (deleted ones too); None without one.
    async fn local_modified(
        &self,
        coll: crate::store::Collection,
        identity: &str,
    ) -> Result<Option<i64>, super::engine::SyncError> {
        let found = crate::documents::find(&self.store, &self.caller, coll, identity.to_string())
            .await
            .map_err(|e| super::engine::local(&e))?;
        Ok(found.map(|d| d.srv_modified))
    }

    /// Whether decisions made through the API wait to be carried out.
    pub(super) async fn has_decisions(&self) -> Result<bool, super::engine::SyncError> {
        let key = self.key().to_string();
        self.store
            .read(move |conn| Ok(!crate::store::sync::decided(conn, &key, 1)?.is_empty()))
            .await
            .map_err(|e| super::engine::local(&e))
    }

    /// Makes `keep` the version on both sides (as far as `mode` may) and settles the conflict;
    /// false when it has to wait for a run that uploads.
    async fn carry_out(
        &self,
        api: crate::remote::Api,
        mode: crate::config::sync::Mode,
        c: &crate::store::sync::Conflict,
        keep: Keep,
        reason: &str,
    ) -> Result<bool, super::engine::SyncError> {
        let Some(coll) = crate::store::Collection::from_name(&c.collection) else {
            return Ok(false);
        };
        let key = self.key().to_string();
        let now = self.clock.now_ms();
        let (id, reason_text) = (c.id, reason.to_string());
        match keep {
            Keep::Remote => {
                let Some(remote) = side(&c.remote_doc, c.remote_modified) else {
                    return Ok(false);
                };
                let hash = content::hash(&remote.doc, remote.valid);
                let identity = c.identity.clone();
                let write = self
                    .incoming(coll, &identity, &remote.doc, remote.valid)
                    .unwrap_or(crate::documents::Incoming::Nothing);
                let remote_modified = c.remote_modified;
                // The version here as the conflict saw it: changed again since, it waits.
                let seen = match c.kept {
                    None => c.local_modified,
                    Some(_) => self.local_modified(coll, &identity).await?,
                };
                crate::documents::apply_incoming(
                    &self.store,
                    &self.caller,
                    coll,
                    super::download::merge_for(coll),
                    vec![(write, identity.clone(), seen)],
                    move |conn, _, applied| {
                        let crate::documents::Applied::Done(written) = applied else {
                            // Edited here again meanwhile: that newer edit stays, and goes
                            // up; the site's version stays in the log.
                            return crate::store::sync::settle(
                                conn,
                                id,
                                "local",
                                "changed here again while settling: the newer version here is kept",
                                now,
                                true,
                            );
                        };
                        crate::store::sync::set_known(
                            conn,
                            &key,
                            coll,
                            &identity,
                            &crate::store::sync::Known {
                                local_modified: written,
                                remote_modified,
                                hash: hash.clone(),
                            },
                        )?;
                        crate::store::sync::settle(conn, id, "remote", &reason_text, now, true)
                    },
                )
                .await
                .map_err(|e| super::engine::local(&e))?;
                Ok(true)
            }
            Keep::Local => {
                if !mode.uploads() {
                    self.store
                        .write(move |conn| {
                            crate::store::sync::settle(conn, id, "local", &reason_text, now, false)
                        })
                        .await
                        .map_err(|e| super::engine::local(&e))?;
                    return Ok(false);
                }
                let identity = c.identity.clone();
                let local = crate::documents::find(&self.store, &self.caller, coll, identity)
                    .await
                    .map_err(|e| super::engine::local(&e))?;
                let ack = match &local {
                    Some(d) => match self.send(api, coll, d).await? {
                        super::upload::Sent::Done(m) => Some(super::upload::ack(coll, d, m)),
                        super::upload::Sent::Refused(_) => None,
                    },
                    None => None,
                };
                self.store
                    .write(move |conn| {
                        if let Some((identity, k)) = &ack {
                            crate::store::sync::set_known(conn, &key, coll, identity, k)?;
                        }
                        crate::store::sync::settle(conn, id, "local", &reason_text, now, true)
                    })
                    .await
                    .map_err(|e| super::engine::local(&e))?;
                Ok(true)
            }
        }
    }
}

/// A logged version as a [`Side`].
fn side(doc: &Option<String>, modified: Option<i64>) -> Option<Side> {
    let Value::Object(doc) = serde_json::from_str(doc.as_deref()?).ok()? else {
        return None;
    };
    Some(Side {
        valid: content::is_valid(&doc),
        doc,
        modified,
    })
}
