//! Every setting nightlite reads, under Nightscout's own environment names so a user can move
//! over with the same settings. Values come from an optional TOML file and the environment; the
//! environment wins. Each bad value stops start-up with one line naming the setting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Nightscout refuses an API_SECRET shorter than this (MIN_PASSPHRASE_LENGTH).
pub const MIN_SECRET_LENGTH: usize = 12;
const SECRET_FILE: &str = "api_secret";
/// mg/dl per mmol/l, Nightscout's constant.
pub const MMOL_TO_MGDL: f64 = 18.01559;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    MgDl,
    Mmol,
}

impl Units {
    pub fn as_str(self) -> &'static str {
        match self {
            Units::MgDl => "mg/dl",
            Units::Mmol => "mmol",
        }
    }
}

/// Glucose thresholds, always held in mg/dl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub bg_high: f64,
    pub bg_target_top: f64,
    pub bg_target_bottom: f64,
    pub bg_low: f64,
}

/// Which alarms sound (Nightscout's ALARM_* settings).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSettings {
    pub urgent_high: bool,
    pub high: bool,
    pub low: bool,
    pub urgent_low: bool,
    pub timeago_warn: bool,
    pub timeago_warn_mins: f64,
    pub timeago_urgent: bool,
    pub timeago_urgent_mins: f64,
}

/// TLS_CERT and TLS_KEY: PEM files for serving HTTPS directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Days each collection keeps its documents (`*_RETENTION_DAYS`); 0 keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    pub entries: u32,
    pub treatments: u32,
    pub devicestatus: u32,
    pub activity: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Plain API secret; `None` until [`Config::ensure_secret`] has run.
    pub api_secret: Option<String>,
    pub port: u16,
    /// Address to bind; Nightscout's HOSTNAME (all interfaces when unset).
    pub hostname: String,
    pub data_dir: PathBuf,
    pub units: Units,
    pub thresholds: Thresholds,
    pub auth_default_roles: Vec<String>,
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    pub custom_title: String,
    pub time_format: u8,
    pub theme: String,
    pub language: String,
    pub insecure_use_http: bool,
    /// Largest accepted request body, after gzip decoding.
    pub max_body_bytes: usize,
    /// Penalty each failed credential adds to its address (ms), Nightscout's AUTH_FAIL_DELAY.
    pub auth_fail_delay_ms: i64,
    /// Whether X-Forwarded-For names the client (behind a reverse proxy).
    pub trust_proxy: bool,
    pub alarms: AlarmSettings,
    /// Serve HTTPS with these files; plain HTTP when None.
    pub tls: Option<TlsFiles>,
    /// Nightscout's SECURE_HSTS_HEADER: Strict-Transport-Security on HTTPS responses.
    pub secure_hsts_header: bool,
    /// Path prefix the server answers under ("" or like "/nightscout"), for a proxy's sub-path.
    pub base_path: String,
    /// Hours between scheduled backups; 0 for none.
    pub backup_interval_hours: u32,
    /// Backups the server keeps in `<data dir>/backups` (older ones are removed).
    pub backup_keep: usize,
    pub retention: RetentionDays,
    /// Debug builds only (tests): report this many free bytes on the data directory's disk.
    pub test_disk_free_bytes: Option<u64>,
    /// ALARM_TYPES and the treatment-math plugins' settings (BWP_*, AR2_CONE_FACTOR).
    pub plugins: crate::plugins::Settings,
}

