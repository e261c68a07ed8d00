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

/// One media range of an Accept header.
struct Range {
    ty: String,
    sub: String,
    q: f32,
}

fn parse_accept(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            let (ty, sub) = range.split_once('/')?;
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(Range {
                ty: ty.trim().to_string(),
                sub: sub.trim().to_string(),
                q,
            })
        })
        .collect()
}

/// Picks one of `offered` (in the server's order of preference) as Express' `req.accepts`
/// does (the negotiator package): highest q, then the most specific matching range, then the
/// range listed first by the client, then the server's order. A missing Accept is `*/*`.
pub fn negotiate<T: Copy>(req: &HttpRequest, offered: &[(&str, T)]) -> Option<T> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("*/*");
    let ranges = parse_accept(accept);
    // (q, specificity, client order, server order) per offered type that matches at all.
    let mut best: Option<(f32, u8, usize, usize, T)> = None;
    for (i, (mime, value)) in offered.iter().enumerate() {
        let (ty, sub) = mime.split_once('/').unwrap_or((mime, ""));
        let matched = ranges
            .iter()
            .enumerate()
            .filter_map(|(o, r)| {
                let s = match (r.ty.as_str(), r.sub.as_str()) {
                    (t, s2) if t == ty && s2 == sub => 2,
                    (t, "*") if t == ty => 1,
                    ("*", "*") => 0,
                    _ => return None,
                };
                Some((r.q, s, o))
            })
            // The most specific range decides the type's quality.
            .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
        let Some((q, s, o)) = matched.filter(|m| m.0 > 0.0) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((bq, bs, bo, _, _)) => q > bq || (q == bq && (s > bs || (s == bs && o < bo))),
        };
        if better {
            best = Some((q, s, o, i, *value));
        }
    }
    best.map(|b| b.4)
}

/// Entries' format: the suffix wins; otherwise Accept, offering Nightscout's types in its
/// order (text/plain first, so a bare `curl` gets tab-separated lines, as on Nightscout).
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
    let offered = [
        ("text/plain", Format::Text),
        ("text/tab-separated-values", Format::Tsv),
        ("text/csv", Format::Csv),
        ("application/json", Format::Json),
    ];
    // Express' res.format falls back to its 'default' handler (JSON) when nothing matches.
    Ok(negotiate(req, &offered).unwrap_or(Format::Json))
}

/// Nightscout's text rows: dateString, date, sgv, direction, device, each JSON-encoded.
fn separated(docs: &[Value], sep: &str) -> String {
    docs.iter()
        .map(|d| text_row(d, sep))
        .collect::<Vec<_>>()
        .join(ROW_END)
}

/// What ends every text row but the last.
pub const ROW_END: &str = "\r\n";

/// One of Nightscout's text rows.
pub fn text_row(d: &Value, sep: &str) -> String {
    let cell = |k: &str| match d.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(v) => v.to_string(),
    };
    ["dateString", "date", "sgv", "direction", "device"]
        .iter()
        .map(|k| cell(k))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The cell separator of a text format.
pub fn separator(format: Format) -> &'static str {
    if format == Format::Csv {
        ","
    } else {
        "\t"
    }
}

/// The Content-Type of a reply in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Tsv => "text/tab-separated-values; charset=utf-8",
        Format::Text => "text/plain; charset=utf-8",
    }
}

/// Writes `docs` in `format` onto `builder`.
pub fn respond(mut builder: HttpResponseBuilder, format: Format, docs: Vec<Value>) -> HttpResponse {
    match format {
        Format::Json => builder.json(docs),
        text => builder
            .content_type(content_type(text))
            .body(separated(&docs, separator(text))),
    }
}

/// A JSON body already serialised, with the Content-Type `HttpResponseBuilder::json` sets.
pub fn json_body(mut builder: HttpResponseBuilder, body: String) -> HttpResponse {
    builder
        .insert_header(header::ContentType::json())
        .body(body)
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
    // A client that sent If-None-Match is judged by its ETag alone (RFC 9110 13.1.3): a
    // tag that did not match must not turn into a 304 through the date.
    let since = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .filter(|_| !req.headers().contains_key(header::IF_NONE_MATCH))
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
        let r = TestRequest::default()
            .insert_header(("Accept", "application/json, text/plain, */*"))
            .to_http_request();
        assert_eq!(
            entries_format(None, &r).unwrap(),
            Format::Json,
            "client order breaks ties"
        );
        let r = TestRequest::default()
            .insert_header(("Accept", "image/png"))
            .to_http_request();
        assert_eq!(
            entries_format(None, &r).unwrap(),
            Format::Json,
            "default handler"
        );
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
