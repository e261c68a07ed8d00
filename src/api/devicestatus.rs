//! /api/v1/devicestatus: loop, pump and uploader status.

use actix_web::web;

use super::resource::{self, Resource};
use crate::store::upsert::Merge;
use crate::store::Collection;

pub const RESOURCE: Resource = Resource {
    coll: Collection::DeviceStatus,
    default_count: 10,
    count_with_find: 10,
    last_modified: false,
    window: true,
    merge: Merge::Replace,
    delete_by_identifier: false,
    delete_replies_empty: false,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Nightscout has no PUT for devicestatus.
    resource::routes(cfg, "/devicestatus", RESOURCE, false);
}
