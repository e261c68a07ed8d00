//! /api/v1/treatments: boluses, carbs, temp basals, notes, site changes ...

use actix_web::web;

use super::resource::{self, Resource};
use crate::store::upsert::Merge;
use crate::store::Collection;

pub const RESOURCE: Resource = Resource {
    coll: Collection::Treatments,
    default_count: 100,
    count_with_find: 1000,
    last_modified: true,
    window: true,
    merge: Merge::Replace,
    delete_by_identifier: true,
    delete_replies_empty: false,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    resource::routes(cfg, "/treatments", RESOURCE, true);
}
