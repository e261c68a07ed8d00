//! API v1 JSON lists (and API v3 lists of views, [`v3_views`]) built from the stored document
//! text without parsing it.
//!
//! The old path parsed every document into a map, copied it behind `_id` ([`StoredDoc::to_v1`])
//! and serialised it again: most of a large list's CPU went to malloc and key hashing
//! (docs/PERFORMANCE.md, "What limits reads"). Documents are stored as serde_json writes them,
//! so the reply can be `{"_id":"<id>",` + the stored text after its `{`. That gives the very
//! bytes of the old path only when parsing and serialising the text again would reproduce it,
//! so [`canonical`] checks that first (one pass, no allocation) and any document it does not
//! vouch for takes the old path. A check that says no costs speed, never a byte.

use serde_json::Value;

use super::{Collection, RawDoc, StoredDoc};
use crate::dates;
use crate::error::Result;

/// Objects nested deeper than this take the parse path (serde_json refuses 128 levels).
const MAX_DEPTH: usize = 100;
/// Keys per object checked for duplicates pairwise; more take the parse path.
const MAX_KEYS: usize = 128;

/// A v1 JSON list reply and the newest document time for Last-Modified.
pub struct V1Json {
    pub body: String,
    pub newest: Option<i64>,
}

/// Which top-level field dates a document for Last-Modified, and how its value reads as ms.
#[derive(Clone, Copy)]
pub struct TimeField {
    pub name: &'static str,
    pub ms: fn(&Value) -> Option<i64>,
}

/// `docs` as a JSON array of [`StoredDoc::to_v1`] documents, byte for byte what serialising
/// those gives, with the newest `time` among them.
pub fn list(docs: Vec<RawDoc>, time: Option<TimeField>) -> Result<V1Json> {
    let size: usize = docs.iter().map(|d| d.doc.len() + d.id.len() + 12).sum();
    let mut body = String::with_capacity(size + 2);
    let mut newest: Option<i64> = None;
    let mut keys = Vec::new();
    body.push('[');
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let t = push_doc(&mut body, d, time, &mut keys)?;
        newest = newest.max(t);
    }
    body.push(']');
    Ok(V1Json { body, newest })
}

/// One document as [`StoredDoc::to_v1`] serialised, or `null` for none.
pub fn one(doc: Option<RawDoc>) -> Result<String> {
    let mut out = String::new();
    match doc {
        Some(d) => {
            push_doc(&mut out, d, None, &mut Vec::new())?;
        }
        None => out.push_str("null"),
    }
    Ok(out)
}

/// Appends the v1 form of `d`, as [`list`] writes each document.
pub fn push_v1(out: &mut String, d: RawDoc) -> Result<()> {
    push_doc(out, d, None, &mut Vec::new()).map(|_| ())
}

/// The value of `time` in a stored document's text, as [`list`] reads it for `newest`.
pub fn time_of(text: &str, time: TimeField) -> Result<Option<i64>> {
    let mut found = [None];
    if canonical(text, &[time.name], &mut found, &mut Vec::new()).is_some() {
        return Ok(match found[0] {
            Some(v) => (time.ms)(&serde_json::from_str::<Value>(v)?),
            None => None,
        });
    }
    let doc: serde_json::Map<String, Value> = serde_json::from_str(text)?;
    Ok(doc.get(time.name).and_then(time.ms))
}

