//! Uploading to a remote site. API v3 create (`POST /api/v3/{collection}`) with the
//! document's own identifier: a site that holds it already answers 200 and replaces it (its
//! deduplication), so uploading again is an update, never a second copy. Without v3, API v1
//! (`POST /api/v1/{collection}.json`): entries are matched by time and type, treatments by
//! identifier or `_id`, so those do not duplicate either; Nightscout's v1 device status has
//! no such match (docs/bridges.md says so).

use serde_json::{Map, Value};

use super::{status_error, Api, Remote};
use crate::connect::errors::SourceError;

/// What an upload did on the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// A new document (v3 201).
    Created,
    /// The site had it and replaced it (v3 200, or any v1 success).
    Updated,
    /// The site refused this document (a 400 or 422: a value it does not accept); retrying
    /// cannot help, so the caller counts it and goes on.
    Refused(u16),
}

/// The `app` of an upload through API v3 that has none.
pub const APP: &str = "nightlite";

/// The fields the receiving site sets itself (API v3 refuses some of them from a client).
const SERVER_FIELDS: [&str; 5] = ["_id", "srvModified", "srvCreated", "isValid", "modifiedBy"];

/// `doc` as an upload: without the fields of the server it comes from.
pub fn for_upload(mut doc: Map<String, Value>, keep_id: bool) -> Map<String, Value> {
    let id = doc.get("_id").cloned();
    for k in SERVER_FIELDS {
        doc.remove(k);
    }
    if let (true, Some(id)) = (keep_id, id) {
        doc.insert("_id".into(), id);
    }
    doc
}

impl Remote {
    /// Uploads one document of `collection` (an API v3 view: with its identifier).
    pub async fn upload(
        &self,
        api: Api,
        collection: &str,
        doc: Map<String, Value>,
    ) -> Result<Uploaded, SourceError> {
        Ok(self.upload_stamped(api, collection, doc).await?.0)
    }

    /// As [`Remote::upload`], with the srvModified the site gave the document (API v3's
    /// `lastModified` in the reply; None through API v1, or from a site that does not say).
    pub async fn upload_stamped(
        &self,
        api: Api,
        collection: &str,
        doc: Map<String, Value>,
    ) -> Result<(Uploaded, Option<i64>), SourceError> {
        let (path, body) = match api {
            Api::V3 => {
                let mut doc = for_upload(doc, false);
                // API v3 refuses a document without `app` (what wrote it); v1 uploads have none.
                let has_app = doc
                    .get("app")
                    .and_then(Value::as_str)
                    .is_some_and(|a| !a.trim().is_empty());
                if !has_app {
                    doc.insert("app".into(), APP.into());
                }
                (format!("/api/v3/{collection}"), Value::Object(doc))
            }
            // v1 treatments are matched by `_id` too: ours is an ObjectId, as v1 wants.
            Api::V1 => (
                format!("/api/v1/{collection}.json"),
                Value::Array(vec![Value::Object(for_upload(doc, true))]),
            ),
        };
        let reply = self.post(&path, &body).await?;
        let stamp = || {
            reply
                .json()
                .and_then(|v| v.get("lastModified").and_then(Value::as_i64))
        };
        match (api, reply.status) {
            (Api::V3, 201) => Ok((Uploaded::Created, stamp())),
            (Api::V3, 200) => Ok((Uploaded::Updated, stamp())),
            (_, 200 | 201) => Ok((Uploaded::Updated, None)),
            (_, s @ (400 | 422)) => Ok((Uploaded::Refused(s), None)),
            (_, s) => Err(status_error(
                &self.label,
                s,
                &format!("an upload to {collection}"),
            )),
        }
    }

    /// Deletes the document `identifier` of `collection` on the site: API v3's soft delete,
    /// or API v1's delete by `_id` (`id`). A document the site does not have (404, 410) is
    /// deleted there already.
    pub async fn delete(
        &self,
        api: Api,
        collection: &str,
        identifier: &str,
        id: &str,
    ) -> Result<Uploaded, SourceError> {
        let path = match api {
            Api::V3 => format!("/api/v3/{collection}/{}", super::encode(identifier)),
            Api::V1 => format!("/api/v1/{collection}/{}", super::encode(id)),
        };
        let reply = self.send_delete(&path).await?;
        match reply.status {
            200 | 204 | 404 | 410 => Ok(Uploaded::Updated),
            s @ (400 | 422) => Ok(Uploaded::Refused(s)),
            s => Err(status_error(
                &self.label,
                s,
                &format!("a delete in {collection}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn an_upload_leaves_the_server_fields_behind() {
        let doc = json!({"_id":"a","identifier":"i","srvModified":1,"isValid":true,"sgv":5});
        let Value::Object(doc) = doc else { panic!() };
        let up = for_upload(doc.clone(), false);
        assert_eq!(Value::Object(up), json!({"identifier":"i","sgv":5}));
        let up = for_upload(doc, true);
        assert_eq!(up["_id"], "a");
    }
}
