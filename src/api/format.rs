//! Output formats and conditional requests: `.json`/`.csv`/`.tsv`/`.txt` suffixes, Accept
//! negotiation as Express' `res.format` does it, Last-Modified / If-Modified-Since.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Tsv,
    Text,
}

/// `sgv.json` → (`sgv`, Some(`json`)). Only known suffixes are split off.
pub fn split_ext(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once('.') {
        Some((base, ext))
            if matches!(
                ext,
                "json" | "csv" | "tsv" | "txt" | "html" | "svg" | "png" | "js"
            ) =>
        {
            (base, Some(ext))
        }
        _ => (s, None),
    }
}

/// The route's `{ext}` match info, if any.
pub fn ext_of(req: &HttpRequest) -> Option<String> {
    req.match_info().get("ext").map(str::to_string)
}

/// The q-value the Accept header gives `mime` (exact, type/*, or */*).
fn quality(accept: &str, mime: &str) -> f32 {
    let (ty, _) = mime.split_once('/').unwrap_or((mime, ""));
    let mut best: Option<(u8, f32)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let specificity = if range == mime {
            3
        } else if range == format!("{ty}/*") {
            2
        } else if range == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Entries' format: the suffix wins; otherwise Accept, choosing among Nightscout's types in
/// its order (text/plain first, so a bare `curl` gets tab-separated lines, as on Nightscout).
pub fn entries_format(ext: Option<&str>, req: &HttpRequest) -> Result<Format> {
    match ext {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some("tsv") => return Ok(Format::Tsv),
        Some("txt") => return Ok(Format::Text),
        Some("html") | Some("svg") | Some("png") => return Ok(Format::Json),
        Some(other) => {
            return Err(Error::NotAcceptable(format!(
                "format '.{other}' is not supported; use .json, .csv, .tsv or .txt"
            )))
        }
        None => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("*/*");
    let candidates = [
        ("text/plain", Format::Text),
        ("text/tab-separated-values", Format::Tsv),
        ("text/csv", Format::Csv),
        ("application/json", Format::Json),
    ];
    let mut chosen = (0.0_f32, Format::Json);
    for (mime, f) in candidates {
        let q = quality(accept, mime);
        if q > chosen.0 {
            chosen = (q, f);
        }
    }
    Ok(chosen.1)
}

/// Nightscout's text rows: dateString, date, sgv, direction, device, each JSON-encoded.
fn separated(docs: &[Value], sep: &str) -> String {
    let cell = |d: &Value, k: &str| match d.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(v) => v.to_string(),
    };
    docs.iter()
        .map(|d| {
            ["dateString", "date", "sgv", "direction", "device"]
                .iter()
                .map(|k| cell(d, k))
                .collect::<Vec<_>>()
                .join(sep)
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Writes `docs` in `format` onto `builder`.
pub fn respond(mut builder: HttpResponseBuilder, format: Format, docs: Vec<Value>) -> HttpResponse {
    match format {
        Format::Json => builder.json(docs),
        Format::Csv => builder
            .content_type("text/csv; charset=utf-8")
            .body(separated(&docs, ",")),
        Format::Tsv => builder
            .content_type("text/tab-separated-values; charset=utf-8")
            .body(separated(&docs, "\t")),
        Format::Text => builder
            .content_type("text/plain; charset=utf-8")
            .body(separated(&docs, "\t")),
    }
}

/// Answers 304 when If-Modified-Since is not older than `last_ms`; otherwise sets
/// Last-Modified and lets `respond` write the body.
pub fn conditional(
    req: &HttpRequest,
    last_ms: Option<i64>,
    respond: impl FnOnce(HttpResponseBuilder) -> HttpResponse,
) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    let Some(last) = last_ms else {
        return respond(builder);
    };
    let since = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::dates::parse_http_date);
    // HTTP dates have whole seconds.
    let last_s = last.div_euclid(1000) * 1000;
    if since.is_some_and(|s| last_s <= s) {
        return HttpResponse::NotModified()
            .insert_header((header::LAST_MODIFIED, crate::dates::to_http_date(last)))
            .finish();
    }
    builder.insert_header((header::LAST_MODIFIED, crate::dates::to_http_date(last)));
    respond(builder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn suffixes() {
        assert_eq!(split_ext("sgv.json"), ("sgv", Some("json")));
        assert_eq!(
            split_ext("5f1e2d3c4b5a697887766554"),
            ("5f1e2d3c4b5a697887766554", None)
        );
        assert_eq!(split_ext("a.b"), ("a.b", None));
    }

    #[test]
    fn negotiation_follows_express_order() {
        let r = TestRequest::default().to_http_request();
        assert_eq!(entries_format(None, &r).unwrap(), Format::Text);
        let r = TestRequest::default()
            .insert_header(("Accept", "application/json"))
            .to_http_request();
        assert_eq!(entries_format(None, &r).unwrap(), Format::Json);
        let r = TestRequest::default()
            .insert_header(("Accept", "text/csv, */*;q=0.1"))
            .to_http_request();
        assert_eq!(entries_format(None, &r).unwrap(), Format::Csv);
        assert!(entries_format(Some("xml"), &r).is_err());
    }

    #[test]
    fn text_rows() {
        let docs = vec![
            serde_json::json!({"dateString": "x", "date": 1, "sgv": 100, "direction": "Flat"}),
        ];
        assert_eq!(separated(&docs, "\t"), "\"x\"\t1\t100\t\"Flat\"\t");
    }
}
