//! API v1's find language (`find[field][$op]=value`, as parsed from the query string into a
//! tree) translated to a parameterised SQL condition. Field names and values reach SQL only as
//! bound parameters; the SQL text is built from fixed fragments and known column names.
//!
//! Typing follows Nightscout's per-collection walker (see [`Collection::field_kind`]); where
//! Mongo would silently match nothing because of a type mismatch (a number sent as text, a
//! boolean as "true") we match what the client meant, and a value that cannot be a number or
//! a date where one is needed is a 400.

use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

use super::collection::{Collection, FieldKind};
use crate::error::{Error, Result};

/// Nightscout's default window for lists without a date filter (deltaAgo = 2 × TWO_DAYS).
pub const DEFAULT_WINDOW_MS: i64 = 4 * 86_400_000;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Default, Clone)]
pub struct SqlFilter {
    /// A boolean SQL expression ("1" when there is nothing to filter).
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlFilter {
    pub fn all() -> SqlFilter {
        SqlFilter {
            sql: "1".into(),
            params: vec![],
        }
    }

    /// `self AND other`.
    pub fn and(mut self, other: SqlFilter) -> SqlFilter {
        self.sql = format!("({}) AND ({})", self.sql, other.sql);
        self.params.extend(other.params);
        self
    }
}

/// Where a field's value lives in SQL.
struct Target {
    /// SQL expression with `?` placeholders for `params` (a JSON path, when extracted).
    expr: String,
    params: Vec<SqlValue>,
    /// JSON path of the field in `doc`, for json_type(); `None` for server columns.
    path: Option<String>,
    kind: FieldKind,
    is_id: bool,
}

#[derive(Debug, Clone)]
enum Typed {
    Int(i64),
    Real(f64),
    Text(String),
    Regex(String),
    /// A text value that may also stand for a number or a boolean.
    Auto(String),
}

struct Builder {
    coll: Collection,
    sql: String,
    params: Vec<SqlValue>,
    /// Values of untyped fields are text only (API v3's 'quoted' values).
    force_text: bool,
}

/// Compiles a `find` tree (object of fields and `$or`/`$and`) to SQL.
pub fn compile_find(coll: Collection, find: &Value) -> Result<SqlFilter> {
    let mut b = Builder {
        coll,
        sql: String::new(),
        params: vec![],
        force_text: false,
    };
    match find {
        Value::Null => b.sql.push('1'),
        Value::Object(obj) => b.object(obj, "", 0)?,
        _ => {
            return Err(Error::bad_request(
                "find must be an object: find[field]=value",
            ))
        }
    }
    Ok(SqlFilter {
        sql: b.sql,
        params: b.params,
    })
}

/// Like [`compile_find`], but values of untyped fields match text only.
pub fn compile_find_text(coll: Collection, find: &Value) -> Result<SqlFilter> {
    let mut b = Builder {
        coll,
        sql: String::new(),
        params: vec![],
        force_text: true,
    };
    match find {
        Value::Object(obj) => b.object(obj, "", 0)?,
        _ => b.sql.push('1'),
    }
    Ok(SqlFilter {
        sql: b.sql,
        params: b.params,
    })
}

/// True when `find` constrains the collection's time field at its top level, which is what
/// lifts Nightscout's 4-day default window (enforceDateFilter).
pub fn has_time_filter(coll: Collection, find: &Value) -> bool {
    let Some(obj) = find.as_object() else {
        return false;
    };
    obj.contains_key(coll.time_field())
        || (coll == Collection::Entries && obj.contains_key("dateString"))
}

/// True when `find` selects by `_id` (the window is not applied then).
pub fn has_id_filter(find: &Value) -> bool {
    find.as_object().is_some_and(|o| o.contains_key("_id"))
}

/// `mills >= now - 4 days`.
pub fn default_window(now_ms: i64) -> SqlFilter {
    SqlFilter {
        sql: "mills >= ?".into(),
        params: vec![SqlValue::Integer(now_ms - DEFAULT_WINDOW_MS)],
    }
}

/// `ORDER BY` for a `sort[field]=1|-1` tree; `None` for the collection's default order.
pub fn compile_sort(coll: Collection, sort: &Value) -> Result<Option<SqlFilter>> {
    let Some(obj) = sort.as_object().filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    let mut parts = vec![];
    let mut params = vec![];
    for (field, dir) in obj {
        let dir = match dir.as_str().map(str::trim) {
            Some("1") | Some("asc") => "ASC",
            Some("-1") | Some("desc") => "DESC",
            _ => return Err(Error::bad_request(format!("sort[{field}] must be 1 or -1"))),
        };
        let t = target(coll, field)?;
        parts.push(format!("{} {dir}", t.expr));
        params.extend(t.params);
    }
    Ok(Some(SqlFilter {
        sql: parts.join(", "),
        params,
    }))
}

fn json_path(field: &str) -> Result<String> {
    let mut path = String::from("$");
    for seg in field.split('.') {
        if seg.is_empty() || seg.contains(['"', '\\']) || seg.chars().any(char::is_control) {
            return Err(Error::bad_request(format!(
                "find: '{field}' is not a usable field name"
            )));
        }
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{seg}]"));
        } else {
            path.push_str(&format!(".\"{seg}\""));
        }
    }
    Ok(path)
}

