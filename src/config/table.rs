//! The one table of settings. Each row names a setting, says how its value is read and what it
//! is when unset, and documents it in one line. [`super::Config::from_map`] reads every value
//! through [`Reader`], which takes the rule and the default from the row; `nightlite settings`
//! lists the rows, and the README's settings table and the packaged nightlite.toml are made
//! from them (`nightlite settings --markdown`, `--toml`; tests fail when the files differ).
//!
//! No row says since which version a setting exists: every one came with 0.1.0, the first
//! version, so the column would say nothing yet. Add it with the first setting a release adds.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{invalid, parse_bool, split_list, ConfigError, MIN_SECRET_LENGTH};

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Nightscout's environment name where Nightscout has the setting.
    pub name: &'static str,
    pub kind: Kind,
    /// The value in force when the setting is unset, written as a user would write it; ""
    /// when unset means none (no TLS, no prefix) or something the doc line explains.
    pub default: &'static str,
    /// One line for the README (Markdown).
    pub doc: &'static str,
    pub scope: Scope,
    /// How the packaged nightlite.toml shows it.
    pub packaged: Packaged,
    /// Comment lines the packaged nightlite.toml puts before it.
    pub note: Note,
}

/// How a value is read, and so which values are accepted (each with the message a bad value
/// stops start-up with, after `NAME: `).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Any text.
    Text,
    /// Text that is never shown: `nightlite settings` says only whether it is set.
    Secret,
    /// A vendor's password: any text, never shown (as [`Kind::Secret`], without its length).
    Password,
    /// A vendor account's name or email: any text; personal data, so `nightlite settings`
    /// shows it only with `--reveal`.
    Account,
    /// A file or folder.
    Path,
    /// Words, split on spaces, commas and colons as Nightscout splits them.
    List,
    /// true/false, on/off, yes/no, 1/0; refused as "'v' is not `refusal`".
    Flag { refusal: &'static str },
    /// A TCP port.
    Port,
    /// A whole number 0..=max, or 1..=max when 0 is refused ("must be at least 1").
    Count { max: u32, at_least_one: bool },
    /// A whole number min..=max; `unit` follows the range in the refusal.
    Range {
        min: i64,
        max: i64,
        unit: &'static str,
    },
    /// A finite number above 0, refused as "'v' is not a positive `what`".
    Positive { what: &'static str },
    /// One of `words` (accepted spelling, the value it stands for); `fold_case` compares in
    /// lower case (and quotes the value so in the refusal, as ever).
    Choice {
        words: &'static [(&'static str, &'static str)],
        fold_case: bool,
        refusal: &'static str,
    },
    /// Read by its own code in config.rs (or main.rs); `values` says what it accepts.
    Custom { values: &'static str },
    /// Read by the treatment-math plugins (src/plugins/settings.rs) as Nightscout reads it,
    /// `Number(x) || default`: a value that is not a number falls back to the default and
    /// never stops start-up.
    Plugin { values: &'static str },
}

/// Where a setting may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The environment, or the TOML file (the environment wins).
    Anywhere,
    /// The environment only: read before the file is (the log, the file's own name).
    Environment,
    /// Debug builds (the tests) only; release builds ignore it.
    DebugBuilds,
}

/// A setting's line in the packaged nightlite.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaged {
    /// `# NAME = <default>`.
    Default,
    /// `# NAME = <this TOML value>`: what one would typically set.
    Example(&'static str),
    /// `NAME = <this TOML value>`, in force: the package's own choice.
    Set(&'static str),
    /// Not in the file (environment-only and test settings).
    Omit,
}

/// Comment lines before a setting in the packaged nightlite.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    None,
    /// Right after the previous setting's line.
    Same(&'static str),
    /// After a blank line: a new group.
    New(&'static str),
}

/// The defaults of every field, for the rows below to override.
const ROW: Setting = Setting {
    name: "",
    kind: Kind::Text,
    default: "",
    doc: "",
    scope: Scope::Anywhere,
    packaged: Packaged::Default,
    note: Note::None,
};

const ON_OFF: Kind = Kind::Flag {
    refusal: "on/off or true/false",
};
const THRESHOLD: Kind = Kind::Positive { what: "number" };
const MINUTES: Kind = Kind::Positive {
    what: "number of minutes",
};
const DAYS: Kind = Kind::Count {
    max: 36_500,
    at_least_one: false,
};
const PLUGIN_NUMBER: Kind = Kind::Plugin {
    values: "a number (0 or not a number: the default)",
};

/// Every setting, in the order of the packaged nightlite.toml and the README.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "NIGHTLITE_DATA_DIR",
        kind: Kind::Path,
        default: "./nightlite-data",
        doc: "where the database, the generated secret and backups live",
        packaged: Packaged::Set("\"/var/lib/nightlite\""),
        note: Note::New(
            "Where the database (nightlite.sqlite3) and the generated api_secret live. The \
             service may\nwrite nowhere else (its unit says so); the line is here so that \
             commands run by hand, such\nas `sudo -u nightlite nightlite --config \
             /etc/nightlite/nightlite.toml token list`, use the\nsame data.",
        ),
        ..ROW
    },
    Setting {
        name: "PORT",
        kind: Kind::Port,
        default: "1337",
        doc: "HTTP port (HTTPS with `TLS_CERT`)",
        packaged: Packaged::Set("1337"),
        note: Note::New("Port and address to listen on (0.0.0.0: every interface)."),
        ..ROW
    },
    Setting {
        name: "HOSTNAME",
        default: "0.0.0.0",
        doc: "address to listen on (0.0.0.0: every interface)",
        packaged: Packaged::Set("\"0.0.0.0\""),
        ..ROW
    },
    Setting {
        name: "API_SECRET",
        kind: Kind::Secret,
        doc: "admin secret, at least 12 characters; when unset, the one in \
              `<data dir>/api_secret`, generated on the first start",
        packaged: Packaged::Example("\"a long random phrase\""),
        note: Note::New(
            "The admin secret that uploaders and the viewer use, at least 12 characters. When \
             unset,\nnightlite uses the one generated at installation in \
             /var/lib/nightlite/api_secret.",
        ),
        ..ROW
    },
    Setting {
        name: "AUTH_DEFAULT_ROLES",
        kind: Kind::List,
        default: "readable",
        doc: "what requests without credentials may do (`readable`, `denied`, \
              `status-only`, ...; [docs/auth.md](docs/auth.md)); each role must exist",
        packaged: Packaged::Example("\"denied\""),
        note: Note::New(
            "What visitors without the secret or a token may do. \"readable\" (Nightscout's \
             default) shows\nyour data to anyone who can reach the port; \"denied\" asks for \
             the secret or a token first.",
        ),
        ..ROW
    },
    Setting {
        name: "AUTH_FAIL_DELAY",
        kind: Kind::Range {
            min: 0,
            max: 600_000,
            unit: " ms",
        },
        default: "5000",
        doc: "milliseconds each failed secret or token adds to its address' wait before the \
              next answer",
        note: Note::New(
            "Failed secrets or tokens make their address wait this many milliseconds more \
             each time.",
        ),
        ..ROW
    },
    Setting {
        name: "DISPLAY_UNITS",
        kind: Kind::Choice {
            words: &[
                ("mg/dl", "mg/dl"),
                ("mgdl", "mg/dl"),
                ("mg", "mg/dl"),
                ("mmol", "mmol"),
                ("mmol/l", "mmol"),
            ],
            fold_case: true,
            refusal: "neither mg/dl nor mmol",
        },
        default: "mg/dl",
        doc: "glucose units of the thresholds and of what clients show",
        packaged: Packaged::Example("\"mmol\""),
        note: Note::New(
            "Units and alarm thresholds, rising from BG_LOW to BG_HIGH. In mg/dl unless \
             DISPLAY_UNITS is\n\"mmol\", which takes mmol/l values; a value below 40 under \
             mg/dl is refused as an mmol/l one.",
        ),
        ..ROW
    },
    Setting {
        name: "BG_HIGH",
        kind: THRESHOLD,
        default: "260",
        doc: "urgent high threshold; in mmol/l with `DISPLAY_UNITS=mmol` (values below 50 \
              are taken as mmol/l there), refused below 40 with mg/dl",
        ..ROW
    },
    Setting {
        name: "BG_TARGET_TOP",
        kind: THRESHOLD,
        default: "180",
        doc: "high threshold (top of the target range), units as `BG_HIGH`",
        ..ROW
    },
    Setting {
        name: "BG_TARGET_BOTTOM",
        kind: THRESHOLD,
        default: "80",
        doc: "low threshold (bottom of the target range), units as `BG_HIGH`",
        ..ROW
    },
    Setting {
        name: "BG_LOW",
        kind: THRESHOLD,
        default: "55",
        doc: "urgent low threshold, units as `BG_HIGH`; the four rise from `BG_LOW` to \
              `BG_HIGH`",
        ..ROW
    },
    Setting {
        name: "ALARM_URGENT_HIGH",
        kind: ON_OFF,
        default: "true",
        doc: "raise the urgent high alarm: sent to live clients and sounded by the viewer \
              ([docs/websocket.md](docs/websocket.md))",
        note: Note::New(
            "Which alarms are raised, and after how many minutes without a reading the \
             stale-data ones.",
        ),
        ..ROW
    },
    Setting {
        name: "ALARM_HIGH",
        kind: ON_OFF,
        default: "true",
        doc: "raise the high alarm",
        ..ROW
    },
    Setting {
        name: "ALARM_LOW",
        kind: ON_OFF,
        default: "true",
        doc: "raise the low alarm",
        ..ROW
    },
    Setting {
        name: "ALARM_URGENT_LOW",
        kind: ON_OFF,
        default: "true",
        doc: "raise the urgent low alarm",
        ..ROW
    },
    Setting {
        name: "ALARM_URGENT_HIGH_MINS",
        kind: Kind::List,
        default: "30 60 90 120",
        doc: "the viewer's snooze choices for the urgent high alarm, minutes, space separated; the longest is the most an acknowledgement silences it ([docs/viewer.md](docs/viewer.md#alarms))",
        ..ROW
    },
    Setting {
        name: "ALARM_HIGH_MINS",
        kind: Kind::List,
        default: "30 60 90 120",
        doc: "snooze choices for the high alarm, as `ALARM_URGENT_HIGH_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_LOW_MINS",
        kind: Kind::List,
        default: "15 30 45 60",
        doc: "snooze choices for the low alarm, as `ALARM_URGENT_HIGH_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_URGENT_LOW_MINS",
        kind: Kind::List,
        default: "15 30 45",
        doc: "snooze choices for the urgent low alarm, as `ALARM_URGENT_HIGH_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_URGENT_MINS",
        kind: Kind::List,
        default: "30 60 90 120",
        doc: "snooze choices for other urgent alarms (stale data, forecast), as `ALARM_URGENT_HIGH_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_WARN_MINS",
        kind: Kind::List,
        default: "30 60 90 120",
        doc: "snooze choices for other warnings, as `ALARM_URGENT_HIGH_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_TIMEAGO_WARN",
        kind: ON_OFF,
        default: "true",
        doc: "warn when no reading came for `ALARM_TIMEAGO_WARN_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_TIMEAGO_WARN_MINS",
        kind: MINUTES,
        default: "15",
        doc: "minutes without a reading before the stale-data warning",
        ..ROW
    },
    Setting {
        name: "ALARM_TIMEAGO_URGENT",
        kind: ON_OFF,
        default: "true",
        doc: "raise an urgent alarm when no reading came for `ALARM_TIMEAGO_URGENT_MINS`",
        ..ROW
    },
    Setting {
        name: "ALARM_TIMEAGO_URGENT_MINS",
        kind: MINUTES,
        default: "30",
        doc: "minutes without a reading before the urgent stale-data alarm",
        ..ROW
    },
    Setting {
        name: "ALARM_TYPES",
        kind: Kind::Plugin {
            values: "`simple`, `predict` or both (none known: the default)",
        },
        default: "simple",
        doc: "glucose alarms as Nightscout's: `simple` (the BG_* thresholds), `predict` \
              (AR2's forecast, plugin `ar2`), or both ([docs/properties.md](docs/properties.md))",
        note: Note::Same(
            "Glucose alarms: \"simple\" (thresholds), \"predict\" (AR2 forecast) or both.",
        ),
        ..ROW
    },
    Setting {
        name: "BWP_WARN",
        kind: PLUGIN_NUMBER,
        default: "0.50",
        doc: "units of insulin the bolus wizard preview must suggest for its warning",
        note: Note::Same("Bolus wizard preview and the AR2 forecast."),
        ..ROW
    },
    Setting {
        name: "BWP_URGENT",
        kind: PLUGIN_NUMBER,
        default: "1.00",
        doc: "units of insulin the bolus wizard preview must suggest for its urgent level",
        ..ROW
    },
    Setting {
        name: "BWP_SNOOZE",
        kind: PLUGIN_NUMBER,
        default: "0.10",
        doc: "bolus wizard preview: units below which it stays quiet",
        ..ROW
    },
    Setting {
        name: "BWP_SNOOZE_MINS",
        kind: PLUGIN_NUMBER,
        default: "10",
        doc: "bolus wizard preview: minutes it snoozes",
        ..ROW
    },
    Setting {
        name: "AR2_CONE_FACTOR",
        kind: Kind::Plugin {
            values: "a number, at least 0 (else the default)",
        },
        default: "2",
        doc: "width of the AR2 forecast's cone of uncertainty (0: no cone)",
        ..ROW
    },
    Setting {
        name: "CUSTOM_TITLE",
        default: "Nightscout",
        doc: "the site's title, shown to clients",
        note: Note::New("Shown to clients."),
        ..ROW
    },
    Setting {
        name: "TIME_FORMAT",
        kind: Kind::Choice {
            words: &[("12", "12"), ("24", "24")],
            fold_case: false,
            refusal: "not 12 or 24",
        },
        default: "12",
        doc: "clock shown to clients: `12` or `24` hours",
        packaged: Packaged::Example("24"),
        ..ROW
    },
    Setting {
        name: "NIGHT_MODE",
        kind: ON_OFF,
        default: "false",
        doc: "the viewer dims itself at night (21 to 7 h) unless a theme was chosen in it",
        ..ROW
    },
    Setting {
        name: "THEME",
        default: "default",
        doc: "the viewer's theme, shown to clients",
        ..ROW
    },
    Setting {
        name: "LANGUAGE",
        default: "en",
        doc: "language code shown to clients",
        ..ROW
    },
    Setting {
        name: "ENABLE",
        kind: Kind::List,
        doc: "plugins to enable, space separated, as Nightscout's (`cors` turns CORS on)",
        packaged: Packaged::Example("\"cors\""),
        note: Note::New(
            "Nightscout's plugin lists, space separated. \"cors\" in ENABLE lets browser \
             tools on other\nsites (Nightscout Reporter) read this one; CORS_ALLOW_ORIGIN \
             narrows it to one origin.",
        ),
        ..ROW
    },
    Setting {
        name: "DISABLE",
        kind: Kind::List,
        doc: "plugins to disable, space separated; wins over `ENABLE`",
        ..ROW
    },
    Setting {
        name: "CORS_ALLOW_ORIGIN",
        default: "*",
        doc: "with `cors` in `ENABLE`: the `Access-Control-Allow-Origin` sent, for browser \
              tools such as Nightscout Reporter",
        ..ROW
    },
    Setting {
        name: "INSECURE_USE_HTTP",
        kind: Kind::Flag {
            refusal: "true or false",
        },
        default: "false",
        doc: "serve plain HTTP to other machines; when false, requests that did not come \
              over HTTPS (directly or per `X-Forwarded-Proto`) are redirected to `https://`, \
              except from loopback ([docs/https.md](docs/https.md))",
        packaged: Packaged::Example("true"),
        note: Note::New(
            "HTTPS. As Nightscout does, nightlite redirects plain-HTTP requests from other \
             machines to\nhttps:// unless INSECURE_USE_HTTP is true. Choose one:\n- plain \
             HTTP on a home network you trust (phones at home, no AndroidAPS):",
        ),
        ..ROW
    },
    Setting {
        name: "TLS_CERT",
        kind: Kind::Path,
        doc: "PEM certificate chain: with `TLS_KEY`, serve HTTPS on `PORT`, reloaded when \
              the files change",
        packaged: Packaged::Example("\"/etc/nightlite/tls/fullchain.pem\""),
        note: Note::Same(
            "- HTTPS by nightlite itself, with PEM files it can read as user nightlite \
             (reloaded when they\n  change, or at once by `systemctl kill -s HUP nightlite`); \
             a PORT below 1024 needs the\n  capability described in `systemctl cat nightlite`:",
        ),
        ..ROW
    },
    Setting {
        name: "TLS_KEY",
        kind: Kind::Path,
        doc: "PEM private key for `TLS_CERT`; set both or neither",
        packaged: Packaged::Example("\"/etc/nightlite/tls/privkey.pem\""),
        ..ROW
    },
    Setting {
        name: "TRUST_PROXY",
        kind: Kind::Custom {
            values: "true/false, a hop count (at most 16), or addresses/CIDR ranges",
        },
        default: "false",
        doc: "reverse proxies are in front: `true` (one proxy: the client is the right-most \
              `X-Forwarded-For` entry), a hop count, or a comma-separated list of proxy \
              addresses/CIDR ranges (`loopback`, `linklocal`, `uniquelocal` allowed); plain \
              requests without `X-Forwarded-Proto` are then not redirected \
              ([docs/security.md](docs/security.md), [docs/https.md](docs/https.md))",
        packaged: Packaged::Example("true"),
        note: Note::Same(
            "- HTTPS by a reverse proxy on this machine (Caddy, nginx): set HOSTNAME above \
             to\n  \"127.0.0.1\" so only the proxy reaches nightlite, and trust its \
             X-Forwarded-* headers:",
        ),
        ..ROW
    },
    Setting {
        name: "SECURE_HSTS_HEADER",
        kind: ON_OFF,
        default: "true",
        doc: "send `Strict-Transport-Security` on HTTPS responses",
        note: Note::Same(
            "See \"Put it behind HTTPS\" in the README.\nStrict-Transport-Security on HTTPS \
             responses:",
        ),
        ..ROW
    },
    Setting {
        name: "BASE_PATH",
        kind: Kind::Custom {
            values: "a path such as `/nightscout` (letters, digits, `- . _ ~`)",
        },
        doc: "serve under a path prefix such as `/nightscout` (the viewer is then at \
              `/nightscout/`)",
        packaged: Packaged::Example("\"/nightscout\""),
        note: Note::Same(
            "Answer under a path prefix, for a proxy that serves nightlite at \
             https://host/nightscout/:",
        ),
        ..ROW
    },
    Setting {
        name: "BACKUP_INTERVAL_HOURS",
        kind: Kind::Count {
            max: 24 * 366,
            at_least_one: false,
        },
        default: "0",
        doc: "hours between automatic backups into `<data dir>/backups` (0: none)",
        packaged: Packaged::Example("24"),
        note: Note::New(
            "Backups into /var/lib/nightlite/backups every N hours, keeping the newest \
             BACKUP_KEEP\n(0: none; `sudo systemctl kill -s USR1 nightlite` makes one now). \
             On an SD card, copy them\noff the card too.",
        ),
        ..ROW
    },
    Setting {
        name: "BACKUP_KEEP",
        kind: Kind::Count {
            max: 10_000,
            at_least_one: true,
        },
        default: "7",
        doc: "backups the server keeps in `<data dir>/backups` (older ones are removed)",
        ..ROW
    },
    Setting {
        name: "DEVICESTATUS_RETENTION_DAYS",
        kind: DAYS,
        default: "60",
        doc: "delete device statuses older than this many days (0: keep all)",
        note: Note::New(
            "Days to keep each collection (0: for ever); device statuses default to 60.",
        ),
        ..ROW
    },
    Setting {
        name: "ENTRIES_RETENTION_DAYS",
        kind: DAYS,
        default: "0",
        doc: "the same for entries (0: keep all)",
        ..ROW
    },
    Setting {
        name: "TREATMENTS_RETENTION_DAYS",
        kind: DAYS,
        default: "0",
        doc: "the same for treatments (0: keep all)",
        ..ROW
    },
    Setting {
        name: "ACTIVITY_RETENTION_DAYS",
        kind: DAYS,
        default: "0",
        doc: "the same for activity (0: keep all)",
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_MAX_BODY_MB",
        kind: Kind::Range {
            min: 1,
            max: 1024,
            unit: "",
        },
        default: "20",
        doc: "largest accepted request body in MB, after gzip decoding",
        note: Note::New(
            "Limits: the largest request body in MB, open connections, live sessions not yet \
             authorized,\nseconds for a request body to arrive and for a client to read what \
             it is sent.",
        ),
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_MAX_CONNECTIONS",
        kind: Kind::Count {
            max: 100_000,
            at_least_one: true,
        },
        default: "768",
        doc: "open connections; more are answered 503 and closed (keep under the descriptor \
              limit: the .deb's unit sets `LimitNOFILE=2048`)",
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_MAX_UNAUTHENTICATED_SOCKETS",
        kind: Kind::Count {
            max: 100_000,
            at_least_one: true,
        },
        default: "100",
        doc: "`/ws` and Socket.IO sessions not (yet) authorized with a token or the secret; \
              more are answered 503",
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_BODY_TIMEOUT_SECS",
        kind: Kind::Count {
            max: 3600,
            at_least_one: true,
        },
        default: "60",
        doc: "a request body must have arrived within this many seconds",
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_WRITE_TIMEOUT_SECS",
        kind: Kind::Count {
            max: 3600,
            at_least_one: true,
        },
        default: "45",
        doc: "a client that reads nothing this long while data waits for it is disconnected",
        ..ROW
    },
    Setting {
        name: "CONNECT_SOURCE",
        kind: Kind::List,
        doc: "bridges: vendor clouds to fetch readings from, space separated, with \
              nightscout-connect's names: `dexcomshare`, `linkup` (or `librelinkup`), \
              `nightscout`, `glooko`, `tandem`, `minimedcarelink` \
              ([docs/bridges.md](docs/bridges.md))",
        packaged: Packaged::Example("\"dexcomshare\""),
        note: Note::New(
            "Bridges (docs/bridges.md): fetch readings from a vendor's cloud with your own \
             account.\nUnofficial interfaces: they may break, and are not for treatment \
             decisions.",
        ),
        ..ROW
    },
    Setting {
        name: "CONNECT_SHARE_ACCOUNT_NAME",
        kind: Kind::Account,
        doc: "Dexcom Share: the account that shares (the publisher's login: email, phone or \
              account id), for `dexcomshare`",
        packaged: Packaged::Example("\"you@example.org\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_SHARE_PASSWORD",
        kind: Kind::Password,
        doc: "Dexcom Share: that account's password (never shown or logged)",
        packaged: Packaged::Example("\"your Dexcom password\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_SHARE_REGION",
        kind: Kind::Choice {
            words: &[("us", "us"), ("ous", "ous"), ("eu", "ous"), ("jp", "jp")],
            fold_case: true,
            refusal: "not us, ous or jp",
        },
        default: "us",
        doc: "Dexcom Share: `us`, `ous` (outside the US) or `jp`; a wrong region fails \
              as a wrong password does",
        ..ROW
    },
    Setting {
        name: "CONNECT_SHARE_SERVER",
        kind: Kind::Custom {
            values: "a host name (https) or a base URL with scheme and port",
        },
        doc: "Dexcom Share: another server than the region's",
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_USERNAME",
        kind: Kind::Account,
        doc: "LibreLinkUp: the email of a follower account the patient's LibreLink app \
              shares with, for `linkup`",
        packaged: Packaged::Example("\"follower@example.org\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_PASSWORD",
        kind: Kind::Password,
        doc: "LibreLinkUp: that account's password (never shown or logged)",
        packaged: Packaged::Example("\"your LibreLinkUp password\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_REGION",
        kind: Kind::Choice {
            words: &[
                ("ae", "ae"),
                ("ap", "ap"),
                ("au", "au"),
                ("ca", "ca"),
                ("cn", "cn"),
                ("de", "de"),
                ("eu", "eu"),
                ("eu2", "eu2"),
                ("gb", "eu2"),
                ("uk", "eu2"),
                ("fr", "fr"),
                ("jp", "jp"),
                ("la", "la"),
                ("ru", "ru"),
                ("us", "us"),
            ],
            fold_case: true,
            refusal: "not a LibreLinkUp region (ae ap au ca cn de eu eu2 fr jp la ru us)",
        },
        default: "eu",
        doc: "LibreLinkUp: the account's region (`gb`/`uk` are `eu2`); LibreLinkUp \
              redirects a login to the right one",
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_SERVER",
        kind: Kind::Custom {
            values: "a host name (https) or a base URL with scheme and port",
        },
        doc: "LibreLinkUp: another server than the region's",
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_PATIENT_ID",
        doc: "LibreLinkUp: which patient, when the account follows several (else the first)",
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_INTERVAL",
        kind: Kind::Range {
            min: 1,
            max: 60,
            unit: " minutes",
        },
        default: "5",
        doc: "LibreLinkUp: minutes between polls (short intervals have coincided with \
              account locks)",
        ..ROW
    },
    Setting {
        name: "CONNECT_LINK_UP_VERSION",
        default: "4.16.0",
        doc: "LibreLinkUp: the app version sent; raise it when the status API reports the \
              version floor",
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_EMAIL",
        kind: Kind::Account,
        doc: "Glooko: the account's email, for `glooko`",
        packaged: Packaged::Example("\"you@example.org\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_PASSWORD",
        kind: Kind::Password,
        doc: "Glooko: that account's password (never shown or logged)",
        packaged: Packaged::Example("\"your Glooko password\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_ENV",
        kind: Kind::Choice {
            words: &[
                ("default", "default"),
                ("us", "us"),
                ("eu", "eu"),
                ("de-fr", "de-fr"),
                ("ca", "ca"),
                ("development", "development"),
                ("production", "production"),
            ],
            fold_case: true,
            refusal: "not a Glooko environment (default us eu de-fr ca development production)",
        },
        default: "default",
        doc: "Glooko: the account's region: `default` or `us` (api.glooko.com), `eu`, \
              `de-fr`, `ca`",
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_SERVER",
        kind: Kind::Custom {
            values: "a host name (https) or a base URL with scheme and port",
        },
        doc: "Glooko: another server than `CONNECT_GLOOKO_ENV`'s",
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_TIMEZONE",
        kind: Kind::Custom {
            values: "an IANA time zone such as `Europe/Berlin`",
        },
        doc: "Glooko: the zone the pump's clock is set to (Glooko writes its local times as \
              UTC); right across DST changes, so preferred to the offset",
        ..ROW
    },
    Setting {
        name: "CONNECT_GLOOKO_TIMEZONE_OFFSET",
        kind: Kind::Custom {
            values: "hours east of UTC, -14 to 14 (`-5`, `5.5`)",
        },
        doc: "Glooko: the pump clock's fixed offset, when `CONNECT_GLOOKO_TIMEZONE` is unset \
              (wrong by an hour for half the year where clocks change)",
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_EMAIL",
        kind: Kind::Account,
        doc: "Tandem Source: the account's email (t:slim X2, Mobi), for `tandem`",
        packaged: Packaged::Example("\"you@example.org\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_PASSWORD",
        kind: Kind::Password,
        doc: "Tandem Source: that account's password (never shown or logged)",
        packaged: Packaged::Example("\"your Tandem Source password\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_REGION",
        kind: Kind::Choice {
            words: &[("us", "us"), ("eu", "eu")],
            fold_case: true,
            refusal: "not us or eu",
        },
        default: "us",
        doc: "Tandem Source: `us` or `eu`, where the account was made; the wrong one fails as \
              a wrong password does",
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_SERVER",
        kind: Kind::Custom {
            values: "a host name (https) or a base URL with scheme and port",
        },
        doc: "Tandem Source: one server for both the accounts and the Source hosts instead of \
              the region's",
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_CLIENT_ID",
        doc: "Tandem Source: the OIDC client id of Tandem's web app, when Tandem changes it \
              (else the region's: see docs/bridges.md)",
        ..ROW
    },
    Setting {
        name: "CONNECT_TANDEM_TIMEZONE",
        kind: Kind::Custom {
            values: "an IANA time zone such as `America/New_York`",
        },
        doc: "Tandem Source: the zone the pump's clock is set to (the pump records local time \
              without a zone), as tconnectsync's `TIMEZONE_NAME`",
        ..ROW
    },
    Setting {
        name: "CONNECT_CARELINK_LOGIN_FILE",
        kind: Kind::Custom {
            values: "a path to a `logindata.json`",
        },
        doc: "Medtronic CareLink: the token file a CareLink login tool writes after the \
              browser login, for `minimedcarelink`; nightlite refreshes the tokens and writes \
              them back there (so it must be writable; see docs/bridges.md)",
        packaged: Packaged::Example("\"/var/lib/nightlite/carelink/logindata.json\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_CARELINK_USERNAME",
        kind: Kind::Account,
        doc: "Medtronic CareLink: the username the tokens belong to (a care partner's when \
              following)",
        packaged: Packaged::Example("\"johndoe-follower\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_CARELINK_PATIENT_USERNAME",
        kind: Kind::Account,
        doc: "Medtronic CareLink: the patient's username, for a care-partner account \
              (unset: the account is the patient's own)",
        ..ROW
    },
    Setting {
        name: "CONNECT_CARELINK_REGION",
        kind: Kind::Choice {
            words: &[("us", "us"), ("eu", "eu")],
            fold_case: true,
            refusal: "not us or eu",
        },
        default: "us",
        doc: "Medtronic CareLink: `us` (clcloud.minimed.com) or `eu` (clcloud.minimed.eu)",
        ..ROW
    },
    Setting {
        name: "CONNECT_CARELINK_SERVER",
        kind: Kind::Custom {
            values: "a host name (https) or a base URL with scheme and port",
        },
        doc: "Medtronic CareLink: another server than the region's",
        ..ROW
    },
    Setting {
        name: "CONNECT_SOURCE_ENDPOINT",
        kind: Kind::Custom {
            values: "an http(s):// URL, optionally ending in `?token=<access token>`",
        },
        doc: "Nightscout as a source: the site to follow, for `nightscout`; a `?token=` on it \
              is the access token (a `readable` role is enough), never shown or logged",
        packaged: Packaged::Example("\"https://other.example.org?token=reader-0123456789abcdef\""),
        ..ROW
    },
    Setting {
        name: "CONNECT_SOURCE_API_SECRET",
        kind: Kind::Password,
        doc: "Nightscout as a source: that site's API secret, when the endpoint has no token: \
              nightlite reads with the token of a `nightlite-reader` subject it makes there \
              with it (never shown or logged)",
        ..ROW
    },
    Setting {
        name: "CONNECT_SOURCE_COLLECTIONS",
        kind: Kind::List,
        default: "entries treatments devicestatus profile",
        doc: "Nightscout as a source: what to follow, of `entries`, `treatments`, \
              `devicestatus`, `profile`",
        ..ROW
    },
    Setting {
        name: "CONNECT_SOURCE_BACKFILL_HOURS",
        kind: Kind::Range {
            min: 1,
            max: 2160,
            unit: " hours",
        },
        default: "48",
        doc: "Nightscout as a source: how far back the first poll after a start reads",
        ..ROW
    },
    Setting {
        name: "CONNECT_OUTPUT",
        kind: Kind::Custom {
            values: "an http(s):// URL, optionally ending in `?token=<access token>`",
        },
        doc: "upload what is stored here to this Nightscout (API v3, v1 when it has no v3); \
              a `?token=` on it is the access token (role `admin` or `api:*:create,update`)",
        packaged: Packaged::Example(
            "\"https://cloud.example.org?token=uploader-0123456789abcdef\"",
        ),
        ..ROW
    },
    Setting {
        name: "CONNECT_OUTPUT_TOKEN",
        kind: Kind::Password,
        doc: "the output's access token, when `CONNECT_OUTPUT` has no `?token=` (never shown \
              or logged)",
        ..ROW
    },
    Setting {
        name: "CONNECT_OUTPUT_API_SECRET",
        kind: Kind::Password,
        doc: "the output's API secret, when it has no token (sent hashed as `api-secret`)",
        ..ROW
    },
    Setting {
        name: "SYNC_URL",
        kind: Kind::Custom {
            values: "an http(s):// URL, optionally ending in `?token=<access token>`",
        },
        doc: "two-way sync with this Nightscout-compatible site \
              ([docs/sync.md](docs/sync.md)); a `?token=` on it is the access token (role \
              `admin`), never shown or logged",
        packaged: Packaged::Example("\"https://cloud.example.org?token=sync-0123456789abcdef\""),
        note: Note::New(
            "Two-way sync with another Nightscout (docs/sync.md): this server keeps its own \
             data and\ncopies changes both ways every few minutes and soon after each local \
             change.",
        ),
        ..ROW
    },
    Setting {
        name: "SYNC_TOKEN",
        kind: Kind::Password,
        doc: "the sync's access token on the site, when `SYNC_URL` has no `?token=` (never \
              shown or logged)",
        ..ROW
    },
    Setting {
        name: "SYNC_API_SECRET",
        kind: Kind::Password,
        doc: "the site's API secret, when there is no token: the sync makes a \
              `nightlite-sync` subject there and uses its token (never shown or logged)",
        ..ROW
    },
    Setting {
        name: "SYNC_DIRECTION",
        kind: Kind::Choice {
            words: &[
                ("both", "both"),
                ("upload", "upload"),
                ("download", "download"),
            ],
            fold_case: true,
            refusal: "not both, upload or download (`check` is only for `nightlite sync`)",
        },
        default: "both",
        doc: "`both` (copy each side's changes to the other), `upload` (only here to there) \
              or `download` (only there to here)",
        ..ROW
    },
    Setting {
        name: "SYNC_INTERVAL_MINUTES",
        kind: Kind::Range {
            min: 1,
            max: 1440,
            unit: " minutes",
        },
        default: "5",
        doc: "minutes between periodic syncs (a local change syncs about 10 s later anyway)",
        ..ROW
    },
    Setting {
        name: "SYNC_COLLECTIONS",
        kind: Kind::List,
        default: "entries treatments devicestatus profile food",
        doc: "what to sync, of `entries`, `treatments`, `devicestatus`, `profile`, `food`",
        ..ROW
    },
    Setting {
        name: "SYNC_CONFLICT",
        kind: Kind::Choice {
            words: &[
                ("safe", "safe"),
                ("local-wins", "local-wins"),
                ("remote-wins", "remote-wins"),
                ("newest", "newest"),
                ("manual", "manual"),
            ],
            fold_case: true,
            refusal: "not safe, local-wins, remote-wins, newest or manual",
        },
        default: "safe",
        doc: "how a document changed on both sides is settled: `safe` (the newer change, \
              a delete over an older edit, the loser kept in the conflict log), `local-wins`, \
              `remote-wins`, `newest`, `manual` (held until decided in /admin)",
        ..ROW
    },
    Setting {
        name: "SYNC_DEVICESTATUS_HOURS",
        kind: Kind::Range {
            min: 1,
            max: 8760,
            unit: " hours",
        },
        default: "24",
        doc: "how far back device statuses are copied at the first sync",
        ..ROW
    },
    Setting {
        name: "SYNC_HISTORY_DAYS",
        kind: Kind::Range {
            min: 1,
            max: 3650,
            unit: " days",
        },
        default: "30",
        doc: "how long the sync's run history is kept",
        ..ROW
    },
    Setting {
        name: "BRIDGE_USER_NAME",
        kind: Kind::Account,
        doc: "legacy (cgm-remote-monitor's `bridge` in `ENABLE` turns Dexcom Share on): the \
              account when `CONNECT_SHARE_ACCOUNT_NAME` is unset",
        packaged: Packaged::Omit,
        ..ROW
    },
    Setting {
        name: "BRIDGE_PASSWORD",
        kind: Kind::Password,
        doc: "legacy: the password when `CONNECT_SHARE_PASSWORD` is unset",
        packaged: Packaged::Omit,
        ..ROW
    },
    Setting {
        name: "BRIDGE_SERVER",
        kind: Kind::Custom {
            values: "`US`, `EU` or a host",
        },
        doc: "legacy: `US`, `EU` (the `ous` region) or a host, when the `CONNECT_SHARE_*` \
              ones are unset",
        packaged: Packaged::Omit,
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_LOG",
        kind: Kind::Custom {
            values: "a level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or \
                     `target=level` entries, comma separated",
        },
        default: "info",
        doc: "log filter, environment only, such as `warn` or `nightlite=debug,info`",
        scope: Scope::Environment,
        packaged: Packaged::Omit,
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_CONFIG",
        kind: Kind::Path,
        doc: "the TOML file, as `--config`; environment only",
        scope: Scope::Environment,
        packaged: Packaged::Omit,
        ..ROW
    },
    Setting {
        name: "NIGHTLITE_TEST_DISK_FREE_BYTES",
        kind: Kind::Custom {
            values: "a whole number (else ignored)",
        },
        doc: "debug builds only (the tests): pretend the disk has this many bytes free; \
              release builds ignore it",
        scope: Scope::DebugBuilds,
        packaged: Packaged::Omit,
        ..ROW
    },
];

/// The row of this name.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Whether the TOML file (and so the environment) may give this name.
pub fn in_file(name: &str) -> bool {
    setting(name).is_some_and(|s| s.scope != Scope::Environment)
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Flag(bool),
    Whole(i64),
    Number(f64),
    List(Vec<String>),
}

impl Setting {
    /// Reads `text` (trimmed, not empty) by the row's rule; the error is the message after
    /// `NAME: `. Custom and plugin settings come back as text, for their own code to read.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        let v = text;
        match self.kind {
            Kind::Text
            | Kind::Password
            | Kind::Account
            | Kind::Path
            | Kind::Custom { .. }
            | Kind::Plugin { .. } => Ok(Value::Text(v.to_string())),
            Kind::Secret => {
                if v.chars().count() < MIN_SECRET_LENGTH {
                    Err(format!(
                        "must be at least {MIN_SECRET_LENGTH} characters long"
                    ))
                } else {
                    Ok(Value::Text(v.to_string()))
                }
            }
            Kind::List => Ok(Value::List(split_list(v))),
            Kind::Flag { refusal } => parse_bool(v)
                .map(Value::Flag)
                .ok_or_else(|| format!("'{v}' is not {refusal}")),
            Kind::Port => v
                .parse::<u16>()
                .map(|p| Value::Whole(p.into()))
                .map_err(|_| format!("'{v}' is not a port number (0-65535)")),
            Kind::Count { max, at_least_one } => {
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("'{v}' is not a whole number 0..{max}"))?;
                if at_least_one && n == 0 {
                    return Err("must be at least 1".to_string());
                }
                Ok(Value::Whole(n.into()))
            }
            Kind::Range { min, max, unit } => v
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(Value::Whole)
                .ok_or_else(|| format!("'{v}' is not {min}..{max}{unit}")),
            Kind::Positive { what } => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .map(Value::Number)
                .ok_or_else(|| format!("'{v}' is not a positive {what}")),
            Kind::Choice {
                words,
                fold_case,
                refusal,
            } => {
                let v = if fold_case {
                    v.to_ascii_lowercase()
                } else {
                    v.to_string()
                };
                words
                    .iter()
                    .find(|(word, _)| *word == v)
                    .map(|(_, meant)| Value::Text((*meant).to_string()))
                    .ok_or_else(|| format!("'{v}' is {refusal}"))
            }
        }
    }

    /// Whether `nightlite settings` must not show the value.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, Kind::Secret | Kind::Password)
    }

    /// Whether `nightlite settings` shows the value only when asked to (`--reveal`).
    pub fn is_personal(&self) -> bool {
        matches!(self.kind, Kind::Account)
    }
}

/// Reads settings from `NAME -> text` pairs, each through its row: the value given (trimmed;
/// empty counts as unset) or else the row's default. Remembers the names asked for, so a
/// test can tell that every row is read and nothing is read beside the table.
pub struct Reader<'a> {
    values: &'a HashMap<String, String>,
    asked: RefCell<Vec<&'static str>>,
}

impl<'a> Reader<'a> {
    pub fn new(values: &'a HashMap<String, String>) -> Reader<'a> {
        Reader {
            values,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn row(&self, name: &'static str) -> Result<&'static Setting, ConfigError> {
        self.asked.borrow_mut().push(name);
        setting(name).ok_or_else(|| invalid(name, "is not in the settings table"))
    }

    /// The text given for `name`, trimmed; None when unset or blank.
    pub fn given(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        self.row(name)?;
        Ok(self
            .values
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()))
    }

    /// The value given, read by the row's rule, or else its default.
    fn value(&self, name: &'static str) -> Result<Value, ConfigError> {
        let row = self.row(name)?;
        match self.given(name)? {
            Some(v) => row.parse(&v).map_err(|m| invalid(name, m)),
            None => row
                .parse(row.default)
                .map_err(|m| invalid(name, format!("the default: {m}"))),
        }
    }

    fn wrong_kind(name: &'static str) -> ConfigError {
        invalid(
            name,
            "is read as another kind than its row in the table says",
        )
    }

    pub fn text(&self, name: &'static str) -> Result<String, ConfigError> {
        match self.value(name)? {
            Value::Text(t) => Ok(t),
            _ => Err(Self::wrong_kind(name)),
        }
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.value(name)? {
            Value::Flag(b) => Ok(b),
            _ => Err(Self::wrong_kind(name)),
        }
    }

    pub fn whole(&self, name: &'static str) -> Result<i64, ConfigError> {
        match self.value(name)? {
            Value::Whole(n) => Ok(n),
            _ => Err(Self::wrong_kind(name)),
        }
    }

    /// A whole number whose row bounds it to u32 (a Count, or a Range within u32).
    pub fn count(&self, name: &'static str) -> Result<u32, ConfigError> {
        u32::try_from(self.whole(name)?).map_err(|_| Self::wrong_kind(name))
    }

    pub fn number(&self, name: &'static str) -> Result<f64, ConfigError> {
        match self.value(name)? {
            Value::Number(n) => Ok(n),
            _ => Err(Self::wrong_kind(name)),
        }
    }

    pub fn list(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        match self.value(name)? {
            Value::List(l) => Ok(l),
            _ => Err(Self::wrong_kind(name)),
        }
    }

    /// The plugins' settings as given (untrimmed: they read them as Nightscout does), for
    /// [`crate::plugins::Settings::from_map`].
    pub fn plugin_values(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for s in SETTINGS {
            if matches!(s.kind, Kind::Plugin { .. }) {
                self.asked.borrow_mut().push(s.name);
                if let Some(v) = self.values.get(s.name) {
                    out.insert(s.name.to_string(), v.clone());
                }
            }
        }
        out
    }

    /// The names asked for so far.
    #[cfg(test)]
    pub fn asked(&self) -> Vec<&'static str> {
        self.asked.borrow().clone()
    }
}
