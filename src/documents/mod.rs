//! The one way documents are written and read, whoever asks: API v1, API v3 and Socket.IO
//! today; the bridges, replication and importers next. Each operation takes the [`Caller`]
//! (who, and with which permissions) and applies exactly the rules an upload gets:
//! preparation (store::prepare), identity and deduplication (store::upsert, store::v3),
//! srvModified, and, through the store's writer, the change bus that feeds /ws and Socket.IO
//! followers (store::changes). Handlers parse a request, call one operation here and render
//! its typed outcome; SQL stays in src/store/.
//!
//! Permissions are checked here as well as by the HTTP guard in front of a route: the guard
//! answers before a body is read, this layer is what a writer without a route (a bridge)
//! passes through. A refusal is `Err` with Nightscout's 403 "Missing permission ...".

mod caller;
mod read;
mod write;

#[cfg(test)]
mod tests;

pub use caller::{Action, Caller};
pub use read::{find, get, history, list, list_paged, newest_of_device, search, Search};
pub use write::{
    apply_incoming, create, create_each, delete, delete_id, delete_matching, may_replace,
    merge_fields, patch, replace, upsert, Applied, Collect, Incoming, Source,
};

pub use crate::store::upsert::Outcome;

/// One document as a write left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub identifier: String,
    pub outcome: Outcome,
    pub srv_modified: i64,
}
