//! Which part of the crate may use which (docs/ARCHITECTURE.md, "Layers"). The pure rules
//! (spans/, jsnum, dates, ids) and the store are the bottom: they know nothing of HTTP,
//! followers or plugins. The document operations sit on the store and serve every writer
//! (HTTP, Socket.IO, and next bridges and replication). Followers (live/) take what they need
//! from the store, auth and documents, never from the HTTP handlers (api/), which sit on top.
//! Checked on the source text by the test below, so an import against the grain fails
//! `cargo test`.

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};

    /// (folder under src/, the top-level modules it must not use)
    const RULES: &[(&str, &[&str])] = &[
        (
            "store",
            &[
                "api",
                "live",
                "documents",
                "plugins",
                "profiles",
                "web",
                "admin",
                "care",
                "server",
                "import",
                "sync",
            ],
        ),
        ("documents", &["api", "live", "web", "plugins", "import"]),
        ("import", &["api", "live", "web"]),
        ("sync", &["api", "live", "web"]),
        (
            "spans",
            &[
                "api",
                "live",
                "documents",
                "plugins",
                "profiles",
                "store",
                "web",
            ],
        ),
        ("auth", &["api", "live", "documents", "web"]),
        ("live", &["api", "web"]),
        // The bridges write through documents/ as uploads do; HTTP sits above them.
        (
            "connect",
            &["api", "live", "web", "server", "care", "admin"],
        ),
        // The remote-site client: the bridges' HTTP, below the HTTP handlers.
        (
            "remote",
            &[
                "api", "live", "web", "server", "care", "admin", "import", "sync",
            ],
        ),
        ("plugins", &["api", "live", "web"]),
        ("profiles", &["api", "live", "web"]),
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The top-level modules a line of code names as `crate::x` or in `crate::{x, ...}`.
    fn crate_modules(line: &str) -> Vec<String> {
        let mut out = vec![];
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push(name);
                }
            } else {
                out.push(
                    rest.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn no_layer_imports_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = vec![];
        for (folder, denied) in RULES {
            let mut files = vec![];
            rust_files(&src.join(folder), &mut files);
            assert!(!files.is_empty(), "src/{folder} has no Rust files");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.trim_start().starts_with("//") {
                        continue;
                    }
                    for module in crate_modules(line) {
                        if denied.contains(&module.as_str()) {
                            wrong.push(format!(
                                "{}:{}: uses crate::{module}",
                                file.strip_prefix(&src).unwrap().display(),
                                n + 1
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_check_sees_both_import_forms() {
        assert_eq!(crate_modules("use crate::api::v1::State;"), ["api"]);
        assert_eq!(
            crate_modules("use crate::{dates, live::x, AppState};"),
            ["dates", "live", "AppState"]
        );
    }
}
