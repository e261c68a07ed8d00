//! `GET /api/v2/properties[/name,name.path,...]`: the current-state properties
//! (Nightscout's lib/api2/properties.js), computed from the recent documents at each request
//! (`plugins::current`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::v1::State;
use crate::dates;
use crate::error::Result;
use crate::plugins::current::read_all;
use crate::plugins::Doc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/properties", "/properties/{spec:.*}"]).route(web::get().to(get)));
}

async fn get(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let selected = selection(req.match_info().get("spec").unwrap_or(""));
    let config = state.config.clone();
    let path = state.store.path().to_path_buf();
    let now = dates::now_ms();
    let all = state
        .store
        .read(move |conn| read_all(conn, &config, &path, now))
        .await?;
    let result = if selected.is_empty() {
        all
    } else {
        pick(&all, &selected)
    };
    let pretty =
        crate::qs::first_value(req.query_string(), "pretty").is_some_and(|p| !p.is_empty());
    if pretty {
        // Nightscout's `?pretty=1`: JSON.stringify(result, null, 2).
        let body = serde_json::to_string_pretty(&Value::Object(result))?;
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body));
    }
    Ok(HttpResponse::Ok().json(Value::Object(result)))
}

/// The names in the path's first segment: `bgnow,delta.display` → [bgnow, delta.display].
fn selection(spec: &str) -> Vec<String> {
    spec.split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// lodash `_.pick`: each name is a key, or a dotted path into the properties (`bgnow.last`),
/// kept with its enclosing objects; names that lead nowhere are left out.
fn pick(all: &Doc, names: &[String]) -> Doc {
    let mut out = Doc::new();
    for name in names {
        if let Some(v) = all.get(name.as_str()) {
            out.insert(name.clone(), v.clone());
            continue;
        }
        let path: Vec<&str> = name.split('.').collect();
        let Some(value) = walk(all, &path) else {
            continue;
        };
        set_path(&mut out, &path, value.clone());
    }
    out
}

fn walk<'a>(root: &'a Doc, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = root.get(*first)?;
    for seg in rest {
        cur = match cur {
            Value::Object(o) => o.get(*seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn is_index(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())
}

/// lodash `_.set` on the result: missing containers are arrays before an index, else objects.
fn set_path(root: &mut Doc, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        root.insert((*first).to_string(), value);
        return;
    }
    let slot = root.entry(*first).or_insert_with(|| empty_for(rest[0]));
    set_in(slot, rest, value);
}

fn empty_for(next: &str) -> Value {
    if is_index(next) {
        Value::Array(vec![])
    } else {
        Value::Object(Map::new())
    }
}

fn set_in(slot: &mut Value, path: &[&str], value: Value) {
    let Some((seg, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    let child = match slot {
        Value::Object(o) => o
            .entry(*seg)
            .or_insert_with(|| rest.first().map_or(Value::Null, |n| empty_for(n))),
        Value::Array(a) => {
            let Ok(i) = seg.parse::<usize>() else {
                return;
            };
            if a.len() <= i {
                a.resize(i + 1, Value::Null);
            }
            if a[i].is_null() {
                if let Some(n) = rest.first() {
                    a[i] = empty_for(n);
                }
            }
            &mut a[i]
        }
        _ => return,
    };
    set_in(child, rest, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selection_takes_the_first_segment() {
        assert_eq!(selection("bgnow,delta"), vec!["bgnow", "delta"]);
        assert_eq!(selection("iob,,cob/ignored"), vec!["iob", "cob"]);
        assert!(selection("").is_empty());
    }

    #[test]
    fn pick_keys_and_paths_like_lodash() {
        let all = json!({
            "bgnow": { "last": 120, "sgvs": [{ "mgdl": 120 }, { "mgdl": 118 }] },
            "delta": { "display": "+2" },
            "Sensor Start": 1
        });
        let all = all.as_object().cloned().unwrap_or_default();
        let names: Vec<String> = [
            "delta",
            "bgnow.last",
            "bgnow.sgvs.1.mgdl",
            "nope",
            "Sensor Start",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = Value::Object(pick(&all, &names));
        assert_eq!(
            got,
            json!({
                "delta": { "display": "+2" },
                "bgnow": { "last": 120, "sgvs": [null, { "mgdl": 118 }] },
                "Sensor Start": 1
            })
        );
        // Selection order is kept, as lodash builds the result in that order.
        let two = pick(&all, &names[..2]);
        let keys: Vec<&String> = two.keys().collect();
        assert_eq!(keys, vec!["delta", "bgnow"]);
    }
}
