//! The bridges' settings (nightscout-connect's names, so setups move over unchanged):
//! CONNECT_SOURCE and each source's account, with cgm-remote-monitor's BRIDGE_* as the
//! fallback for Dexcom Share. A source that is on but lacks a setting it needs stops start-up
//! naming that setting. Passwords are [`Password`]s: never printed, not even by `{:?}`.

use super::table::Reader;
use super::{invalid, ConfigError};

/// A vendor password: its Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(p: String) -> Password {
        Password(p)
    }

    /// The password itself, for the login request only.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(not shown)")
    }
}

/// Dexcom Share's three services (research/bridges.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareRegion {
    Us,
    Ous,
    Jp,
}

impl ShareRegion {
    pub fn host(self) -> &'static str {
        match self {
            ShareRegion::Us => "share2.dexcom.com",
            ShareRegion::Ous => "shareous1.dexcom.com",
            ShareRegion::Jp => "share.dexcom.jp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DexcomShare {
    pub account_name: String,
    pub password: Password,
    pub region: ShareRegion,
    /// CONNECT_SHARE_SERVER (or BRIDGE_SERVER) as given: a host or a base URL; the region's
    /// host when unset.
    pub server: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    DexcomShare(DexcomShare),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bridges {
    pub sources: Vec<SourceSettings>,
    /// nightscout-connect's names for sources nightlite does not have yet: reported as
    /// stopped in the status API and the log, rather than silently ignored.
    pub not_built: Vec<String>,
}

/// nightscout-connect's source names nightlite knows but has not built yet.
const NOT_BUILT: &[&str] = &[
    "linkup",
    "librelinkup",
    "nightscout",
    "glooko",
    "minimedcarelink",
];

fn share_region(v: &str) -> ShareRegion {
    match v {
        "ous" => ShareRegion::Ous,
        "jp" => ShareRegion::Jp,
        _ => ShareRegion::Us,
    }
}

pub(super) fn read(r: &Reader, enable: &[String]) -> Result<Bridges, ConfigError> {
    let mut out = Bridges::default();
    let mut dexcom = false;
    for name in r.list("CONNECT_SOURCE")? {
        let lower = name.to_ascii_lowercase();
        if lower == "dexcomshare" {
            dexcom = true;
        } else if NOT_BUILT.contains(&lower.as_str()) {
            if !out.not_built.contains(&lower) {
                out.not_built.push(lower);
            }
        } else {
            return Err(invalid(
                "CONNECT_SOURCE",
                format!(
                    "'{name}' is not a source (dexcomshare; not built yet: {})",
                    NOT_BUILT.join(", ")
                ),
            ));
        }
    }
    // cgm-remote-monitor's share2nightscout bridge: `bridge` in ENABLE with BRIDGE_USER_NAME.
    let legacy = enable.iter().any(|e| e == "bridge") && r.given("BRIDGE_USER_NAME")?.is_some();
    let account = r.given("CONNECT_SHARE_ACCOUNT_NAME")?;
    let password = r.given("CONNECT_SHARE_PASSWORD")?;
    // Read (and so checked) whether or not a source is on; the table's row maps `eu` to `ous`.
    let region = r
        .given("CONNECT_SHARE_REGION")?
        .map(|_| r.text("CONNECT_SHARE_REGION"))
        .transpose()?;
    let server = r.given("CONNECT_SHARE_SERVER")?;
    let (b_user, b_password, b_server) = (
        r.given("BRIDGE_USER_NAME")?,
        r.given("BRIDGE_PASSWORD")?,
        r.given("BRIDGE_SERVER")?,
    );
    if dexcom || legacy {
        let account_name = account.or(b_user).ok_or_else(|| {
            invalid(
                "CONNECT_SHARE_ACCOUNT_NAME",
                "must be set for CONNECT_SOURCE=dexcomshare (the Dexcom account that shares)",
            )
        })?;
        let password = password.or(b_password).ok_or_else(|| {
            invalid(
                "CONNECT_SHARE_PASSWORD",
                "must be set for CONNECT_SOURCE=dexcomshare",
            )
        })?;
        let region = match &region {
            Some(v) => share_region(v),
            // BRIDGE_SERVER=EU is the legacy spelling of the region.
            None => match b_server.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("EU") => ShareRegion::Ous,
                _ => ShareRegion::Us,
            },
        };
        let server = match (server, b_server) {
            (Some(s), _) => s,
            (None, Some(b)) if !matches!(b.to_ascii_uppercase().as_str(), "US" | "EU") => b,
            _ => region.host().to_string(),
        };
        if server.contains("://")
            && !(server.starts_with("https://") || server.starts_with("http://"))
        {
            return Err(invalid(
                "CONNECT_SHARE_SERVER",
                "must be a host name or an http(s):// URL",
            ));
        }
        out.sources.push(SourceSettings::DexcomShare(DexcomShare {
            account_name,
            password: Password::new(password),
            region,
            server,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;
    use crate::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&map)
    }

    fn dexcom(c: &Config) -> &DexcomShare {
        match c.bridges.sources.first() {
            Some(SourceSettings::DexcomShare(d)) => d,
            None => panic!("no source"),
        }
    }

    #[test]
    fn an_enabled_source_without_its_settings_stops_start_up_naming_them() {
        let e = config(&[("CONNECT_SOURCE", "dexcomshare")]).unwrap_err();
        assert!(
            e.to_string().starts_with("CONNECT_SHARE_ACCOUNT_NAME:"),
            "{e}"
        );
        let e = config(&[
            ("CONNECT_SOURCE", "dexcomshare"),
            ("CONNECT_SHARE_ACCOUNT_NAME", "a"),
        ])
        .unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_SHARE_PASSWORD:"), "{e}");
        let e = config(&[("CONNECT_SOURCE", "dexcom")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_SOURCE:"), "{e}");
        let e = config(&[("CONNECT_SHARE_REGION", "mars")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_SHARE_REGION:"), "{e}");
        // Nothing on, nothing needed.
        assert!(config(&[]).unwrap().bridges.sources.is_empty());
    }

    #[test]
    fn dexcom_settings_regions_servers_and_the_legacy_names() {
        let c = config(&[
            ("CONNECT_SOURCE", "dexcomshare linkup"),
            ("CONNECT_SHARE_ACCOUNT_NAME", "a@example.org"),
            ("CONNECT_SHARE_PASSWORD", "pw"),
            ("CONNECT_SHARE_REGION", "EU"),
        ])
        .unwrap();
        let d = dexcom(&c);
        assert_eq!(
            (d.region, d.server.as_str()),
            (ShareRegion::Ous, "shareous1.dexcom.com")
        );
        assert_eq!(c.bridges.not_built, ["linkup"]);
        let c = config(&[
            ("CONNECT_SOURCE", "dexcomshare"),
            ("CONNECT_SHARE_ACCOUNT_NAME", "a"),
            ("CONNECT_SHARE_PASSWORD", "pw"),
            ("CONNECT_SHARE_SERVER", "http://127.0.0.1:9"),
        ])
        .unwrap();
        assert_eq!(dexcom(&c).server, "http://127.0.0.1:9");
        // cgm-remote-monitor's bridge plugin.
        let c = config(&[
            ("ENABLE", "careportal bridge"),
            ("BRIDGE_USER_NAME", "b"),
            ("BRIDGE_PASSWORD", "pw2"),
            ("BRIDGE_SERVER", "EU"),
        ])
        .unwrap();
        let d = dexcom(&c);
        assert_eq!(d.account_name, "b");
        assert_eq!(d.password.reveal(), "pw2");
        assert_eq!(d.region, ShareRegion::Ous);
        // BRIDGE_* without `bridge` in ENABLE turn nothing on.
        let c = config(&[("BRIDGE_USER_NAME", "b"), ("BRIDGE_PASSWORD", "pw2")]).unwrap();
        assert!(c.bridges.sources.is_empty());
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let c = config(&[
            ("CONNECT_SOURCE", "dexcomshare"),
            ("CONNECT_SHARE_ACCOUNT_NAME", "a"),
            ("CONNECT_SHARE_PASSWORD", "hunter2-secret"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2-secret"));
        assert_eq!(dexcom(&c).password.reveal(), "hunter2-secret");
    }
}
