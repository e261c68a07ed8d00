//! API v4: what nightlite derives from the stored documents (docs/api-v4.md,
//! docs/state-spans.md). Authorized as
//! API v3 is (Bearer JWT, 401 without, 403 for a missing permission).

mod adjustments;
pub mod bridges;
pub mod profile;
pub mod spans;
// The sync's integrity digest (docs/sync.md).
mod sync_digest;
// The sync with SYNC_URL (docs/sync.md).
mod sync;

use actix_web::web;

use crate::error::{Error, Result};

pub fn routes(cfg: &mut web::ServiceConfig) {
    bridges::routes(cfg);
    profile::routes(cfg);
    spans::routes(cfg);
    adjustments::routes(cfg);
    sync_digest::routes(cfg);
    // The sync service's status, runs and conflicts.
    sync::routes(cfg);
}

/// Latest instant a JavaScript Date can hold, ms.
const MAX_MS: i64 = 8_640_000_000_000_000;

/// A time parameter: epoch milliseconds (digits, optionally signed) or ISO 8601. None when
/// absent; 400 naming the parameter when it is neither.
pub fn time_param(query: &str, name: &str) -> Result<Option<i64>> {
    let Some(raw) = crate::qs::first_value(query, name) else {
        return Ok(None);
    };
    let raw = raw.trim();
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let ms = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<i64>().ok().filter(|v| v.abs() <= MAX_MS)
    } else {
        crate::dates::parse_iso(raw).map(|i| i.ms)
    };
    ms.map(Some).ok_or_else(|| {
        Error::bad_request(format!(
            "{name} must be epoch milliseconds or an ISO 8601 date, got {raw:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn time_params() {
        assert_eq!(
            time_param("at=1776700303000", "at").unwrap(),
            Some(1_776_700_303_000)
        );
        assert_eq!(
            time_param("at=2026-04-20T15:51:43.000Z", "at").unwrap(),
            Some(1_776_700_303_000)
        );
        assert_eq!(
            time_param("at=2026-04-20T17:51:43%2B02:00", "at").unwrap(),
            Some(1_776_700_303_000)
        );
        assert_eq!(time_param("x=1", "at").unwrap(), None);
        for bad in ["at=", "at=yesterday", "at=12.5", "at=99999999999999999999"] {
            let e = time_param(bad, "at").unwrap_err().client_message();
            assert!(e.starts_with("at must be"), "{bad}: {e}");
        }
    }
}
