//! Black-box tests in one binary: each starts a real nightlite on an ephemeral port (the shared
//! harness, tests/support) and speaks HTTP, /ws or Socket.IO to it. docs/testing.md lists the
//! modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod authz;
mod bad_input;
mod compat;
mod connect;
mod data_care;
mod entries;
mod find;
mod import;
mod import_site;
mod matrix;
mod other;
mod persistence;
mod profiles;
mod properties;
mod spans;
mod stats;
mod status;
mod sync_check;
mod sync_digest;
mod sync_run;
mod sync_service;
mod treatment_math;
mod treatments;
mod v1_json;
mod v3;
mod ws;