impl Config {
    /// Loads the optional TOML file, then the process environment over it.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut values = match file {
            Some(path) => read_toml(path)?,
            None => HashMap::new(),
        };
        for name in KNOWN_NAMES {
            if let Ok(v) = std::env::var(name) {
                values.insert((*name).to_string(), v);
            }
        }
        Config::from_map(&values)
    }

    /// Builds a config from `NAME -> value` pairs (tests use this directly).
    pub fn from_map(values: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            values
                .get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let api_secret = get("API_SECRET");
        if let Some(s) = &api_secret {
            if s.chars().count() < MIN_SECRET_LENGTH {
                return Err(invalid(
                    "API_SECRET",
                    format!("must be at least {MIN_SECRET_LENGTH} characters long"),
                ));
            }
        }
        let port = match get("PORT") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| invalid("PORT", format!("'{p}' is not a port number (0-65535)")))?,
            None => 1337,
        };
        let units = match get("DISPLAY_UNITS").as_deref().map(str::to_ascii_lowercase) {
            None => Units::MgDl,
            Some(u) if u == "mg/dl" || u == "mgdl" || u == "mg" => Units::MgDl,
            Some(u) if u == "mmol" || u == "mmol/l" => Units::Mmol,
            Some(u) => {
                return Err(invalid(
                    "DISPLAY_UNITS",
                    format!("'{u}' is neither mg/dl nor mmol"),
                ))
            }
        };
        let thresholds = Thresholds {
            bg_high: threshold(&get, "BG_HIGH", 260.0, units)?,
            bg_target_top: threshold(&get, "BG_TARGET_TOP", 180.0, units)?,
            bg_target_bottom: threshold(&get, "BG_TARGET_BOTTOM", 80.0, units)?,
            bg_low: threshold(&get, "BG_LOW", 55.0, units)?,
        };
        let t = thresholds;
        if !(t.bg_low < t.bg_target_bottom
            && t.bg_target_bottom < t.bg_target_top
            && t.bg_target_top < t.bg_high)
        {
            return Err(invalid(
                "BG_LOW",
                "thresholds must rise: BG_LOW < BG_TARGET_BOTTOM < BG_TARGET_TOP < BG_HIGH",
            ));
        }
        let auth_default_roles = get("AUTH_DEFAULT_ROLES")
            .map(|v| split_list(&v))
            .unwrap_or_else(|| vec!["readable".to_string()]);
        let time_format = match get("TIME_FORMAT").as_deref() {
            None => 12,
            Some("12") => 12,
            Some("24") => 24,
            Some(other) => {
                return Err(invalid("TIME_FORMAT", format!("'{other}' is not 12 or 24")))
            }
        };
        let insecure_use_http = match get("INSECURE_USE_HTTP") {
            None => false,
            Some(v) => parse_bool(&v).ok_or_else(|| {
                invalid("INSECURE_USE_HTTP", format!("'{v}' is not true or false"))
            })?,
        };
        let max_body_bytes = match get("NIGHTLITE_MAX_BODY_MB") {
            None => 20 * 1024 * 1024,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|mb| (1..=1024).contains(mb))
                .map(|mb| mb * 1024 * 1024)
                .ok_or_else(|| invalid("NIGHTLITE_MAX_BODY_MB", format!("'{v}' is not 1..1024")))?,
        };

        let auth_fail_delay_ms = match get("AUTH_FAIL_DELAY") {
            None => 5000,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|ms| (0..=600_000).contains(ms))
                .ok_or_else(|| invalid("AUTH_FAIL_DELAY", format!("'{v}' is not 0..600000 ms")))?,
        };
        let trust_proxy = match get("TRUST_PROXY") {
            None => false,
            Some(v) => parse_bool(&v)
                .ok_or_else(|| invalid("TRUST_PROXY", format!("'{v}' is not true or false")))?,
        };

        let tls = match (get("TLS_CERT"), get("TLS_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
            (Some(_), None) => return Err(invalid("TLS_KEY", "must be set with TLS_CERT")),
            (None, Some(_)) => return Err(invalid("TLS_CERT", "must be set with TLS_KEY")),
        };
        let base_path = base_path(get("BASE_PATH").as_deref())?;
        let number =
            |name: &'static str, default: u32, max: u32| -> Result<u32, ConfigError> {
                match get(name) {
                    None => Ok(default),
                    Some(v) => v.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| {
                        invalid(name, format!("'{v}' is not a whole number 0..{max}"))
                    }),
                }
            };
        let backup_interval_hours = number("BACKUP_INTERVAL_HOURS", 0, 24 * 366)?;
        let backup_keep = match number("BACKUP_KEEP", 7, 10_000)? {
            0 => return Err(invalid("BACKUP_KEEP", "must be at least 1")),
            n => n as usize,
        };
        let retention = RetentionDays {
            entries: number("ENTRIES_RETENTION_DAYS", 0, 36_500)?,
            treatments: number("TREATMENTS_RETENTION_DAYS", 0, 36_500)?,
            devicestatus: number("DEVICESTATUS_RETENTION_DAYS", 60, 36_500)?,
            activity: number("ACTIVITY_RETENTION_DAYS", 0, 36_500)?,
        };
        // Only a test build may pretend the disk is full; a release build ignores the name.
        let test_disk_free_bytes = if cfg!(debug_assertions) {
            get("NIGHTLITE_TEST_DISK_FREE_BYTES").and_then(|v| v.parse::<u64>().ok())
        } else {
            None
        };

        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => parse_bool(&v)
                    .ok_or_else(|| invalid(name, format!("'{v}' is not on/off or true/false"))),
            }
        };
        let minutes = |name: &'static str, default: f64| -> Result<f64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m > 0.0)
                    .ok_or_else(|| {
                        invalid(name, format!("'{v}' is not a positive number of minutes"))
                    }),
            }
        };
        let alarms = AlarmSettings {
            urgent_high: flag("ALARM_URGENT_HIGH", true)?,
            high: flag("ALARM_HIGH", true)?,
            low: flag("ALARM_LOW", true)?,
            urgent_low: flag("ALARM_URGENT_LOW", true)?,
            timeago_warn: flag("ALARM_TIMEAGO_WARN", true)?,
            timeago_warn_mins: minutes("ALARM_TIMEAGO_WARN_MINS", 15.0)?,
            timeago_urgent: flag("ALARM_TIMEAGO_URGENT", true)?,
            timeago_urgent_mins: minutes("ALARM_TIMEAGO_URGENT_MINS", 30.0)?,
        };
        let secure_hsts_header = flag("SECURE_HSTS_HEADER", true)?;

        Ok(Config {
            api_secret,
            port,
            hostname: get("HOSTNAME").unwrap_or_else(|| "0.0.0.0".to_string()),
            data_dir: PathBuf::from(
                get("NIGHTLITE_DATA_DIR").unwrap_or_else(|| "./nightlite-data".to_string()),
            ),
            units,
            thresholds,
            auth_default_roles,
            enable: get("ENABLE").map(|v| split_list(&v)).unwrap_or_default(),
            disable: get("DISABLE").map(|v| split_list(&v)).unwrap_or_default(),
            custom_title: get("CUSTOM_TITLE").unwrap_or_else(|| "Nightscout".to_string()),
            time_format,
            theme: get("THEME").unwrap_or_else(|| "default".to_string()),
            language: get("LANGUAGE").unwrap_or_else(|| "en".to_string()),
            insecure_use_http,
            max_body_bytes,
            auth_fail_delay_ms,
            trust_proxy,
            alarms,
            tls,
            secure_hsts_header,
            base_path,
            backup_interval_hours,
            backup_keep,
            retention,
            test_disk_free_bytes,
            plugins: crate::plugins::Settings::from_map(values),
        })
    }

    /// Makes sure an API secret exists: the configured one, else the one stored in the data
    /// directory, else a new one written there (mode 0600). Returns the secret when it was
    /// generated just now, so the caller can show it once.
    pub fn ensure_secret(&mut self) -> Result<Option<String>, ConfigError> {
        if self.api_secret.is_some() {
            return Ok(None);
        }
        let dir_err = |source| ConfigError::DataDir {
            path: self.data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.data_dir).map_err(dir_err)?;
        let path = self.secret_file();
        if let Ok(stored) = std::fs::read_to_string(&path) {
            let stored = stored.trim().to_string();
            if stored.chars().count() >= MIN_SECRET_LENGTH {
                self.api_secret = Some(stored);
                return Ok(None);
            }
        }
        let secret = crate::ids::random_secret();
        write_private(&path, &secret).map_err(|source| ConfigError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        self.api_secret = Some(secret.clone());
        Ok(Some(secret))
    }

    pub fn secret_file(&self) -> PathBuf {
        self.data_dir.join(SECRET_FILE)
    }

    pub fn enabled(&self, feature: &str) -> bool {
        self.enable.iter().any(|f| f == feature) && !self.disable.iter().any(|f| f == feature)
    }
}

