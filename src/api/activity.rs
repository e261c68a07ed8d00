//! /api/v1/activity: steps, heart rate and other activity records.

use actix_web::web;

use super::resource::{self, Resource};
use crate::store::upsert::Merge;
use crate::store::Collection;

pub const RESOURCE: Resource = Resource {
    coll: Collection::Activity,
    default_count: 10,
    count_with_find: 10,
    last_modified: true,
    window: true,
    merge: Merge::Replace,
    delete_by_identifier: false,
    delete_replies_empty: true,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    resource::routes(cfg, "/activity", RESOURCE, true);
}
