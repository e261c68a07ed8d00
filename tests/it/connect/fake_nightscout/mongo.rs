//! The part of MongoDB the fake Nightscout needs: documents as JSON objects (an ObjectId is
//! its 24 hex digits), filters of `{field: {$op: value}}` clauses, BSON's order between
//! types, and JavaScript's `Number()` for what 15.0.7's v1 coerces.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use serde_json::{Map, Value};

pub type Doc = Map<String, Value>;

/// A new ObjectId: the time in seconds, then a counter shared by every fake of the process.
pub fn object_id(now_ms: i64) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
    format!(
        "{:08x}{:016x}",
        now_ms / 1000,
        n + u64::from(std::process::id()) * (1 << 32)
    )
}

pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

impl Op {
    /// `$gte` or `gte`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s.trim_start_matches('$') {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "nin" => Op::Nin,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Cond {
    pub field: String,
    pub op: Op,
    /// An array for `In` and `Nin`.
    pub value: Value,
}

impl Cond {
    pub fn new(field: &str, op: Op, value: Value) -> Cond {
        Cond {
            field: field.to_string(),
            op,
            value,
        }
    }
}

/// One clause of a filter: a condition, or any of several (`$or`).
#[derive(Debug, Clone)]
pub enum Clause {
    One(Cond),
    Any(Vec<Vec<Cond>>),
}

/// Every clause holds.
pub type Filter = Vec<Clause>;

/// A field by its dotted path.
pub fn get<'a>(doc: &'a Doc, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = doc.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// BSON's order of types: null (and missing) < numbers < strings < objects < arrays < booleans.
fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Object(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Bool(_)) => 5,
    }
}

/// The order MongoDB sorts values in (objects and arrays by their text: enough here).
pub fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) if rank(a) == rank(b) && rank(a) > 0 => {
            x.to_string().cmp(&y.to_string())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn equal(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (None | Some(Value::Null), Value::Null) => true,
        (Some(Value::Array(items)), b) if !b.is_array() => items.iter().any(|i| equal(Some(i), b)),
        (Some(a), b) => rank(Some(a)) == rank(Some(b)) && compare(Some(a), Some(b)).is_eq(),
        (None, _) => false,
    }
}

fn holds(doc: &Doc, c: &Cond) -> bool {
    let v = get(doc, &c.field);
    let range = |want: &[Ordering]| {
        v.is_some_and(|v| rank(Some(v)) == rank(Some(&c.value)) && rank(Some(v)) > 0)
            && want.contains(&compare(v, Some(&c.value)))
    };
    let within = || {
        c.value
            .as_array()
            .is_some_and(|items| items.iter().any(|i| equal(v, i)))
    };
    match c.op {
        Op::Eq => equal(v, &c.value),
        Op::Ne => !equal(v, &c.value),
        Op::Gt => range(&[Ordering::Greater]),
        Op::Gte => range(&[Ordering::Greater, Ordering::Equal]),
        Op::Lt => range(&[Ordering::Less]),
        Op::Lte => range(&[Ordering::Less, Ordering::Equal]),
        Op::In => within(),
        Op::Nin => !within(),
    }
}

pub fn matches(doc: &Doc, filter: &Filter) -> bool {
    filter.iter().all(|clause| match clause {
        Clause::One(c) => holds(doc, c),
        Clause::Any(alternatives) => alternatives
            .iter()
            .any(|all| all.iter().all(|c| holds(doc, c))),
    })
}

/// JavaScript's `Number(v)` (None is `undefined`).
pub fn js_number(v: Option<&Value>) -> f64 {
    match v {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) if s.trim().is_empty() => 0.0,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(f64::NAN),
        Some(Value::Array(a)) if a.is_empty() => 0.0,
        Some(Value::Array(a)) if a.len() == 1 => js_number(a.first()),
        Some(_) => f64::NAN,
    }
}

/// A number as JSON writes it (`20.0` is `20`); NaN as `JSON.stringify` writes it: null.
pub fn js_value(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript's `parseInt(s, 10)`: the leading digits.
pub fn parse_int(s: &str) -> Value {
    let t = s.trim();
    let end = t
        .char_indices()
        .find(|&(i, ch)| !(ch.is_ascii_digit() || (i == 0 && (ch == '-' || ch == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse::<i64>().map_or(Value::Null, Value::from)
}

/// Epoch ms of a document's time field: a number, or ISO 8601 text.
pub fn time_ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(nightlite::dates::parse_value).map(|i| i.ms)
}

/// Sorts `docs` by `keys` (field, ascending?), stably: ties keep their stored order.
pub fn sort(docs: &mut [Doc], keys: &[(&str, bool)]) {
    docs.sort_by(|a, b| {
        for (field, asc) in keys {
            let o = compare(get(a, field), get(b, field));
            if o.is_ne() {
                return if *asc { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    });
}
