//! Black-box tests: each starts a real nightlite on an ephemeral port and speaks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