/// Every name read from the environment (also accepted as keys of the TOML file).
pub const KNOWN_NAMES: &[&str] = &[
    "API_SECRET",
    "PORT",
    "HOSTNAME",
    "NIGHTLITE_DATA_DIR",
    "DISPLAY_UNITS",
    "BG_HIGH",
    "BG_TARGET_TOP",
    "BG_TARGET_BOTTOM",
    "BG_LOW",
    "AUTH_DEFAULT_ROLES",
    "ENABLE",
    "DISABLE",
    "CUSTOM_TITLE",
    "TIME_FORMAT",
    "THEME",
    "LANGUAGE",
    "INSECURE_USE_HTTP",
    "NIGHTLITE_MAX_BODY_MB",
    "AUTH_FAIL_DELAY",
    "TRUST_PROXY",
    "ALARM_URGENT_HIGH",
    "ALARM_HIGH",
    "ALARM_LOW",
    "ALARM_URGENT_LOW",
    "ALARM_TIMEAGO_WARN",
    "ALARM_TIMEAGO_WARN_MINS",
    "ALARM_TIMEAGO_URGENT",
    "ALARM_TIMEAGO_URGENT_MINS",
    "TLS_CERT",
    "TLS_KEY",
    "SECURE_HSTS_HEADER",
    "BASE_PATH",
    "BACKUP_INTERVAL_HOURS",
    "BACKUP_KEEP",
    "ENTRIES_RETENTION_DAYS",
    "TREATMENTS_RETENTION_DAYS",
    "DEVICESTATUS_RETENTION_DAYS",
    "ACTIVITY_RETENTION_DAYS",
    "NIGHTLITE_TEST_DISK_FREE_BYTES",
    // src/plugins/settings.rs
    "ALARM_TYPES",
    "BWP_WARN",
    "BWP_URGENT",
    "BWP_SNOOZE",
    "BWP_SNOOZE_MINS",
    "AR2_CONE_FACTOR",
];

