//! The settings table as text: `nightlite settings` (each setting's value in force, secrets
//! never shown), the README's settings table (`--markdown`) and the packaged
//! nightlite.toml (`--toml`).

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use super::table::{Kind, Note, Packaged, Scope, Setting, SETTINGS};
use super::ConfigError;

/// What values a row accepts, in words.
pub fn accepted(s: &Setting) -> String {
    match s.kind {
        Kind::Text => "text".into(),
        Kind::Password => "text, never shown".into(),
        Kind::Account => "text, shown only with `settings --reveal`".into(),
        Kind::Secret => format!("text, {} characters or more", super::MIN_SECRET_LENGTH),
        Kind::Path => "a path".into(),
        Kind::List => "words".into(),
        Kind::Flag { .. } => "true/false, on/off".into(),
        Kind::Port => "0..65535".into(),
        Kind::Count { max, at_least_one } => format!("{}..{max}", u8::from(at_least_one)),
        Kind::Range { min, max, unit } => format!("{min}..{max}{unit}"),
        Kind::Positive { .. } => "a number above 0".into(),
        Kind::Choice { words, .. } => {
            let mut meant: Vec<&str> = Vec::new();
            for (_, m) in words {
                if !meant.contains(m) {
                    meant.push(m);
                }
            }
            meant
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        }
        Kind::Custom { values } | Kind::Plugin { values } => values.into(),
    }
}

/// The README's settings table, one row per setting.
pub fn markdown() -> String {
    let mut out = String::from("| setting | default | values | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!("`{}`", s.default)
        };
        let _ = writeln!(
            out,
            "| `{}` | {default} | {} | {} |",
            s.name,
            accepted(s),
            s.doc
        );
    }
    out
}

const TOML_HEAD: &str = "\
# nightlite settings for the service (/etc/nightlite/nightlite.toml).
#
# The names are Nightscout's environment variables, so settings from an existing Nightscout
# carry over (the full list: /usr/share/doc/nightlite/README.md, \"Settings\", and
# `nightlite settings`, which shows the values in force). The same names set in
# /etc/default/nightlite win over this file. A bad value stops the service with one line
# naming the setting: see `journalctl -u nightlite`. After a change:
#
#     sudo systemctl restart nightlite
#
# dpkg keeps this file on upgrades. It is readable by root and the nightlite group only, so
# it may hold API_SECRET.
#
# Made by `nightlite settings --toml` from the settings table (src/config/table.rs).
";

const TOML_TAIL: &str = "
# Names nightlite does not read (Nightscout settings such as SHOW_PLUGINS) are ignored with a
# warning in the log. The log level is set in /etc/default/nightlite (NIGHTLITE_LOG), not here.
";