/// Appends the v1 form of `d`; returns its time when `time` is asked for. `keys` is scratch
/// space for [`canonical`], kept between documents.
fn push_doc(
    out: &mut String,
    d: RawDoc,
    time: Option<TimeField>,
    keys: &mut Vec<(usize, usize)>,
) -> Result<Option<i64>> {
    let names: &[&str] = match &time {
        Some(t) => std::slice::from_ref(&t.name),
        None => &[],
    };
    let mut found = [None];
    if canonical(&d.doc, names, &mut found, keys).is_some() {
        out.push_str("{\"_id\":");
        push_json_str(out, &d.id)?;
        if d.doc.len() > 2 {
            out.push(',');
        }
        // The text after the object's `{`: every field, then the closing `}`.
        out.push_str(&d.doc[1..]);
        return Ok(match (time, found[0]) {
            (Some(t), Some(v)) => (t.ms)(&serde_json::from_str::<Value>(v)?),
            _ => None,
        });
    }
    let doc = StoredDoc::parse(d)?;
    let v1 = doc.to_v1();
    out.push_str(&serde_json::to_string(&v1)?);
    Ok(time.and_then(|t| doc.doc.get(t.name).and_then(t.ms)))
}

/// `docs` as a JSON array of the documents [`super::v3::view`] shows (no `fields` projection),
/// byte for byte what serialising those views gives; API v3 wraps it in its reply.
///
/// The view appends to the stored fields, in this order and only where the document lacks
/// them: `identifier`; `date` (not for entries) from `created_at`, else the filing time;
/// `srvCreated`, `srvModified`; `isValid: false` once deleted. A document that already holds
/// `srvCreated`, `srvModified` or `isValid` (they would be replaced in place or removed) takes
/// the parse path, as does any text [`canonical`] does not vouch for.
pub fn v3_views(docs: Vec<RawDoc>, coll: Collection) -> Result<String> {
    let size: usize = docs.iter().map(|d| d.doc.len() + d.id.len() + 100).sum();
    let mut out = String::with_capacity(size + 32);
    let mut keys = Vec::new();
    out.push('[');
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_v3_doc(&mut out, d, coll, &mut keys)?;
    }
    out.push(']');
    Ok(out)
}

/// Appends the v3 view of `d`; true when spliced from its text, false when parsed.
fn push_v3_doc(
    out: &mut String,
    d: RawDoc,
    coll: Collection,
    keys: &mut Vec<(usize, usize)>,
) -> Result<bool> {
    const NAMES: [&str; 6] = [
        "identifier",
        "date",
        "created_at",
        "srvCreated",
        "srvModified",
        "isValid",
    ];
    let mut found = [None; 6];
    let vouched = canonical(&d.doc, &NAMES, &mut found, keys).is_some();
    let [identifier, date, created_at, srv_created, srv_modified, is_valid] = found;
    if !vouched || srv_created.is_some() || srv_modified.is_some() || is_valid.is_some() {
        let doc = StoredDoc::parse(d)?;
        let view = Value::Object(super::v3::view(coll, &doc));
        out.push_str(&serde_json::to_string(&view)?);
        return Ok(false);
    }
    // Everything but the closing `}`, then the view's own fields.
    out.push_str(&d.doc[..d.doc.len() - 1]);
    let mut comma = d.doc.len() > 2;
    let mut field = |out: &mut String, name: &str| {
        if comma {
            out.push(',');
        }
        comma = true;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
    };
    if identifier.is_none() {
        field(out, "identifier");
        push_json_str(out, &d.id)?;
    }
    if date.is_none() && coll != Collection::Entries {
        let ms = match created_at {
            Some(text) => {
                dates::parse_value(&serde_json::from_str::<Value>(text)?).map_or(d.mills, |i| i.ms)
            }
            None => d.mills,
        };
        field(out, "date");
        out.push_str(&ms.to_string());
    }
    field(out, "srvCreated");
    out.push_str(&d.srv_created.to_string());
    field(out, "srvModified");
    out.push_str(&d.srv_modified.to_string());
    if !d.is_valid {
        field(out, "isValid");
        out.push_str("false");
    }
    out.push('}');
    Ok(true)
}

fn push_json_str(out: &mut String, s: &str) -> Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s)?);
    }
    Ok(())
}

