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

/// How Glooko's local times, written as UTC, are read (research/bridges.md §4).
#[derive(Debug, Clone, PartialEq)]
pub enum LocalTime {
    /// CONNECT_GLOOKO_TIMEZONE: an IANA zone, right across DST changes.
    Zone(String),
    /// CONNECT_GLOOKO_TIMEZONE_OFFSET: minutes east of UTC, all year.
    Offset(i32),
}

/// Glooko (research/bridges.md §4): the account's email sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Glooko {
    pub email: String,
    pub password: Password,
    /// CONNECT_GLOOKO_SERVER as given, else CONNECT_GLOOKO_ENV's host.
    pub server: String,
    /// The web app's origin, sent as Origin and Referer as the browser does.
    pub web_origin: String,
    pub local_time: LocalTime,
}

impl Glooko {
    /// The API host and web origin of a CONNECT_GLOOKO_ENV value (nightscout-connect's).
    pub fn env_hosts(env: &str) -> (&'static str, &'static str) {
        match env {
            "eu" => ("eu.api.glooko.com", "https://eu.my.glooko.com"),
            "de-fr" => ("de-fr.api.glooko.com", "https://de-fr.my.glooko.com"),
            "ca" => ("ca.api.glooko.com", "https://ca.my.glooko.com"),
            "development" => ("api.glooko.work", "https://my.glooko.work"),
            "production" => ("externalapi.glooko.com", "https://my.glooko.com"),
            _ => ("api.glooko.com", "https://my.glooko.com"),
        }
    }
}

/// Tandem Source (research/bridges.md §6): the t:slim X2 / Mobi account's login.
#[derive(Debug, Clone, PartialEq)]
pub struct Tandem {
    pub email: String,
    pub password: Password,
    /// `us` or `eu`.
    pub region: String,
    /// CONNECT_TANDEM_SERVER: one base URL serving both the accounts and the Source hosts
    /// (a proxy, or the tests' fake) instead of the region's two.
    pub server: Option<String>,
    /// The IANA zone of the pump's clock, which has none.
    pub zone: String,
    /// CONNECT_TANDEM_CLIENT_ID, when not the region's.
    pub client_id: Option<String>,
}
/// Medtronic CareLink (research/bridges.md §5): tokens imported from a login tool's file,
/// refreshed and written back by the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Carelink {
    /// CONNECT_CARELINK_LOGIN_FILE: the login tool's `logindata.json`.
    pub token_file: String,
    /// CONNECT_CARELINK_USERNAME: the account the tokens belong to.
    pub username: String,
    /// CONNECT_CARELINK_PATIENT_USERNAME: care-partner mode, the patient followed.
    pub patient: Option<String>,
    /// CONNECT_CARELINK_SERVER as given, else CONNECT_CARELINK_REGION's host.
    pub server: String,
}

/// Another Nightscout-compatible site (CONNECT_SOURCE_ENDPOINT, or CONNECT_OUTPUT), its base
/// URL apart from the credential a `?token=` on it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSite {
    /// Scheme, host, port and path, without a query or a trailing slash.
    pub base: String,
    pub token: Option<Password>,
    pub api_secret: Option<Password>,
}

/// CONNECT_SOURCE=nightscout: follow another Nightscout (src/connect/nightscout.rs).
#[derive(Debug, Clone, PartialEq)]
pub struct NightscoutSource {
    pub site: RemoteSite,
    /// Of `entries`, `treatments`, `devicestatus`, `profile`, in that order.
    pub collections: Vec<String>,
    pub backfill_hours: u32,
}

/// The collections a Nightscout source may follow (and the output uploads), in order.
pub const REMOTE_COLLECTIONS: [&str; 4] = ["entries", "treatments", "devicestatus", "profile"];

#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    DexcomShare(DexcomShare),
    LinkUp(LinkUp),
    Glooko(Glooko),
    Tandem(Tandem),
    Nightscout(NightscoutSource),
    Carelink(Carelink),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bridges {
    pub sources: Vec<SourceSettings>,
    /// nightscout-connect's names for sources nightlite does not have yet: reported as
    /// stopped in the status API and the log, rather than silently ignored.
    pub not_built: Vec<String>,
    /// CONNECT_OUTPUT: upload what is stored to this site (src/connect/output.rs).
    pub output: Option<RemoteSite>,
}

