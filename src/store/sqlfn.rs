//! SQL functions nightlite adds to every connection: `regexp` (behind the REGEXP operator)
//! for the find language's regular expressions.

use std::sync::Arc;

use regex::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Longest pattern the find language accepts (Nightscout's clients send a word or two).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Compiled size is bounded so a hostile pattern cannot eat the Pi's memory. The regex crate
/// matches in time linear in the text (no backtracking), and the reader's time budget
/// (store/readers.rs) bounds a query over many large documents.
pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
}

pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // The compiled pattern is cached per statement by SQLite's auxiliary data.
            let re: Arc<Regex> = ctx.get_or_create_aux(
                0,
                |v| -> Result<Regex, Box<dyn std::error::Error + Send + Sync>> {
                    Ok(compile_regex(v.as_str()?)?)
                },
            )?;
            Ok(match ctx.get_raw(1) {
                ValueRef::Text(t) => std::str::from_utf8(t)
                    .map(|s| re.is_match(s))
                    .unwrap_or(false),
                _ => false,
            })
        },
    )
}