/// Whether `text` is a JSON object exactly as serde_json (compact, `preserve_order`,
/// `arbitrary_precision`) writes it after parsing it, with no `_id` key at the top: then
/// parse + serialise is the identity on it. `found[i]` gets the text of the top-level field
/// `names[i]`'s value (None when absent); the result None means "not vouched for".
///
/// Canonical means: no whitespace outside strings; strings escape only `"`, `\` and control
/// characters, these as `\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r` or lowercase `\u00xx`;
/// numbers as serde_json keeps their text (`e` lowercase with a sign: it writes `1e400`
/// as `1e+400`); no object repeats a key (parsing would keep one).
/// `keys` is scratch space, kept between calls to save allocations.
fn canonical<'a>(
    text: &'a str,
    names: &[&str],
    found: &mut [Option<&'a str>],
    keys: &mut Vec<(usize, usize)>,
) -> Option<()> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    keys.clear();
    let mut s = Scan { b, i: 0, keys };
    s.object(0, names, found)?;
    (s.i == b.len()).then_some(())
}

struct Scan<'a, 'k> {
    b: &'a [u8],
    i: usize,
    /// Where the keys of the objects being scanned are (raw text between the quotes),
    /// innermost object's last.
    keys: &'k mut Vec<(usize, usize)>,
}

