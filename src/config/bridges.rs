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

/// LibreLinkUp (research/bridges.md §3): a follower account of the patient's LibreLink app.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkUp {
    pub username: String,
    pub password: Password,
    /// `eu`, `us`, `eu2`, ... (`gb`/`uk` read as `eu2`).
    pub region: String,
    /// CONNECT_LINK_UP_SERVER: a host or base URL instead of the region's (then region
    /// redirects stay on it).
    pub server: Option<String>,
    pub patient_id: Option<String>,
    pub interval_min: u32,
    /// The app version sent; LibreLinkUp refuses versions below its floor.
    pub version: String,
}

impl LinkUp {
    /// The host of a region.
    pub fn region_host(region: &str) -> String {
        match region {
            "ru" => "api.libreview.ru".to_string(),
            "cn" => "api-cn.myfreestyle.cn".to_string(),
            r => format!("api-{r}.libreview.io"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    DexcomShare(DexcomShare),
    LinkUp(LinkUp),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bridges {
    pub sources: Vec<SourceSettings>,
    /// nightscout-connect's names for sources nightlite does not have yet: reported as
    /// stopped in the status API and the log, rather than silently ignored.
    pub not_built: Vec<String>,
}

/// nightscout-connect's source names nightlite knows but has not built yet.
const NOT_BUILT: &[&str] = &["nightscout", "glooko", "minimedcarelink"];

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
    let mut linkup = false;
    for name in r.list("CONNECT_SOURCE")? {
        let lower = name.to_ascii_lowercase();
        if lower == "dexcomshare" {
            dexcom = true;
        } else if lower == "linkup" || lower == "librelinkup" {
            linkup = true;
        } else if NOT_BUILT.contains(&lower.as_str()) {
            if !out.not_built.contains(&lower) {
                out.not_built.push(lower);
            }
        } else {
            return Err(invalid(
                "CONNECT_SOURCE",
                format!(
                    "'{name}' is not a source (dexcomshare, linkup; not built yet: {})",
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
    // Read whether or not the source is on, so a bad value is refused either way.
    let link_region = r.text("CONNECT_LINK_UP_REGION")?;
    let interval_min = r.count("CONNECT_LINK_UP_INTERVAL")?;
    let version = r.text("CONNECT_LINK_UP_VERSION")?;
    let link_server = r.given("CONNECT_LINK_UP_SERVER")?;
    let link_user = r.given("CONNECT_LINK_UP_USERNAME")?;
    let link_password = r.given("CONNECT_LINK_UP_PASSWORD")?;
    let patient_id = r.given("CONNECT_LINK_UP_PATIENT_ID")?;
    if linkup {
        let username = link_user.ok_or_else(|| {
            invalid(
                "CONNECT_LINK_UP_USERNAME",
                "must be set for CONNECT_SOURCE=linkup (the LibreLinkUp follower's email)",
            )
        })?;
        let password = link_password.ok_or_else(|| {
            invalid(
                "CONNECT_LINK_UP_PASSWORD",
                "must be set for CONNECT_SOURCE=linkup",
            )
        })?;
        out.sources.push(SourceSettings::LinkUp(LinkUp {
            username,
            password: Password::new(password),
            region: link_region,
            server: link_server,
            patient_id,
            interval_min,
            version,
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
            other => panic!("{other:?}"),
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
            ("CONNECT_SOURCE", "dexcomshare nightscout"),
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
        assert_eq!(c.bridges.not_built, ["nightscout"]);
        let e = config(&[("CONNECT_SOURCE", "librelinkup")]).unwrap_err();
        assert!(
            e.to_string().starts_with("CONNECT_LINK_UP_USERNAME:"),
            "{e}"
        );
        let c = config(&[
            ("CONNECT_SOURCE", "linkup"),
            ("CONNECT_LINK_UP_USERNAME", "f@example.org"),
            ("CONNECT_LINK_UP_PASSWORD", "pw"),
            ("CONNECT_LINK_UP_REGION", "UK"),
        ])
        .unwrap();
        match &c.bridges.sources[0] {
            SourceSettings::LinkUp(l) => {
                assert_eq!((l.region.as_str(), l.interval_min), ("eu2", 5));
                assert_eq!(LinkUp::region_host(&l.region), "api-eu2.libreview.io");
            }
            other => panic!("{other:?}"),
        }
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