fn target(coll: Collection, field: &str) -> Result<Target> {
    if field == "_id" {
        return Ok(Target {
            expr: "id".into(),
            params: vec![],
            path: None,
            kind: FieldKind::Auto,
            is_id: true,
        });
    }
    let kind = coll.field_kind(field);
    let path = json_path(field)?;
    let (expr, params) = match kind {
        FieldKind::Time => ("mills".to_string(), vec![]),
        FieldKind::ServerMs(col) => (col.to_string(), vec![]),
        _ => match coll.column_for(field) {
            Some(col) => (col.to_string(), vec![]),
            None => (
                "json_extract(doc, ?)".to_string(),
                vec![SqlValue::Text(path.clone())],
            ),
        },
    };
    let path = match kind {
        FieldKind::ServerMs(_) => None,
        _ => Some(path),
    };
    Ok(Target {
        expr,
        params,
        path,
        kind,
        is_id: false,
    })
}

/// Items of a list-valued operand: a JSON array, qs's object with index keys, or one value.
fn list_items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) if o.keys().all(|k| k.parse::<usize>().is_ok()) => {
            let mut items: Vec<(usize, &Value)> = o
                .iter()
                .filter_map(|(k, v)| k.parse().ok().map(|i| (i, v)))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            items.into_iter().map(|(_, v)| v).collect()
        }
        other => vec![other],
    }
}

fn leaf_text<'a>(field: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| Error::bad_request(format!("find[{field}]: expected a single value")))
}

fn parse_number(s: &str) -> Option<Typed> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Typed::Int(i));
    }
    let f: f64 = t.parse().ok().filter(|f: &f64| f.is_finite())?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Integral: "120.0" means 120. The cast is exact below 2^53.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Typed::Int(f as i64));
    }
    Some(Typed::Real(f))
}

/// `/pattern/flags` → an inline-flagged pattern for the regex crate.
fn parse_regex_literal(s: &str) -> Option<String> {
    let rest = s.strip_prefix('/')?;
    let end = rest.rfind('/')?;
    let (pattern, flags) = (&rest[..end], &rest[end + 1..]);
    Some(with_flags(pattern, flags))
}

fn with_flags(pattern: &str, flags: &str) -> String {
    let inline: String = flags.chars().filter(|c| "imsx".contains(*c)).collect();
    if inline.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{inline}){pattern}")
    }
}

fn check_regex(field: &str, pattern: &str) -> Result<()> {
    if pattern.len() > super::sqlfn::MAX_PATTERN_BYTES {
        return Err(Error::bad_request(format!(
            "find[{field}]: the regular expression is longer than {} bytes",
            super::sqlfn::MAX_PATTERN_BYTES
        )));
    }
    super::sqlfn::compile_regex(pattern)
        .map(|_| ())
        .map_err(|e| Error::bad_request(format!("find[{field}]: invalid regular expression: {e}")))
}

