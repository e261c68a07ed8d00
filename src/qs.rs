//! Query strings as Nightscout's `qs` parses them: `find[sgv][$gte]=120` becomes
//! `{"find": {"sgv": {"$gte": "120"}}}`. Brackets and dollars may arrive percent-encoded or
//! literal; `+` is a space. `[]` and repeated keys become objects with index keys ("0", "1"),
//! which the find compiler reads as lists. Leaves are always strings.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

const MAX_PAIRS: usize = 1000;
const MAX_DEPTH: usize = 8;

/// Percent-decoding with `+` as space; malformed escapes are kept literally.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `find[sgv][$gte]` → ["find", "sgv", "$gte"].
fn split_key(key: &str) -> Result<Vec<String>> {
    let (root, mut rest) = match key.find('[') {
        Some(i) if i > 0 => (&key[..i], &key[i..]),
        _ => return Ok(vec![key.to_string()]),
    };
    let mut segs = vec![root.to_string()];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(end) = stripped.find(']') else {
            // qs keeps an unbalanced remainder as part of the key.
            segs.push(rest.to_string());
            break;
        };
        segs.push(stripped[..end].to_string());
        rest = &stripped[end + 1..];
        if segs.len() > MAX_DEPTH {
            return Err(Error::bad_request(format!(
                "query parameter '{key}' is nested too deeply"
            )));
        }
    }
    Ok(segs)
}

fn next_index(m: &Map<String, Value>) -> String {
    m.len().to_string()
}

fn insert(map: &mut Map<String, Value>, segs: &[String], value: String) {
    let (first, rest) = match segs.split_first() {
        Some(x) => x,
        None => return,
    };
    let key = if first.is_empty() {
        next_index(map)
    } else {
        first.clone()
    };
    if rest.is_empty() {
        match map.get_mut(&key) {
            // A repeated key becomes a list.
            Some(Value::String(old)) => {
                let mut list = Map::new();
                list.insert("0".into(), Value::String(std::mem::take(old)));
                list.insert("1".into(), Value::String(value));
                map.insert(key, Value::Object(list));
            }
            Some(Value::Object(list)) if list.keys().all(|k| k.parse::<usize>().is_ok()) => {
                let i = next_index(list);
                list.insert(i, Value::String(value));
            }
            _ => {
                map.insert(key, Value::String(value));
            }
        }
        return;
    }
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        // find[type]=sgv&find[type][$ne]=x: the later, structured form wins.
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(child) = entry {
        insert(child, rest, value);
    }
}

/// Parses a whole query string into a tree.
pub fn parse(query: &str) -> Result<Value> {
    let mut root = Map::new();
    for (n, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= MAX_PAIRS {
            return Err(Error::bad_request("too many query parameters"));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k);
        let segs = split_key(&key)?;
        insert(&mut root, &segs, decode(v));
    }
    Ok(Value::Object(root))
}

/// Every value of a top-level parameter, in the order given.
pub(crate) fn values<'a>(query: &'a str, name: &'a str) -> impl Iterator<Item = String> + 'a {
    query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .filter(move |(k, _)| decode(k) == name)
        .map(|(_, v)| decode(v))
}

/// The first value of a top-level parameter.
pub(crate) fn first_value(query: &str, name: &str) -> Option<String> {
    values(query, name).next()
}

/// A top-level scalar of a parsed tree (the last one when repeated).
pub fn scalar<'a>(tree: &'a Value, name: &str) -> Option<&'a str> {
    match tree.get(name)? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.values().next_back().and_then(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brackets_plain_and_encoded() {
        let a = parse("find[sgv][$gte]=120&count=5").unwrap();
        assert_eq!(a, json!({"find": {"sgv": {"$gte": "120"}}, "count": "5"}));
        let b = parse("find%5Bsgv%5D%5B%24gte%5D=120&count=5").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn plus_is_space_and_percent_plus_is_plus() {
        let t = parse("find[created_at][$gte]=2024-01-01T00:00:00+02:00").unwrap();
        assert_eq!(t["find"]["created_at"]["$gte"], "2024-01-01T00:00:00 02:00");
        let t = parse("find[created_at][$gte]=2024-01-01T00:00:00%2B02:00").unwrap();
        assert_eq!(t["find"]["created_at"]["$gte"], "2024-01-01T00:00:00+02:00");
    }

    #[test]
    fn lists_from_brackets_and_repeats() {
        let t = parse("find[sgv][$in][]=60&find[sgv][$in][]=95").unwrap();
        assert_eq!(t["find"]["sgv"]["$in"], json!({"0": "60", "1": "95"}));
        let t = parse("find[$or][0][type]=sgv&find[$or][1][type]=mbg").unwrap();
        assert_eq!(t["find"]["$or"]["1"]["type"], "mbg");
        let t = parse("a=1&a=2&a=3").unwrap();
        assert_eq!(t["a"], json!({"0": "1", "1": "2", "2": "3"}));
        assert_eq!(scalar(&t, "a"), Some("3"));
    }

    #[test]
    fn malformed_escapes_and_depth() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert!(parse("a[1][2][3][4][5][6][7][8][9]=x").is_err());
        assert_eq!(
            first_value("x=1&secret=abc%20d", "secret").as_deref(),
            Some("abc d")
        );
    }
}