fn read_toml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let file_err = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
    let mut out = HashMap::new();
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !KNOWN_NAMES.contains(&name.as_str()) {
            return Err(file_err(format!("unknown setting '{key}'")));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{v:?}"))
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => return Err(file_err(format!("{key}: unsupported value {other:?}"))),
        };
        out.insert(name, text);
    }
    Ok(out)
}

fn threshold(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
    units: Units,
) -> Result<f64, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    let v: f64 = raw
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .ok_or_else(|| invalid(name, format!("'{raw}' is not a positive number")))?;
    // Nightscout accepts thresholds in mmol/l when the display unit is mmol.
    if units == Units::Mmol && v < 50.0 {
        Ok((v * MMOL_TO_MGDL).round())
    } else {
        Ok(v)
    }
}

/// BASE_PATH as a prefix to match: "" for none, else "/a/b" (leading slash, none trailing).
fn base_path(raw: Option<&str>) -> Result<String, ConfigError> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let ok = trimmed.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    });
    if !ok {
        return Err(invalid(
            "BASE_PATH",
            format!("'{raw}' is not a plain path like /nightscout (letters, digits, - . _ ~)"),
        ));
    }
    Ok(format!("/{trimmed}"))
}

/// Nightscout splits role and feature lists on spaces, commas and colons.
fn split_list(v: &str) -> Vec<String> {
    v.split([' ', ',', ':', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub(crate) fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_nightscout() {
        let c = Config::from_map(&HashMap::new()).unwrap();
        assert_eq!(c.port, 1337);
        assert_eq!(c.units, Units::MgDl);
        assert_eq!(c.thresholds.bg_high, 260.0);
        assert_eq!(c.auth_default_roles, vec!["readable"]);
    }

    #[test]
    fn short_secret_is_refused_with_its_name() {
        let e = Config::from_map(&map(&[("API_SECRET", "short")])).unwrap_err();
        assert!(e.to_string().starts_with("API_SECRET:"), "{e}");
    }

    #[test]
    fn bad_port_names_the_setting() {
        let e = Config::from_map(&map(&[("PORT", "http")])).unwrap_err();
        assert!(e.to_string().starts_with("PORT:"), "{e}");
    }

    #[test]
    fn mmol_thresholds_are_converted() {
        let c = Config::from_map(&map(&[("DISPLAY_UNITS", "mmol"), ("BG_HIGH", "14")])).unwrap();
        assert_eq!(c.thresholds.bg_high, 252.0);
    }

    #[test]
    fn roles_split_on_space_comma_colon() {
        let c =
            Config::from_map(&map(&[("AUTH_DEFAULT_ROLES", "readable, careportal:x y")])).unwrap();
        assert_eq!(
            c.auth_default_roles,
            vec!["readable", "careportal", "x", "y"]
        );
    }

    #[test]
    fn generated_secret_is_stored_privately_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::from_map(&map(&[(
            "NIGHTLITE_DATA_DIR",
            dir.path().to_str().unwrap(),
        )]))
        .unwrap();
        let s = c.ensure_secret().unwrap().unwrap();
        assert!(s.len() >= MIN_SECRET_LENGTH);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(c.secret_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = Config::from_map(&map(&[(
            "NIGHTLITE_DATA_DIR",
            dir.path().to_str().unwrap(),
        )]))
        .unwrap();
        assert_eq!(again.ensure_secret().unwrap(), None);
        assert_eq!(again.api_secret.as_deref(), Some(s.as_str()));
    }

    #[test]
    fn tls_needs_both_files_and_base_path_is_normalised() {
        let e = Config::from_map(&map(&[("TLS_CERT", "/c.pem")])).unwrap_err();
        assert!(e.to_string().starts_with("TLS_KEY:"), "{e}");
        let c = Config::from_map(&map(&[("TLS_CERT", "/c.pem"), ("TLS_KEY", "/k.pem")])).unwrap();
        assert_eq!(c.tls.unwrap().key, PathBuf::from("/k.pem"));
        let c = Config::from_map(&map(&[("BASE_PATH", "nightscout/")])).unwrap();
        assert_eq!(c.base_path, "/nightscout");
        assert_eq!(
            Config::from_map(&map(&[("BASE_PATH", "/")]))
                .unwrap()
                .base_path,
            ""
        );
        for bad in ["/a/../b", "/a b", "/a//b"] {
            let e = Config::from_map(&map(&[("BASE_PATH", bad)])).unwrap_err();
            assert!(e.to_string().starts_with("BASE_PATH:"), "{bad}: {e}");
        }
    }

    #[test]
    fn data_care_defaults_and_bounds() {
        let c = Config::from_map(&HashMap::new()).unwrap();
        assert_eq!(c.retention.devicestatus, 60);
        assert_eq!(c.retention.entries, 0);
        assert_eq!((c.backup_interval_hours, c.backup_keep), (0, 7));
        let e = Config::from_map(&map(&[("BACKUP_KEEP", "0")])).unwrap_err();
        assert!(e.to_string().starts_with("BACKUP_KEEP:"), "{e}");
        let e = Config::from_map(&map(&[("ENTRIES_RETENTION_DAYS", "-1")])).unwrap_err();
        assert!(e.to_string().starts_with("ENTRIES_RETENTION_DAYS:"), "{e}");
    }

    #[test]
    fn toml_file_is_read_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        std::fs::write(&p, "port = 8080\nDISPLAY_UNITS = \"mmol\"\n").unwrap();
        let m = read_toml(&p).unwrap();
        assert_eq!(m.get("PORT").map(String::as_str), Some("8080"));
        std::fs::write(&p, "prot = 8080\n").unwrap();
        assert!(read_toml(&p).is_err());
    }
}