impl Builder {
    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    fn object(&mut self, obj: &Map<String, Value>, prefix: &str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::bad_request("find: nested too deeply"));
        }
        if obj.is_empty() {
            self.push("1");
            return Ok(());
        }
        let mut first = true;
        for (key, value) in obj {
            if !first {
                self.push(" AND ");
            }
            first = false;
            match key.as_str() {
                "$or" | "$and" | "$nor" if prefix.is_empty() => {
                    let items = list_items(value);
                    if items.is_empty() {
                        return Err(Error::bad_request(format!("find[{key}] needs a list")));
                    }
                    let joiner = if key == "$and" { " AND " } else { " OR " };
                    self.push(if key == "$nor" { "NOT (" } else { "(" });
                    for (i, item) in items.into_iter().enumerate() {
                        if i > 0 {
                            self.push(joiner);
                        }
                        let sub = item.as_object().ok_or_else(|| {
                            Error::bad_request(format!("find[{key}][{i}] must be an object"))
                        })?;
                        self.push("(");
                        self.object(sub, "", depth + 1)?;
                        self.push(")");
                    }
                    self.push(")");
                }
                k if k.starts_with('$') => {
                    return Err(Error::bad_request(format!(
                        "find: unsupported operator '{k}'"
                    )))
                }
                _ => {
                    let field = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.field(&field, value, depth)?;
                }
            }
        }
        Ok(())
    }

    fn field(&mut self, field: &str, value: &Value, depth: usize) -> Result<()> {
        match value {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                let t = target(self.coll, field)?;
                let mut first = true;
                for (op, operand) in ops {
                    if op == "$options" {
                        continue;
                    }
                    if !first {
                        self.push(" AND ");
                    }
                    first = false;
                    if !op.starts_with('$') {
                        // Mixed operators and sub-fields: the sub-field is a nested path.
                        self.field(&format!("{field}.{op}"), operand, depth + 1)?;
                        continue;
                    }
                    let options = ops.get("$options").and_then(Value::as_str).unwrap_or("");
                    self.op(&t, field, op, operand, options)?;
                }
                if first {
                    self.push("1");
                }
                Ok(())
            }
            Value::Object(items)
                if !items.is_empty() && items.keys().all(|k| k.parse::<usize>().is_ok()) =>
            {
                // find[type][]=sgv&find[type][]=mbg: a list of values.
                let t = target(self.coll, field)?;
                self.op(&t, field, "$in", value, "")
            }
            Value::Object(sub) => {
                // find[pump][battery]=5 is the nested field pump.battery.
                self.push("(");
                self.object(sub, field, depth + 1)?;
                self.push(")");
                Ok(())
            }
            Value::Array(_) => {
                let t = target(self.coll, field)?;
                self.op(&t, field, "$in", value, "")
            }
            _ => {
                let t = target(self.coll, field)?;
                self.op(&t, field, "$eq", value, "")
            }
        }
    }

    fn typed(&self, t: &Target, field: &str, raw: &str) -> Result<Typed> {
        match t.kind {
            _ if t.is_id => Ok(Typed::Text(raw.to_string())),
            FieldKind::Number => parse_number(raw).ok_or_else(|| {
                Error::bad_request(format!("find[{field}]: '{raw}' is not a number"))
            }),
            FieldKind::Time | FieldKind::ServerMs(_) => {
                if let Some(n) = parse_number(raw) {
                    return Ok(match n {
                        // Fractional epoch ms are truncated, as parseInt does.
                        #[allow(clippy::cast_possible_truncation)]
                        Typed::Real(f) => Typed::Int(f.trunc() as i64),
                        other => other,
                    });
                }
                // Some clients don't escape '+' in offsets, so it arrives as a space.
                let fixed = raw.trim().replace(' ', "+");
                crate::dates::parse_iso(&fixed)
                    .map(|i| Typed::Int(i.ms))
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "find[{field}]: cannot parse '{raw}' as a valid ISO-8601 date"
                        ))
                    })
            }
            FieldKind::RegexOrText => match parse_regex_literal(raw) {
                Some(p) => {
                    check_regex(field, &p)?;
                    Ok(Typed::Regex(p))
                }
                None => Ok(Typed::Text(raw.to_string())),
            },
            FieldKind::Auto if self.force_text => Ok(Typed::Text(raw.to_string())),
            FieldKind::Auto => Ok(Typed::Auto(raw.to_string())),
        }
    }

    fn expr(&mut self, t: &Target) {
        self.sql.push_str(&t.expr);
        self.params.extend(t.params.iter().cloned());
    }

    fn json_type(&mut self, t: &Target) {
        match &t.path {
            Some(p) => {
                self.push("json_type(doc, ?)");
                self.params.push(SqlValue::Text(p.clone()));
            }
            None => self.expr(t),
        }
    }

    /// `expr` equals the value (in any of the forms the value stands for).
    fn eq(&mut self, t: &Target, v: &Typed) {
        match v {
            Typed::Int(i) => {
                self.expr(t);
                self.push(" = ?");
                self.params.push(SqlValue::Integer(*i));
            }
            Typed::Real(f) => {
                self.expr(t);
                self.push(" = ?");
                self.params.push(SqlValue::Real(*f));
            }
            Typed::Text(s) if t.is_id && !crate::ids::is_object_id(s) => {
                // A UUID `_id` (Loop/Trio) is stored as the identifier.
                self.push("(id = ? OR identifier = ?)");
                self.params.push(SqlValue::Text(s.clone()));
                self.params.push(SqlValue::Text(s.clone()));
            }
            Typed::Text(s) => {
                self.expr(t);
                self.push(" = ?");
                let s = if t.is_id {
                    s.to_ascii_lowercase()
                } else {
                    s.clone()
                };
                self.params.push(SqlValue::Text(s));
            }
            Typed::Regex(p) => self.regex(t, p),
            Typed::Auto(s) => {
                self.push("(");
                self.expr(t);
                self.push(" = ?");
                self.params.push(SqlValue::Text(s.clone()));
                if let Some(n) = parse_number(s) {
                    self.push(" OR ");
                    self.eq(t, &n);
                }
                if s == "true" || s == "false" {
                    self.push(" OR ");
                    self.json_type(t);
                    self.push(" = ?");
                    self.params.push(SqlValue::Text(s.clone()));
                }
                self.push(")");
            }
        }
    }

    fn regex(&mut self, t: &Target, pattern: &str) {
        self.push("(typeof(");
        self.text_expr(t);
        self.push(") = 'text' AND ");
        self.text_expr(t);
        self.push(" REGEXP ?)");
        self.params.push(SqlValue::Text(pattern.to_string()));
    }

    /// The field as stored text (a time field's own string, not `mills`).
    fn text_expr(&mut self, t: &Target) {
        match (&t.kind, &t.path) {
            (FieldKind::Time, Some(p)) => {
                self.push("json_extract(doc, ?)");
                self.params.push(SqlValue::Text(p.clone()));
            }
            _ => self.expr(t),
        }
    }

    fn compare(&mut self, t: &Target, sql_op: &str, v: &Typed) {
        let (value, numeric) = match v {
            Typed::Int(i) => (SqlValue::Integer(*i), true),
            Typed::Real(f) => (SqlValue::Real(*f), true),
            Typed::Auto(s) => match parse_number(s) {
                Some(n) => return self.compare(t, sql_op, &n),
                None => (SqlValue::Text(s.clone()), false),
            },
            Typed::Text(s) | Typed::Regex(s) => (SqlValue::Text(s.clone()), false),
        };
        // Mongo compares within a type only: 5 > "abc" is never true there, nor here.
        self.push("(");
        self.expr(t);
        self.push(&format!(" {sql_op} ? AND typeof("));
        self.params.push(value);
        self.expr(t);
        self.push(if numeric {
            ") IN ('integer', 'real'))"
        } else {
            ") = 'text')"
        });
    }

    fn op(
        &mut self,
        t: &Target,
        field: &str,
        op: &str,
        operand: &Value,
        options: &str,
    ) -> Result<()> {
        match op {
            "$eq" => {
                let v = self.typed(t, field, leaf_text(field, operand)?)?;
                self.eq(t, &v);
            }
            "$ne" => {
                let v = self.typed(t, field, leaf_text(field, operand)?)?;
                self.push("(");
                self.expr(t);
                self.push(" IS NULL OR NOT ");
                self.eq(t, &v);
                self.push(")");
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let v = self.typed(t, field, leaf_text(field, operand)?)?;
                let sql_op = match op {
                    "$gt" => ">",
                    "$gte" => ">=",
                    "$lt" => "<",
                    _ => "<=",
                };
                self.compare(t, sql_op, &v);
            }
            "$in" | "$nin" => {
                let items = list_items(operand);
                let mut typed = vec![];
                for item in items {
                    typed.push(self.typed(t, field, leaf_text(field, item)?)?);
                }
                if op == "$nin" {
                    self.push("(");
                    self.expr(t);
                    self.push(" IS NULL OR NOT ");
                }
                self.push("(");
                if typed.is_empty() {
                    self.push("0");
                }
                for (i, v) in typed.iter().enumerate() {
                    if i > 0 {
                        self.push(" OR ");
                    }
                    self.eq(t, v);
                }
                self.push(")");
                if op == "$nin" {
                    self.push(")");
                }
            }
            "$exists" => {
                let want = !matches!(leaf_text(field, operand)?.trim(), "false" | "0" | "no");
                self.json_type(t);
                self.push(if want { " IS NOT NULL" } else { " IS NULL" });
            }
            "$regex" => {
                let raw = leaf_text(field, operand)?;
                let pattern = parse_regex_literal(raw).unwrap_or_else(|| with_flags(raw, options));
                check_regex(field, &pattern)?;
                self.regex(t, &pattern);
            }
            other => {
                return Err(Error::bad_request(format!(
                    "find[{field}]: unsupported operator '{other}'"
                )))
            }
        }
        Ok(())
    }
}

