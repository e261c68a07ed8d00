//! Subjects and roles of Nightscout's authorization, stored as JSON documents like the
//! collections (`{name, roles, notes, created_at, ...}` and `{name, permissions, notes, ...}`).

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthTable {
    Subjects,
    Roles,
}

impl AuthTable {
    fn table(self) -> &'static str {
        match self {
            AuthTable::Subjects => "auth_subjects",
            AuthTable::Roles => "auth_roles",
        }
    }
}

/// A stored subject or role: its `_id` and document.
#[derive(Debug, Clone)]
pub struct AuthDoc {
    pub id: String,
    pub doc: Map<String, Value>,
}

impl AuthDoc {
    pub fn name(&self) -> &str {
        self.doc.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// A list-of-strings field (`roles`, `permissions`).
    pub fn strings(&self, field: &str) -> Vec<String> {
        match self.doc.get(field) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            // Nightscout's admin page may send a comma separated string.
            Some(Value::String(s)) => s
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            _ => vec![],
        }
    }

    /// `_id` first, then the document, as the API returns it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::with_capacity(self.doc.len() + 1);
        out.insert("_id".into(), Value::String(self.id.clone()));
        out.extend(self.doc.clone());
        Value::Object(out)
    }
}

/// The names of the roles stored in the database at `db` (opened read only, before the server
/// starts; none when it cannot be read).
pub fn stored_role_names(db: &std::path::Path) -> Vec<String> {
    Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(crate::error::Error::from)
        .and_then(|c| list(&c, AuthTable::Roles))
        .map(|roles| roles.iter().map(|r| r.name().to_string()).collect())
        .unwrap_or_default()
}

pub fn list(conn: &Connection, t: AuthTable) -> Result<Vec<AuthDoc>> {
    let sql = format!("SELECT id, doc FROM {} ORDER BY name, id", t.table());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (id, doc) = row?;
        Ok(AuthDoc {
            id,
            doc: serde_json::from_str(&doc)?,
        })
    })
    .collect()
}

/// Inserts or replaces the document with this id.
pub fn save(conn: &Connection, t: AuthTable, d: &AuthDoc) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (id, name, doc) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
        t.table()
    );
    conn.prepare_cached(&sql)?
        .execute(params![d.id, d.name(), serde_json::to_string(&d.doc)?])?;
    Ok(())
}

/// Removes the document; returns whether it existed.
pub fn remove(conn: &Connection, t: AuthTable, id: &str) -> Result<bool> {
    let sql = format!("DELETE FROM {} WHERE id = ?", t.table());
    Ok(conn.prepare_cached(&sql)?.execute([id])? > 0)
}