impl<'a> Scan<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// An object at `self.i`; at depth 0 it notes the values of `names` and refuses `_id`.
    fn object(
        &mut self,
        depth: usize,
        names: &[&str],
        found: &mut [Option<&'a str>],
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let first_key = self.keys.len();
        loop {
            let key_start = self.i + 1;
            let key = self.string()?;
            let mine = &self.keys[first_key..];
            if mine.len() >= MAX_KEYS || mine.iter().any(|&(a, z)| &self.b[a..z] == key) {
                return None;
            }
            self.keys.push((key_start, key_start + key.len()));
            self.eat(b':')?;
            let start = self.i;
            self.value(depth)?;
            if depth == 0 {
                if key == b"_id" {
                    return None;
                }
                if let Some(n) = names.iter().position(|f| f.as_bytes() == key) {
                    // Canonical text is valid UTF-8 split at ASCII bytes.
                    let slot = found.get_mut(n)?;
                    *slot = Some(std::str::from_utf8(&self.b[start..self.i]).ok()?);
                }
            }
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.keys.truncate(first_key);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A value inside a container at `depth`.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, &[], &mut []),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string in serde_json's escaping; returns its raw text between the quotes. Canonical
    /// escaping is unique, so equal raw texts are equal strings and the other way round.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(&self.b[start..self.i - 1]),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            let lower = |h: u8| matches!(h, b'0'..=b'9' | b'a'..=b'f');
                            let ok = hex[0] == b'0'
                                && hex[1] == b'0'
                                && matches!(hex[2], b'0' | b'1')
                                && lower(hex[3])
                                // These five have a short escape, which serde_json uses.
                                && !matches!(&hex[2..], b"08" | b"09" | b"0a" | b"0c" | b"0d");
                            if !ok {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                // A raw control character is not JSON.
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?`: the text serde_json keeps and writes back.
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.one_or_more_digits()?;
        }
        if self.eat(b'e').is_some() {
            match self.peek()? {
                b'+' | b'-' => self.i += 1,
                _ => return None,
            }
            self.one_or_more_digits()?;
        }
        // `E`, a digit after a leading 0, or anything else glued on: not canonical.
        match self.peek()? {
            b',' | b'}' | b']' => Some(()),
            _ => None,
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn canonical<'a>(text: &'a str, field: Option<&str>) -> Option<Option<&'a str>> {
        let names: Vec<&str> = field.into_iter().collect();
        let mut found = [None];
        super::canonical(text, &names, &mut found, &mut Vec::new())?;
        Some(found[0])
    }

    fn raw(id: &str, doc: &str) -> RawDoc {
        RawDoc {
            seq: 1,
            id: id.into(),
            doc: doc.into(),
            mills: 0,
            srv_created: 0,
            srv_modified: 0,
            is_valid: true,
        }
    }

    /// The old path: parse, `_id` first, serialise.
    fn old(docs: &[(&str, &str)]) -> String {
        let v: Vec<Value> = docs
            .iter()
            .map(|(id, d)| StoredDoc::parse(raw(id, d)).unwrap().to_v1())
            .collect();
        serde_json::to_string(&v).unwrap()
    }

    /// Texts serde_json may have written, and texts it never writes (other tools, hand edits):
    /// every one must come out exactly as the old path gives it.
    const DOCS: &[&str] = &[
        r#"{}"#,
        r#"{"sgv":120,"date":1700000000000,"type":"sgv"}"#,
        r#"{"a":"ünïcødé ✓ 🎉","b":"\"q\" \\ \b\f\n\r\t \u0000\u001f\u000b \u007f/"}"#,
        r#"{"big":1e+400,"neg":-1e-400,"prec":3.14159265358979323846264338327950288,"int":123456789012345678901234567890,"z":-0,"f":1.50,"e":1e+05}"#,
        r#"{"nested":{"a":[1,{"b":[[],{}]},null,true,false],"c":{"d":{"e":"f"}}},"x":[]}"#,
        r#"{"z":1,"a":2,"m":3}"#,
        r#"{"_id":"5f1e2d3c4b5a697887766554","sgv":5}"#,
        r#"{"sgv":5,"_id":"other"}"#,
        r#"{"n":{"_id":"nested ids are kept"}}"#,
        r#"{"dup":1,"dup":2}"#,
        r#"{"n":{"dup":1,"x":0,"dup":2}}"#,
        r#"{ "spaced" : 1 }"#,
        r#"{"esc":"\u0041\/"}"#,
        r#"{"esc":"\u00e9"}"#,
        r#"{"upper":"\u001F"}"#,
        r#"{"short":"\u000a"}"#,
        r#"{"exp":1e400,"E":2E+5}"#,
        r#"{"exp":1E+400}"#,
        r#"{"float":1e300}"#,
        r#"{"sur":"\ud83c\udf89"}"#,
        r#"{"date":"2024-01-01T00:00:00Z","created_at":1700000000000.5}"#,
        r#"{"deleted":null}"#,
        r#"{"a":1}  "#,
    ];

    #[test]
    fn spliced_list_is_the_old_reply_byte_for_byte() {
        for (i, d) in DOCS.iter().enumerate() {
            let id = format!("{i:024x}");
            let got = list(vec![raw(&id, d)], None).unwrap().body;
            assert_eq!(got, old(&[(&id, d)]), "document {d}");
        }
        let all: Vec<(String, &str)> = DOCS
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("{i:024x}"), *d))
            .collect();
        let refs: Vec<(&str, &str)> = all.iter().map(|(i, d)| (i.as_str(), *d)).collect();
        let got = list(refs.iter().map(|(i, d)| raw(i, d)).collect(), None).unwrap();
        assert_eq!(got.body, old(&refs));
        assert_eq!(list(vec![], None).unwrap().body, "[]");
        // An id needing escapes (never made by nightlite, but not assumed).
        assert_eq!(
            list(vec![raw("a\"b", "{}")], None).unwrap().body,
            old(&[("a\"b", "{}")])
        );
    }

    /// What API v3's handler gave before [`v3_views`]: parse, view, serialise.
    fn old_v3(docs: &[RawDoc], coll: Collection) -> String {
        let views: Vec<Value> = docs
            .iter()
            .map(|d| {
                let doc = StoredDoc::parse(d.clone()).unwrap();
                Value::Object(crate::store::v3::view(coll, &doc))
            })
            .collect();
        serde_json::to_string(&views).unwrap()
    }

    #[test]
    fn v3_views_are_the_old_reply_byte_for_byte() {
        let v3_docs = [
            r#"{"identifier":"abc","date":1700000000000,"sgv":100}"#,
            r#"{"date":1700000000000,"sgv":100}"#,
            r#"{"created_at":"2024-01-01T00:00:00.000Z","eventType":"Note"}"#,
            r#"{"created_at":"2024-01-01T02:00:00+02:00","insulin":1.5}"#,
            r#"{"created_at":"not a date","carbs":20}"#,
            r#"{"created_at":1700000000000,"carbs":20}"#,
            r#"{"created_at":null}"#,
            r#"{"srvModified":1,"sgv":5}"#,
            r#"{"sgv":5,"srvCreated":"x"}"#,
            r#"{"isValid":true,"sgv":5}"#,
            r#"{"isValid":false,"sgv":5,"identifier":"i"}"#,
            r#"{"identifier":null,"date":null}"#,
            r#"{"identifier":"x","date":"2024-01-01","created_at":"2023-01-01T00:00:00Z"}"#,
            r#"{"nested":{"srvModified":1,"isValid":false,"date":3}}"#,
        ];
        let all: Vec<&str> = DOCS.iter().chain(v3_docs.iter()).copied().collect();
        for coll in [
            Collection::Entries,
            Collection::Treatments,
            Collection::DeviceStatus,
            Collection::Profile,
            Collection::Settings,
        ] {
            let mut docs = vec![];
            for (i, d) in all.iter().enumerate() {
                for valid in [true, false] {
                    let mut r = raw(&format!("{i:024x}"), d);
                    r.mills = 1_700_000_000_000 + i as i64;
                    r.srv_created = 1_600_000_000_000 - i as i64;
                    r.srv_modified = 1_800_000_000_000 + i as i64;
                    r.is_valid = valid;
                    let one = vec![r.clone()];
                    assert_eq!(
                        v3_views(one.clone(), coll).unwrap(),
                        old_v3(&one, coll),
                        "{coll:?} valid={valid} {d}"
                    );
                    docs.push(r);
                }
            }
            assert_eq!(v3_views(docs.clone(), coll).unwrap(), old_v3(&docs, coll));
        }
        assert_eq!(v3_views(vec![], Collection::Entries).unwrap(), "[]");
        // The point of it: what the server stores is spliced, not parsed.
        for (d, spliced) in [
            (v3_docs[0], true),
            (v3_docs[2], true),
            (r#"{}"#, true),
            (v3_docs[7], false),
            (v3_docs[9], false),
            (r#"{"a":1,"a":2}"#, false),
        ] {
            let mut out = String::new();
            let took = push_v3_doc(&mut out, raw("x", d), Collection::Treatments, &mut vec![]);
            assert_eq!(took.unwrap(), spliced, "{d}");
        }
    }

    #[test]
    fn texts_the_check_vouches_for_and_refuses() {
        for d in [
            r#"{}"#,
            r#"{"a":"ünïcødé","b":"\"\\\b\f\n\r\t\u0000\u001f"}"#,
            r#"{"big":1e+400,"z":-0,"f":1.50}"#,
            r#"{"n":{"_id":1},"m":[{"dup":1},{"dup":2}]}"#,
        ] {
            assert!(canonical(d, None).is_some(), "{d}");
        }
        for d in [
            r#"{"_id":"x"}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{ "a":1}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1E+400}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":tru}"#,
            r#"{"a":1}x"#,
            r#"[1]"#,
            r#"{"a":1"#,
            "",
        ] {
            assert!(canonical(d, None).is_none(), "{d}");
        }
        assert_eq!(
            canonical(r#"{"a":{"date":1},"date":[2,3],"b":0}"#, Some("date")),
            Some(Some("[2,3]"))
        );
        assert_eq!(canonical(r#"{"a":1}"#, Some("date")), Some(None));
    }

    #[test]
    fn what_serde_json_writes_is_vouched_for() {
        let texts = [
            r#"{"a":"\u0041\/ é \ud83c\udf89","n":1E400,"m":-0.0e-0,"k":[{"x":{}}]}"#,
            r#"{"control":"\u0001\u0008\u000B\u001f\u007f"}"#,
        ];
        for t in texts {
            let m: Map<String, Value> = serde_json::from_str(t).unwrap();
            let written = serde_json::to_string(&m).unwrap();
            assert!(canonical(&written, None).is_some(), "{written}");
            let again: Map<String, Value> = serde_json::from_str(&written).unwrap();
            assert_eq!(serde_json::to_string(&again).unwrap(), written);
        }
        let mut deep = String::new();
        for _ in 0..MAX_DEPTH + 5 {
            deep.push_str("{\"a\":");
        }
        deep.push('1');
        for _ in 0..MAX_DEPTH + 5 {
            deep.push('}');
        }
        assert!(canonical(&deep, None).is_none(), "too deep: parse path");
    }

    #[test]
    fn time_of_one_document_is_what_list_reads() {
        let time = TimeField {
            name: "date",
            ms: crate::dates::ms_from_number,
        };
        for d in DOCS
            .iter()
            .chain([r#"{"date":5,"date":7}"#, r#"{"date":"12"}"#].iter())
        {
            let by_list = list(vec![raw("a", d)], Some(time)).unwrap().newest;
            assert_eq!(time_of(d, time).unwrap(), by_list, "{d}");
        }
    }

    #[test]
    fn newest_time_is_the_old_one() {
        let docs = [
            r#"{"date":1700000000000,"sgv":1}"#,
            r#"{"date":1700000000999.9}"#,
            r#"{"date":"1700000005000"}"#,
            r#"{"date":1E+13}"#,
            r#"{"sgv":3}"#,
        ];
        let time = TimeField {
            name: "date",
            ms: crate::dates::ms_from_number,
        };
        let old_newest = docs
            .iter()
            .filter_map(|d| {
                let doc = StoredDoc::parse(raw("a", d)).unwrap();
                doc.doc.get("date").and_then(crate::dates::ms_from_number)
            })
            .max();
        let got = list(docs.iter().map(|d| raw("a", d)).collect(), Some(time)).unwrap();
        assert_eq!(got.newest, old_newest);
        assert_eq!(got.newest, Some(10_000_000_000_000));
    }

    /// Generated documents through serde_json, as the server stores them: all spliced, all
    /// identical to the old path.
    #[test]
    fn generated_documents_match() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let atoms = [
            "0",
            "-0",
            "1.50",
            "1e+400",
            "-2.5e-7",
            "18446744073709551616",
            "true",
            "false",
            "null",
            r#""""#,
            r#""ü\n\u0001\"""#,
            r#""🎉\\""#,
        ];
        for _ in 0..500 {
            let mut text = String::from("{");
            let n = next() % 8;
            for k in 0..n {
                if k > 0 {
                    text.push(',');
                }
                text.push_str(&format!("\"k{}\":", next() % 6));
                match next() % 4 {
                    0 => text.push_str(&format!(
                        "[{},{{\"x\":{}}}]",
                        atoms[(next() % 12) as usize],
                        atoms[(next() % 12) as usize]
                    )),
                    _ => text.push_str(atoms[(next() % 12) as usize]),
                }
            }
            text.push('}');
            // Through serde_json, as upsert writes it (duplicate keys collapse there).
            let m: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let stored = serde_json::to_string(&m).unwrap();
            assert!(canonical(&stored, None).is_some(), "{stored}");
            let id = "0123456789abcdef01234567";
            assert_eq!(
                list(vec![raw(id, &stored)], None).unwrap().body,
                old(&[(id, &stored)])
            );
            // And the generated text itself, stored raw.
            assert_eq!(
                list(vec![raw(id, &text)], None).unwrap().body,
                old(&[(id, &text)])
            );
        }
    }
}
