//! After a run, per collection: does each side hold the same documents? (Issue 20
//! "Integrity", docs/sync.md.)
//!
//! A nightlite site serves a digest of a collection (`GET /api/v4/sync/digest/{collection}`:
//! count and SHA-256 over identifier and srvModified of every document, deleted ones too,
//! store/sync_digest.rs); the same digest over sync_known, what this side last knew the site
//! to hold, must equal it. Any other site is sampled: [`SAMPLE`] random sync_known rows, each
//! read there alone (API v3 by identifier, else API v1 by `_id`). Nothing is read whole into
//! memory on either side.

use serde::Serialize;

use crate::connect::errors::SourceError;
use crate::remote::lookup::Found;
use crate::remote::{Api, Remote};
use crate::store::sync_digest::{self, Sampled};
use crate::store::{Collection, Store};

/// One collection's comparison after a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// The collection's name.
    pub collection: &'static str,
    /// "digest" (a nightlite site: count and hash of both sides) or "sample".
    pub method: &'static str,
    pub local_count: u64,
    pub remote_count: Option<u64>,
    /// Documents compared (all for a digest, the sample's size otherwise).
    pub compared: u64,
    /// False when the sides were found to differ (drift).
    pub matches: bool,
    /// A sample's documents found to differ or missing on one side (None for a digest, which
    /// tells only that the sides differ, not where).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differing: Option<u64>,
}

/// Documents a sampled comparison reads from the site.
pub const SAMPLE: u32 = 20;

/// Compares `coll` here (what sync_known holds of the site `remote_key`, after srvModified
/// `since` there) with the site: by its digest where it serves one, else by a sample.
pub async fn check(
    remote: &Remote,
    store: &Store,
    remote_key: &str,
    coll: Collection,
    since: i64,
) -> Result<Integrity, SourceError> {
    let Some(there) = remote.digest(coll.table(), since).await? else {
        return sample(remote, store, remote_key, coll, remote.api().await?).await;
    };
    let key = remote_key.to_string();
    let here = store
        .read(move |conn| sync_digest::known(conn, &key, coll, since))
        .await
        .map_err(local)?;
    Ok(Integrity {
        collection: coll.table(),
        method: "digest",
        local_count: here.count,
        remote_count: Some(there.count),
        compared: here.count.max(there.count),
        matches: here.count == there.count && here.hash == there.hash,
        differing: None,
    })
}

/// Compares up to [`SAMPLE`] random sync_known rows of `coll` with the site's documents,
/// through API v3 where the site has it (`api`) for `coll`, else API v1.
pub async fn sample(
    remote: &Remote,
    store: &Store,
    remote_key: &str,
    coll: Collection,
    api: Api,
) -> Result<Integrity, SourceError> {
    let key = remote_key.to_string();
    let (rows, total) = store
        .read(move |conn| {
            Ok((
                sync_digest::sample(conn, &key, coll, SAMPLE)?,
                sync_digest::known_count(conn, &key, coll)?,
            ))
        })
        .await
        .map_err(local)?;
    let v3 = api == Api::V3 && Collection::V3.contains(&coll);
    // Nightscout's v1 food list takes no find: nothing to look one document up with.
    let rows = if !v3 && coll == Collection::Food {
        Vec::new()
    } else {
        rows
    };
    let mut differing = 0u64;
    for row in &rows {
        let found = if v3 {
            remote.document_v3(coll.table(), &row.identity).await?
        } else {
            let id = row.local.as_ref().map_or(&row.identity, |(id, _)| id);
            remote.document_v1(coll.table(), id).await?
        };
        if !same(row, &found) {
            differing += 1;
        }
    }
    Ok(Integrity {
        collection: coll.table(),
        method: "sample",
        local_count: total,
        remote_count: None,
        compared: rows.len() as u64,
        matches: differing == 0,
        differing: Some(differing),
    })
}

/// Whether the site's copy is the one sync_known recorded: live on both sides or on neither,
/// and when live the same srvModified there, or the same content where either shows none
/// (API v1 of nightlite, and of Nightscout for what v1 wrote).
fn same(row: &Sampled, found: &Found) -> bool {
    let live_here = row.local.as_ref().is_some_and(|(_, live)| *live);
    match found {
        Found::Live(doc) => {
            live_here
                && match (row.remote_modified, crate::remote::read::srv_modified(doc)) {
                    (Some(known), Some(there)) => known == there,
                    _ => doc.as_object().is_some_and(|d| {
                        let d = super::content::named(d.clone(), &row.identity);
                        super::content::hash(&d, true) == row.hash
                    }),
                }
        }
        Found::Deleted | Found::Missing => !live_here,
    }
}

fn local(e: crate::error::Error) -> SourceError {
    SourceError::transient(format!("reading here failed: {}", e.client_message()))
}

#[cfg(test)]
#[path = "integrity_tests.rs"]
mod site_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(live: Option<bool>, remote_modified: Option<i64>, hash: &str) -> Sampled {
        Sampled {
            identity: "i".into(),
            remote_modified,
            hash: hash.into(),
            local: live.map(|l| ("x".to_string(), l)),
        }
    }

    #[test]
    fn a_sampled_document_is_the_same_when_its_state_and_version_agree() {
        let doc = json!({"identifier": "i", "srvModified": 7, "sgv": 1});
        let live = Found::Live(doc.clone());
        assert!(same(&row(Some(true), Some(7), ""), &live));
        assert!(!same(&row(Some(true), Some(8), ""), &live));
        // Deleted or gone here while live there, and the other way round.
        assert!(!same(&row(Some(false), Some(7), ""), &live));
        assert!(!same(&row(None, Some(7), ""), &live));
        assert!(!same(&row(Some(true), Some(7), ""), &Found::Deleted));
        assert!(!same(&row(Some(true), Some(7), ""), &Found::Missing));
        assert!(same(&row(Some(false), Some(7), ""), &Found::Deleted));
        assert!(same(&row(None, Some(7), ""), &Found::Missing));
        // No srvModified recorded, or none shown (API v1): the content decides.
        let h = crate::sync::content::hash(doc.as_object().unwrap(), true);
        assert!(same(&row(Some(true), None, &h), &live));
        assert!(!same(&row(Some(true), None, "other"), &live));
        let v1 = Found::Live(json!({"identifier": "i", "sgv": 1}));
        assert!(same(&row(Some(true), Some(7), &h), &v1));
        assert!(!same(&row(Some(true), Some(7), "other"), &v1));
    }
}