/// `_id` (or identifier) equality as a filter: one document's address in API v1 and Socket.IO.
pub fn id_filter(coll: Collection, id: &str) -> Result<SqlFilter> {
    compile_find(coll, &serde_json::json!({ "_id": id }))
}

/// What a v1 list asks for, before translation.
pub struct ListRequest<'a> {
    pub find: &'a Value,
    pub sort: &'a Value,
    /// `count` as sent.
    pub count: Option<&'a str>,
    pub default_count: usize,
    /// Whether Nightscout's 4-day window applies when `find` names no time or `_id`.
    pub window: bool,
    /// A condition the route adds (the type of `/entries/sgv.json`).
    pub extra: Option<SqlFilter>,
}

/// Parses `count` as parseInt would; 0 means no limit (Mongo's limit(0)).
pub fn parse_count(count: Option<&str>, default: usize) -> Result<usize> {
    let Some(raw) = count.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(default);
    };
    let n = match parse_number(raw) {
        Some(Typed::Int(i)) => i,
        #[allow(clippy::cast_possible_truncation)]
        Some(Typed::Real(f)) => f.trunc() as i64,
        _ => {
            return Err(Error::bad_request(format!(
                "count: '{raw}' is not a number"
            )))
        }
    };
    Ok(match n.unsigned_abs() {
        0 => super::MAX_LIST,
        n => usize::try_from(n).unwrap_or(super::MAX_LIST),
    })
}