/// A default as a TOML value: text quoted, numbers and flags bare.
fn toml_value(s: &Setting) -> String {
    match s.kind {
        Kind::Flag { .. }
        | Kind::Port
        | Kind::Count { .. }
        | Kind::Range { .. }
        | Kind::Positive { .. } => s.default.to_string(),
        Kind::Plugin { .. } if s.default.parse::<f64>().is_ok() => s.default.to_string(),
        _ => format!(
            "\"{}\"",
            s.default.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    }
}

/// The packaged nightlite.toml.
pub fn toml() -> String {
    let mut out = String::from(TOML_HEAD);
    for s in SETTINGS {
        let line = match s.packaged {
            Packaged::Omit => continue,
            Packaged::Default => format!("# {} = {}", s.name, toml_value(s)),
            Packaged::Example(v) => format!("# {} = {v}", s.name),
            Packaged::Set(v) => format!("{} = {v}", s.name),
        };
        let note = match s.note {
            Note::None => "",
            Note::Same(n) => n,
            Note::New(n) => {
                out.push('\n');
                n
            }
        };
        for l in note.lines() {
            let _ = writeln!(out, "# {l}");
        }
        let _ = writeln!(out, "{line}");
    }
    out.push_str(TOML_TAIL);
    out
}

/// `nightlite settings`: every setting, the value in force and where it comes from. The file
/// is read as the server reads it; API_SECRET (any [`Kind::Secret`]) and the vendors'
/// passwords show only whether they are set, vendor account names (personal data) too unless
/// `reveal`.
pub fn listing(file: Option<&Path>, reveal: bool) -> Result<String, ConfigError> {
    let from_file = match file {
        Some(path) => super::read_toml(path)?.0,
        None => HashMap::new(),
    };
    Ok(listing_of(
        &from_file,
        file,
        &|name| std::env::var(name).ok(),
        reveal,
    ))
}

/// A URL setting's `?token=...` (CONNECT_SOURCE_ENDPOINT, CONNECT_OUTPUT) as not shown.
fn without_token(value: &str) -> String {
    let Some((base, query)) = value.split_once('?') else {
        return value.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("token") => format!("{k}=(not shown)"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn listing_of(
    from_file: &HashMap<String, String>,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    reveal: bool,
) -> String {
    let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let file_name = file.map(|p| p.display().to_string()).unwrap_or_default();
    let mut out = String::new();
    for s in SETTINGS {
        let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let (value, from) = if let Some(v) = given(env(s.name)) {
            (v, "environment".to_string())
        } else if let Some(v) = given(from_file.get(s.name).cloned()) {
            (v, file_name.clone())
        } else if s.name == "NIGHTLITE_CONFIG" && file.is_some() {
            (file_name.clone(), "--config".to_string())
        } else {
            (String::new(), String::new())
        };
        let shown = if value.is_empty() {
            "-".to_string()
        } else if s.is_secret() {
            "(set, not shown)".to_string()
        } else if s.is_personal() && !reveal {
            "(set, not shown: --reveal shows it)".to_string()
        } else {
            without_token(value.trim())
        };
        let mut about = Vec::new();
        if !from.is_empty() {
            about.push(format!("from {from}"));
        }
        if !s.default.is_empty() {
            about.push(format!("default {}", s.default));
        }
        match s.scope {
            Scope::Anywhere => {}
            Scope::Environment => about.push("environment only".into()),
            Scope::DebugBuilds => about.push("debug builds only".into()),
        }
        let about = if about.is_empty() {
            String::new()
        } else {
            format!("  ({})", about.join("; "))
        };
        let _ = writeln!(out, "{:width$}  {shown}{about}", s.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_never_shows_a_secret_from_the_environment_or_the_file() {
        let env_secret = "environment-secret-1234";
        let file_secret = "file-secret-5678";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(
            &path,
            format!("API_SECRET = \"{file_secret}\"\nPORT = 8080\nTHEME = \"colors\"\n"),
        )
        .unwrap();
        let (from_file, _) = super::super::read_toml(&path).unwrap();
        for env_has_it in [false, true] {
            let env = |name: &str| match name {
                "API_SECRET" if env_has_it => Some(env_secret.to_string()),
                "PORT" => Some("9090".to_string()),
                _ => None,
            };
            let text = listing_of(&from_file, Some(&path), &env, false);
            assert!(!text.contains(env_secret), "{text}");
            assert!(!text.contains(file_secret), "{text}");
            let line = |name: &str| {
                text.lines()
                    .find(|l| l.split_whitespace().next() == Some(name))
                    .unwrap_or_default()
                    .to_string()
            };
            assert!(line("API_SECRET").contains("(set, not shown)"), "{text}");
            // The environment wins over the file, and the default is shown beside.
            assert!(line("PORT").contains("9090  (from environment; default 1337)"));
            assert!(line("THEME").contains("colors  (from "), "{text}");
            assert!(line("HOSTNAME").contains("-  (default 0.0.0.0)"), "{text}");
        }
        let none = listing_of(&HashMap::new(), None, &|_| None, false);
        assert!(none
            .lines()
            .next()
            .unwrap()
            .starts_with("NIGHTLITE_DATA_DIR "));
        assert_eq!(none.lines().count(), SETTINGS.len());
    }
}
