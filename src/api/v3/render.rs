//! API v3 output: `{status: 200, result}` as JSON, or the result as CSV (a header row, one row
//! per document) or XML, chosen by suffix or Accept (json, csv, xml, else 406).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::{json, Map, Value};

use crate::api::format::negotiate;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Xml,
}

impl Format {
    /// The format of a path suffix; `None` for any other (a 406).
    pub fn from_ext(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// The suffix's format, else Accept's choice among json, csv, xml.
pub fn format_of(req: &HttpRequest) -> Result<Format> {
    if let Some(super::Suffix(f)) = req.extensions().get::<super::Suffix>() {
        return Ok(*f);
    }
    let offered = [
        ("application/json", Format::Json),
        ("text/csv", Format::Csv),
        ("application/xml", Format::Xml),
        ("text/xml", Format::Xml),
    ];
    negotiate(req, &offered)
        .ok_or_else(|| Error::NotAcceptable("Unsupported output format requested".into()))
}

/// `{status: 200, result}` as JSON, for routes without format negotiation.
pub fn ok_json(result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": 200, "result": result }))
}

/// `{status: 200, result}` as JSON around `result`, JSON text already serialised (history
/// pages built from the stored text, store::v1json::v3_views): the same bytes as [`render`]
/// gives for the parsed value.
pub fn json_text(mut builder: HttpResponseBuilder, result: &str) -> HttpResponse {
    let mut body = String::with_capacity(result.len() + 24);
    body.push_str(r#"{"status":200,"result":"#);
    body.push_str(result);
    body.push('}');
    builder.content_type("application/json").body(body)
}

/// Renders `data` (a document or a list) in the request's format.
pub fn render(
    req: &HttpRequest,
    builder: HttpResponseBuilder,
    data: Value,
) -> Result<HttpResponse> {
    render_with(req, builder, data, None)
}

/// As [`render`]; in JSON, `activeSwitch` (when given) follows `result` in the envelope
/// (api/v3/profile_switch.rs). CSV and XML hold the documents only.
pub fn render_with(
    req: &HttpRequest,
    mut builder: HttpResponseBuilder,
    data: Value,
    active_switch: Option<Value>,
) -> Result<HttpResponse> {
    Ok(match format_of(req)? {
        Format::Json => match active_switch {
            None => builder.json(json!({ "status": 200, "result": data })),
            Some(s) => builder.json(json!({ "status": 200, "result": data, "activeSwitch": s })),
        },
        Format::Csv => builder
            .content_type("text/csv; charset=utf-8")
            .body(csv(&data)),
        Format::Xml => builder
            .content_type("application/xml; charset=utf-8")
            .body(xml(&data)),
    })
}

fn csv_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => {
            if *b {
                "1".into()
            } else {
                String::new()
            }
        }
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Columns are every field in order of first appearance.
fn csv(data: &Value) -> String {
    let rows: Vec<&Map<String, Value>> = match data {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => vec![],
    };
    let mut columns: Vec<&str> = vec![];
    for r in &rows {
        for k in r.keys() {
            if !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    let mut out = columns.join(",");
    out.push('\n');
    for r in rows {
        let line: Vec<String> = columns
            .iter()
            .map(|c| r.get(*c).map(csv_cell).unwrap_or_default())
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An element name from a JSON key (XML names cannot start with a digit or hold spaces).
fn xml_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn xml_value(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                xml_value(out, name, item);
            }
        }
        Value::Object(o) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in o {
                xml_value(out, &xml_name(k), v);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", xml_escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// A root `<item>` holding the document, or one `<item>` per document under `<items>`.
fn xml(data: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    match data {
        Value::Array(_) => {
            out.push_str("<items>");
            xml_value(&mut out, "item", data);
            out.push_str("</items>");
        }
        other => xml_value(&mut out, "item", other),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_writes_the_envelope_render_writes() {
        let body = |resp: HttpResponse| {
            actix_rt::System::new()
                .block_on(actix_web::body::to_bytes(resp.into_body()))
                .map_err(|e| e.to_string())
        };
        let data = json!([{ "a": 1, "b": "x" }, {}]);
        let spliced = body(json_text(HttpResponse::Ok(), &data.to_string()));
        let rendered = body(HttpResponse::Ok().json(json!({ "status": 200, "result": data })));
        assert_eq!(spliced, rendered);
        assert!(spliced.is_ok_and(|b| b.starts_with(br#"{"status":200,"result":[{"a":1"#)));
    }

    #[test]
    fn csv_quotes_and_columns() {
        let data = json!([{"a": 1, "b": "x,y"}, {"a": 2, "c": true}]);
        assert_eq!(csv(&data), "a,b,c\n1,\"x,y\",\n2,,1\n");
    }

    #[test]
    fn xml_escapes() {
        let out = xml(&json!({"notes": "<b>&", "1x": [1, 2]}));
        assert!(out.contains("<notes>&lt;b&gt;&amp;</notes>"), "{out}");
        assert!(out.contains("<_1x>1</_1x><_1x>2</_1x>"), "{out}");
    }
}