/// Translates a v1 list request into SQL.
pub fn build_list(coll: Collection, req: &ListRequest, now_ms: i64) -> Result<super::ListQuery> {
    let mut filter = compile_find(coll, req.find)?;
    if let Some(extra) = &req.extra {
        filter = filter.and(extra.clone());
    }
    if req.window && !has_time_filter(coll, req.find) && !has_id_filter(req.find) {
        filter = filter.and(default_window(now_ms));
    }
    Ok(super::ListQuery {
        filter,
        order: compile_sort(coll, req.sort)?,
        limit: parse_count(req.count, req.default_count)?,
        skip: 0,
        include_deleted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sql(coll: Collection, find: Value) -> SqlFilter {
        compile_find(coll, &find).unwrap()
    }

    #[test]
    fn simple_equality_uses_generated_column() {
        let f = sql(Collection::Entries, json!({"type": "sgv"}));
        assert_eq!(f.sql, "(type = ?)");
        assert_eq!(f.params.len(), 1);
    }

    #[test]
    fn typed_numbers_and_float_epochs() {
        let f = sql(Collection::Entries, json!({"sgv": {"$gte": "120.0"}}));
        assert!(f.sql.contains("json_extract(doc, ?) >= ?"), "{}", f.sql);
        assert!(f.params.contains(&SqlValue::Integer(120)));
        let f = sql(
            Collection::Entries,
            json!({"date": {"$gte": "1700000000000.0"}}),
        );
        assert!(f.sql.starts_with("(mills >= ?"), "{}", f.sql);
        assert!(f.params.contains(&SqlValue::Integer(1_700_000_000_000)));
    }

    #[test]
    fn bad_values_are_client_errors() {
        assert!(compile_find(Collection::Entries, &json!({"sgv": "abc"})).is_err());
        assert!(compile_find(
            Collection::Treatments,
            &json!({"created_at": {"$gte": "soon"}})
        )
        .is_err());
        assert!(compile_find(Collection::Treatments, &json!({"x": {"$where": "1"}})).is_err());
        assert!(compile_find(Collection::Treatments, &json!({"eventType": "/(/"})).is_err());
        assert!(compile_find(Collection::Treatments, &json!({"a\"b": "x"})).is_err());
    }

    #[test]
    fn offset_dates_with_space_for_plus() {
        let f = sql(
            Collection::Treatments,
            json!({"created_at": {"$gte": "2024-01-01T02:00:00 02:00"}}),
        );
        assert!(
            f.params.contains(&SqlValue::Integer(1_704_067_200_000)),
            "{:?}",
            f.params
        );
    }

    #[test]
    fn regex_literal_on_event_type() {
        let f = sql(
            Collection::Treatments,
            json!({"eventType": "/Bolus|Carb/i"}),
        );
        assert!(f.sql.contains("REGEXP"), "{}", f.sql);
        assert!(f.params.contains(&SqlValue::Text("(?i)Bolus|Carb".into())));
    }

    #[test]
    fn or_lists_and_in_lists() {
        let f = sql(
            Collection::Entries,
            json!({"$or": {"0": {"type": "sgv"}, "1": {"type": "mbg"}}}),
        );
        assert!(f.sql.contains(" OR "), "{}", f.sql);
        let f = sql(Collection::Entries, json!({"sgv": {"$in": ["60", "95"]}}));
        assert_eq!(
            f.params,
            vec![
                SqlValue::Text("$.\"sgv\"".into()),
                SqlValue::Integer(60),
                SqlValue::Text("$.\"sgv\"".into()),
                SqlValue::Integer(95)
            ]
        );
    }

    #[test]
    fn time_filter_detection() {
        assert!(has_time_filter(
            Collection::Entries,
            &json!({"dateString": {"$gte": "2024"}})
        ));
        assert!(has_time_filter(
            Collection::Treatments,
            &json!({"created_at": "x"})
        ));
        assert!(!has_time_filter(
            Collection::Treatments,
            &json!({"date": "1"})
        ));
        assert!(has_id_filter(&json!({"_id": "x"})));
    }

    #[test]
    fn nested_paths() {
        let f = sql(
            Collection::DeviceStatus,
            json!({"pump": {"battery": {"percent": "62"}}}),
        );
        assert!(f
            .params
            .contains(&SqlValue::Text("$.\"pump\".\"battery\".\"percent\"".into())));
    }
}
