//! REQ-SYNC-058 on API v3: `GET /api/v3/profile/{identifier}` and profile searches carry the
//! Profile Switch in force now as `activeSwitch` in the reply's envelope, beside `result`,
//! when the reply holds the profile document the switch applies to (docs/api-v4.md). The
//! documents are not touched: clients read, edit and PUT them back, so a field inside them
//! would end up stored.

use serde_json::Value;

use crate::api::v1::State;
use crate::documents::Caller;
use crate::store::{Collection, StoredDoc};

/// `activeSwitch` for a v3 reply of `coll` holding `docs`: the switch in force now when one
/// of them is the document it applies to and the caller may read treatments too (the switch
/// is one). None otherwise, and when it cannot be read (the reply is whole without it).
pub async fn for_reply(
    state: &State,
    caller: &Caller,
    coll: Collection,
    docs: &[StoredDoc],
) -> Option<Value> {
    if coll != Collection::Profile || docs.is_empty() || !caller.has("api:treatments:read") {
        return None;
    }
    let now = crate::dates::now_ms();
    match crate::api::v4::profile::switch_in_force(state, now).await {
        Ok(Some((doc_id, switch))) => docs
            .iter()
            .any(|d| d.is_valid && d.id == doc_id)
            .then_some(switch),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "v3 profile: the active switch could not be read");
            None
        }
    }
}