/// A site from a URL setting that may end in `?token=...`: the base URL, and the token (or
/// else `token`) and the API secret as the credentials.
pub(crate) fn remote_site(
    name: &'static str,
    url: &str,
    token: Option<String>,
    api_secret: Option<String>,
) -> Result<RemoteSite, ConfigError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() < 9 {
        return Err(invalid(name, "must be an http(s):// URL"));
    }
    let from_url = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(RemoteSite {
        base: base.trim_end_matches('/').to_string(),
        token: from_url.or(token).map(Password::new),
        api_secret: api_secret.map(Password::new),
    })
}

/// nightscout-connect's source names nightlite knows but has not built yet.
const NOT_BUILT: &[&str] = &[];

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
    let mut glooko = false;
    let mut tandem = false;
    let mut nightscout = false;
    let mut carelink = false;
    for name in r.list("CONNECT_SOURCE")? {
        let lower = name.to_ascii_lowercase();
        if lower == "dexcomshare" {
            dexcom = true;
        } else if lower == "linkup" || lower == "librelinkup" {
            linkup = true;
        } else if lower == "glooko" {
            glooko = true;
        } else if lower == "tandem" || lower == "tandemsource" {
            tandem = true;
        } else if lower == "nightscout" {
            nightscout = true;
        } else if lower == "minimedcarelink" || lower == "carelink" {
            carelink = true;
        } else if NOT_BUILT.contains(&lower.as_str()) {
            if !out.not_built.contains(&lower) {
                out.not_built.push(lower);
            }
        } else {
            return Err(invalid(
                "CONNECT_SOURCE",
                format!(
                    "'{name}' is not a source (dexcomshare, linkup, nightscout, glooko, tandem, minimedcarelink)"
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
    if let Some(g) = read_glooko(r, glooko)? {
        out.sources.push(SourceSettings::Glooko(g));
    }
    if let Some(t) = read_tandem(r, tandem)? {
        out.sources.push(SourceSettings::Tandem(t));
    }
    if let Some(c) = read_carelink(r, carelink)? {
        out.sources.push(SourceSettings::Carelink(c));
    }
    read_nightscout(r, nightscout, &mut out)?;
    Ok(out)
}

/// CareLink's settings, read (and so checked) whether or not the source is on.
fn read_carelink(r: &Reader, on: bool) -> Result<Option<Carelink>, ConfigError> {
    let token_file = r.given("CONNECT_CARELINK_LOGIN_FILE")?;
    let username = r.given("CONNECT_CARELINK_USERNAME")?;
    let patient = r.given("CONNECT_CARELINK_PATIENT_USERNAME")?;
    let region = r.text("CONNECT_CARELINK_REGION")?;
    let server = r.given("CONNECT_CARELINK_SERVER")?;
    if !on {
        return Ok(None);
    }
    let token_file = token_file.ok_or_else(|| {
        invalid(
            "CONNECT_CARELINK_LOGIN_FILE",
            "must be set for CONNECT_SOURCE=minimedcarelink: the logindata.json a CareLink \
             login tool writes (docs/bridges.md)",
        )
    })?;
    let username = username.ok_or_else(|| {
        invalid(
            "CONNECT_CARELINK_USERNAME",
            "must be set for CONNECT_SOURCE=minimedcarelink (the CareLink account's username)",
        )
    })?;
    let host = if region == "eu" {
        "clcloud.minimed.eu"
    } else {
        "clcloud.minimed.com"
    };
    Ok(Some(Carelink {
        token_file,
        username,
        patient,
        server: server.unwrap_or_else(|| host.to_string()),
    }))
}

/// An IANA zone setting, refused when the zone is unknown.
fn zone(r: &Reader, name: &'static str) -> Result<Option<String>, ConfigError> {
    let z = r.given(name)?;
    if let Some(z) = &z {
        if jiff::tz::TimeZone::get(z).is_err() {
            return Err(invalid(
                name,
                format!("'{z}' is not an IANA time zone (such as Europe/Berlin)"),
            ));
        }
    }
    Ok(z)
}

/// Tandem Source's settings, read (and so checked) whether or not the source is on.
fn read_tandem(r: &Reader, on: bool) -> Result<Option<Tandem>, ConfigError> {
    let email = r.given("CONNECT_TANDEM_EMAIL")?;
    let password = r.given("CONNECT_TANDEM_PASSWORD")?;
    let region = r.text("CONNECT_TANDEM_REGION")?;
    let server = r.given("CONNECT_TANDEM_SERVER")?;
    let zone = zone(r, "CONNECT_TANDEM_TIMEZONE")?;
    let client_id = r.given("CONNECT_TANDEM_CLIENT_ID")?;
    if !on {
        return Ok(None);
    }
    let email = email.ok_or_else(|| {
        invalid(
            "CONNECT_TANDEM_EMAIL",
            "must be set for CONNECT_SOURCE=tandem (the Tandem Source account's email)",
        )
    })?;
    let password = password.ok_or_else(|| {
        invalid(
            "CONNECT_TANDEM_PASSWORD",
            "must be set for CONNECT_SOURCE=tandem",
        )
    })?;
    let zone = zone.ok_or_else(|| {
        invalid(
            "CONNECT_TANDEM_TIMEZONE",
            "must be set for CONNECT_SOURCE=tandem: the pump's clock has no time zone",
        )
    })?;
    Ok(Some(Tandem {
        email,
        password: Password::new(password),
        region,
        server,
        zone,
        client_id,
    }))
}

/// Glooko's settings, read (and so checked) whether or not the source is on.
fn read_glooko(r: &Reader, on: bool) -> Result<Option<Glooko>, ConfigError> {
    let email = r.given("CONNECT_GLOOKO_EMAIL")?;
    let password = r.given("CONNECT_GLOOKO_PASSWORD")?;
    let env = r.text("CONNECT_GLOOKO_ENV")?;
    let server = r.given("CONNECT_GLOOKO_SERVER")?;
    let zone = zone(r, "CONNECT_GLOOKO_TIMEZONE")?;
    let offset = match r.given("CONNECT_GLOOKO_TIMEZONE_OFFSET")? {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(h) if h.is_finite() && h.abs() <= 14.0 => Some((h * 60.0).round() as i32),
            _ => {
                return Err(invalid(
                    "CONNECT_GLOOKO_TIMEZONE_OFFSET",
                    format!("'{v}' is not a number of hours from -14 to 14"),
                ))
            }
        },
    };
    if !on {
        return Ok(None);
    }
    let email = email.ok_or_else(|| {
        invalid(
            "CONNECT_GLOOKO_EMAIL",
            "must be set for CONNECT_SOURCE=glooko (the Glooko account's email)",
        )
    })?;
    let password = password.ok_or_else(|| {
        invalid(
            "CONNECT_GLOOKO_PASSWORD",
            "must be set for CONNECT_SOURCE=glooko",
        )
    })?;
    let local_time = match (zone, offset) {
        (Some(z), _) => LocalTime::Zone(z),
        (None, Some(o)) => LocalTime::Offset(o),
        (None, None) => {
            return Err(invalid(
                "CONNECT_GLOOKO_TIMEZONE",
                "must be set for CONNECT_SOURCE=glooko (or CONNECT_GLOOKO_TIMEZONE_OFFSET): \
                 Glooko writes the pump's local time as if it were UTC",
            ))
        }
    };
    let (host, origin) = Glooko::env_hosts(&env);
    let web_origin = match &server {
        // The web app's host is the API's with `my` for `api` (api.x → my.x, eu.api.x → eu.my.x).
        Some(s) => {
            let s = s.trim_end_matches('/');
            let base = if s.contains("://") {
                s.to_string()
            } else {
                format!("https://{s}")
            };
            base.replacen("://api.", "://my.", 1)
                .replacen(".api.", ".my.", 1)
        }
        None => origin.to_string(),
    };
    Ok(Some(Glooko {
        email,
        password: Password::new(password),
        server: server.unwrap_or_else(|| host.to_string()),
        web_origin,
        local_time,
    }))
}

/// CONNECT_SOURCE=nightscout's settings and CONNECT_OUTPUT's, read (and so checked) whether
/// or not they are used.
fn read_nightscout(r: &Reader, on: bool, out: &mut Bridges) -> Result<(), ConfigError> {
    let endpoint = r.given("CONNECT_SOURCE_ENDPOINT")?;
    let secret = r.given("CONNECT_SOURCE_API_SECRET")?;
    let mut collections = Vec::new();
    for c in r.list("CONNECT_SOURCE_COLLECTIONS")? {
        let c = c.to_ascii_lowercase();
        if !REMOTE_COLLECTIONS.contains(&c.as_str()) {
            return Err(invalid(
                "CONNECT_SOURCE_COLLECTIONS",
                format!("'{c}' is not one of {}", REMOTE_COLLECTIONS.join(", ")),
            ));
        }
        if !collections.contains(&c) {
            collections.push(c);
        }
    }
    collections.sort_by_key(|c| REMOTE_COLLECTIONS.iter().position(|k| k == c));
    let backfill_hours = r.count("CONNECT_SOURCE_BACKFILL_HOURS")?;
    let site = endpoint
        .map(|e| remote_site("CONNECT_SOURCE_ENDPOINT", &e, None, secret))
        .transpose()?;
    if on {
        let site = site.ok_or_else(|| {
            invalid(
                "CONNECT_SOURCE_ENDPOINT",
                "must be set for CONNECT_SOURCE=nightscout (the URL of the site to follow)",
            )
        })?;
        if collections.is_empty() {
            return Err(invalid("CONNECT_SOURCE_COLLECTIONS", "names no collection"));
        }
        out.sources
            .push(SourceSettings::Nightscout(NightscoutSource {
                site,
                collections,
                backfill_hours,
            }));
    }
    let output = r.given("CONNECT_OUTPUT")?;
    let token = r.given("CONNECT_OUTPUT_TOKEN")?;
    let secret = r.given("CONNECT_OUTPUT_API_SECRET")?;
    if let Some(url) = output {
        let site = remote_site("CONNECT_OUTPUT", &url, token, secret)?;
        if site.token.is_none() && site.api_secret.is_none() {
            return Err(invalid(
                "CONNECT_OUTPUT_TOKEN",
                "must be set for CONNECT_OUTPUT (or a ?token= on it, or CONNECT_OUTPUT_API_SECRET)",
            ));
        }
        out.output = Some(site);
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;
    use crate::Config;

    /// The configuration of these settings alone (sync.rs's tests use it too).
    pub(in crate::config) fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
            ("CONNECT_SOURCE", "dexcomshare"),
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
        assert!(c.bridges.not_built.is_empty());
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
    fn glooko_needs_its_account_and_the_pump_s_zone() {
        let base = [
            ("CONNECT_SOURCE", "glooko"),
            ("CONNECT_GLOOKO_EMAIL", "g@example.org"),
            ("CONNECT_GLOOKO_PASSWORD", "pw"),
        ];
        let e = config(&base).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_GLOOKO_TIMEZONE:"), "{e}");
        let e = config(&[("CONNECT_GLOOKO_TIMEZONE", "Mars/Olympus")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_GLOOKO_TIMEZONE:"), "{e}");
        let e = config(&[("CONNECT_GLOOKO_TIMEZONE_OFFSET", "15")]).unwrap_err();
        assert!(
            e.to_string().starts_with("CONNECT_GLOOKO_TIMEZONE_OFFSET:"),
            "{e}"
        );
        let mut pairs = base.to_vec();
        pairs.extend([
            ("CONNECT_GLOOKO_TIMEZONE_OFFSET", "5.5"),
            ("CONNECT_GLOOKO_ENV", "EU"),
        ]);
        let c = config(&pairs).unwrap();
        match &c.bridges.sources[0] {
            SourceSettings::Glooko(g) => {
                assert_eq!(g.local_time, LocalTime::Offset(330));
                assert_eq!(
                    (g.server.as_str(), g.web_origin.as_str()),
                    ("eu.api.glooko.com", "https://eu.my.glooko.com")
                );
            }
            other => panic!("{other:?}"),
        }
        pairs.extend([
            ("CONNECT_GLOOKO_TIMEZONE", "Europe/Berlin"),
            ("CONNECT_GLOOKO_SERVER", "de-fr.api.glooko.com"),
        ]);
        match &config(&pairs).unwrap().bridges.sources[0] {
            SourceSettings::Glooko(g) => {
                assert_eq!(g.local_time, LocalTime::Zone("Europe/Berlin".into()));
                assert_eq!(g.web_origin, "https://de-fr.my.glooko.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tandem_needs_its_account_and_the_pump_s_zone() {
        let base = [
            ("CONNECT_SOURCE", "tandem"),
            ("CONNECT_TANDEM_EMAIL", "t@example.org"),
            ("CONNECT_TANDEM_PASSWORD", "pw"),
        ];
        let e = config(&base).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_TANDEM_TIMEZONE:"), "{e}");
        let e = config(&[("CONNECT_TANDEM_REGION", "asia")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_TANDEM_REGION:"), "{e}");
        let mut pairs = base.to_vec();
        pairs.extend([
            ("CONNECT_TANDEM_TIMEZONE", "Europe/Vienna"),
            ("CONNECT_TANDEM_REGION", "EU"),
        ]);
        match &config(&pairs).unwrap().bridges.sources[0] {
            SourceSettings::Tandem(t) => {
                assert_eq!(
                    (t.region.as_str(), t.zone.as_str()),
                    ("eu", "Europe/Vienna")
                );
                assert_eq!((t.server.as_ref(), t.client_id.as_ref()), (None, None));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nightscout_source_and_output_settings() {
        let e = config(&[("CONNECT_SOURCE", "nightscout")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_SOURCE_ENDPOINT:"), "{e}");
        let e = config(&[("CONNECT_SOURCE_ENDPOINT", "ftp://x")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_SOURCE_ENDPOINT:"), "{e}");
        let e = config(&[("CONNECT_SOURCE_COLLECTIONS", "entries food")]).unwrap_err();
        assert!(
            e.to_string().starts_with("CONNECT_SOURCE_COLLECTIONS:"),
            "{e}"
        );
        let c = config(&[
            ("CONNECT_SOURCE", "nightscout"),
            (
                "CONNECT_SOURCE_ENDPOINT",
                "https://ns.example.org/sub/?token=reader-0123456789abcdef",
            ),
            ("CONNECT_SOURCE_COLLECTIONS", "profile entries"),
            ("CONNECT_SOURCE_BACKFILL_HOURS", "6"),
        ])
        .unwrap();
        match &c.bridges.sources[0] {
            SourceSettings::Nightscout(n) => {
                assert_eq!(n.site.base, "https://ns.example.org/sub");
                assert_eq!(
                    n.site.token.as_ref().map(Password::reveal),
                    Some("reader-0123456789abcdef")
                );
                assert_eq!(n.collections, ["entries", "profile"]);
                assert_eq!(n.backfill_hours, 6);
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        assert!(c.bridges.output.is_none());
        let e = config(&[("CONNECT_OUTPUT", "https://cloud.example.org")]).unwrap_err();
        assert!(e.to_string().starts_with("CONNECT_OUTPUT_TOKEN:"), "{e}");
        let c = config(&[
            ("CONNECT_OUTPUT", "https://cloud.example.org"),
            ("CONNECT_OUTPUT_TOKEN", "up-1"),
        ])
        .unwrap();
        let out = c.bridges.output.unwrap();
        assert_eq!(out.token.as_ref().map(Password::reveal), Some("up-1"));
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
