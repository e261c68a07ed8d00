//! Reading export files one document at a time, whatever their size: mongoexport's JSON (one
//! document a line, or one JSON array) and mongodump's BSON (documents back to back), either
//! gzip-compressed (mongodump --gzip; recognised by its first bytes, not its name).
//!
//! Only the document being read is held in memory. A document that is not valid JSON or BSON
//! but whose end is known (a line, an array element, a BSON length) is handed on as refused
//! and reading goes on; a file whose structure is broken (a truncated document, an array that
//! never closes) stops with the position.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{Map, Value};

use super::extjson;

/// Larger than any MongoDB document (16 MB as BSON; Extended JSON takes more room).
const MAX_DOCUMENT: usize = 64 << 20;

/// The collection a file holds, from its name: `entries.json`, `treatments.bson`,
/// `devicestatus.bson.gz`, `dump/nightscout/profile.bson`.
pub fn collection_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for suffix in [".gz", ".bson", ".json", ".jsonl", ".ndjson"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    stem.to_string()
}

/// The files of a mongodump folder (`dump/<db>/`), or the path itself when it is a file.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = vec![];
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        // mongodump writes <collection>.metadata.json (indexes) beside each data file.
        let data = [".bson", ".bson.gz", ".json", ".json.gz"]
            .iter()
            .any(|s| name.ends_with(s));
        if p.is_file() && data && !name.contains(".metadata.json") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// One document as read: its position in the file (for messages) and either its plain JSON
/// (Extended JSON converted) or why it is refused.
pub struct Read1 {
    pub position: String,
    /// Its `_id`, when it has one that could be read.
    pub id: Option<String>,
    pub doc: Result<Map<String, Value>, String>,
    /// Its size in the file, to bound a batch's memory.
    pub bytes: usize,
}

/// Documents of one file, in order.
pub trait Documents {
    /// The next document; None at the end; Err when the file cannot be read on.
    fn next_doc(&mut self) -> Result<Option<Read1>, String>;
}

/// Bytes read from the file so far (compressed bytes for a gzip file), for the progress line.
#[derive(Clone, Default)]
pub struct Progress(Rc<Cell<u64>>);

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.0.get()
    }
}

struct Counted<R> {
    inner: R,
    read: Progress,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.0.set(self.read.0.get() + n as u64);
        Ok(n)
    }
}

/// Opens `path` as the documents it holds: BSON when its name says so (`.bson`, `.bson.gz`),
/// JSON otherwise. Returns the documents, the file's size and the progress counter.
pub fn open(path: &Path) -> std::io::Result<(Box<dyn Documents>, u64, Progress)> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let read = Progress::default();
    let mut counted = BufReader::with_capacity(
        1 << 16,
        Counted {
            inner: file,
            read: read.clone(),
        },
    );
    let gzip = {
        use std::io::BufRead;
        counted.fill_buf()?.starts_with(&[0x1f, 0x8b])
    };
    let input: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(counted))
    } else {
        Box::new(counted)
    };
    let name = path.to_string_lossy();
    let docs: Box<dyn Documents> = if name.ends_with(".bson") || name.ends_with(".bson.gz") {
        Box::new(BsonDocs {
            input: BufReader::with_capacity(1 << 16, input),
            offset: 0,
            index: 0,
        })
    } else {
        Box::new(JsonDocs::new(input))
    };
    Ok((docs, size, read))
}

/// mongodump's format: each document starts with its length (int32, little-endian).
struct BsonDocs<R> {
    input: R,
    offset: u64,
    index: u64,
}

impl<R: Read> Documents for BsonDocs<R> {
    fn next_doc(&mut self) -> Result<Option<Read1>, String> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.input.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(format!(
                        "byte {}: the file ends inside a document",
                        self.offset
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("byte {}: {e}", self.offset)),
            }
        }
        let n = i32::from_le_bytes(len);
        let size = usize::try_from(n).unwrap_or(0);
        if !(5..=MAX_DOCUMENT).contains(&size) {
            return Err(format!(
                "byte {}: a document length of {n} bytes: this is not a BSON file (mongodump's \
                 .bson), or it is damaged",
                self.offset
            ));
        }
        let mut buf = vec![0u8; size];
        buf[..4].copy_from_slice(&len);
        self.input.read_exact(&mut buf[4..]).map_err(|e| {
            format!(
                "byte {}: the file ends inside a document of {size} bytes ({e})",
                self.offset
            )
        })?;
        self.index += 1;
        let position = format!("document {} (byte {})", self.index, self.offset);
        self.offset += size as u64;
        let (id, doc) = match bson::Document::from_reader(&buf[..]) {
            Ok(d) => {
                let id = match d.get("_id") {
                    Some(bson::Bson::ObjectId(id)) => Some(id.to_hex()),
                    Some(bson::Bson::String(s)) => Some(s.clone()),
                    _ => None,
                };
                (id, extjson::from_bson(d))
            }
            Err(e) => (None, Err(format!("not a valid BSON document: {e}"))),
        };
        Ok(Some(Read1 {
            position,
            id,
            doc,
            bytes: size,
        }))
    }
}

/// A document's `_id` as read (`{"$oid"}` or a string), so a refusal names the document.
fn id_of(id: Option<&Value>) -> Option<String> {
    match id {
        Some(Value::Object(m)) => m.get("$oid").and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

#[derive(PartialEq)]
enum Shape {
    /// Not known before the first non-blank byte.
    Unknown,
    /// Values one after another (mongoexport's default: one a line).
    Lines,
    /// Inside `[ ... ]` (mongoexport --jsonArray); `first` until the first element.
    Array {
        first: bool,
    },
    Done,
}

/// A JSON file split into its top-level values (or its array's elements) by scanning for
/// where each ends, so only one is held; each is then parsed on its own.
struct JsonDocs {
    input: Box<dyn Read>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    line: u64,
    index: u64,
    shape: Shape,
}

impl JsonDocs {
    fn new(input: Box<dyn Read>) -> JsonDocs {
        JsonDocs {
            input,
            buf: vec![0; 1 << 16],
            pos: 0,
            len: 0,
            line: 1,
            index: 0,
            shape: Shape::Unknown,
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, String> {
        if self.pos == self.len {
            self.len = loop {
                match self.input.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("line {}: {e}", self.line)),
                }
            };
            self.pos = 0;
        }
        Ok(self.buf.get(self.pos).copied().filter(|_| self.len > 0))
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.buf.get(self.pos).copied();
        self.pos += 1;
        if b == Some(b'\n') {
            self.line += 1;
        }
        b
    }

    fn skip_blank(&mut self) -> Result<Option<u8>, String> {
        while let Some(b) = self.peek()? {
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
            self.bump();
        }
        Ok(None)
    }

    /// One value's bytes, from its first byte to its end (strings and nesting followed).
    fn value(&mut self) -> Result<Vec<u8>, String> {
        let start = self.line;
        let mut out = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        while let Some(b) = self.peek()? {
            match (in_string, b) {
                (true, _) if escaped => escaped = false,
                (true, b'\\') => escaped = true,
                (_, b'"') => in_string = !in_string,
                (true, _) => {}
                (false, b'{' | b'[') => depth += 1,
                (false, b'}' | b']') if depth > 0 => depth -= 1,
                (false, b'}' | b']' | b',') if depth == 0 => break,
                (false, b) if b.is_ascii_whitespace() && depth == 0 => break,
                (false, _) => {}
            }
            out.push(b);
            self.bump();
            if out.len() > MAX_DOCUMENT {
                return Err(format!(
                    "line {start}: a document of more than {} MB: not a MongoDB export",
                    MAX_DOCUMENT >> 20
                ));
            }
            if depth == 0 && !in_string && matches!(out.first(), Some(b'{' | b'[' | b'"')) {
                // A closed object, array or string ends here (a string ends at its quote).
                if out.len() > 1 || out.first() != Some(&b'"') {
                    break;
                }
            }
        }
        if in_string || depth > 0 {
            return Err(format!(
                "line {start}: the file ends inside a document (truncated?)"
            ));
        }
        Ok(out)
    }
}

impl Documents for JsonDocs {
    fn next_doc(&mut self) -> Result<Option<Read1>, String> {
        let Some(first) = self.skip_blank()? else {
            return match self.shape {
                Shape::Array { .. } => Err(format!(
                    "line {}: the file ends before the array's closing ]",
                    self.line
                )),
                _ => Ok(None),
            };
        };
        match self.shape {
            // A byte order mark (a file saved by a Windows editor) before the first value.
            Shape::Unknown if first == 0xEF => {
                for _ in 0..3 {
                    self.bump();
                }
                self.shape = Shape::Lines;
                return match self.skip_blank()? {
                    Some(b'[') => {
                        self.bump();
                        self.shape = Shape::Array { first: true };
                        self.next_doc()
                    }
                    _ => self.next_doc(),
                };
            }
            Shape::Unknown if first == b'[' => {
                self.bump();
                self.shape = Shape::Array { first: true };
                return self.next_doc();
            }
            Shape::Unknown => self.shape = Shape::Lines,
            Shape::Array { first: true } if first == b']' => {
                self.bump();
                self.shape = Shape::Done;
                return self.next_doc();
            }
            Shape::Array { first: true } => self.shape = Shape::Array { first: false },
            Shape::Array { first: false } => {
                match first {
                    b',' => {}
                    b']' => {
                        self.bump();
                        self.shape = Shape::Done;
                        return self.next_doc();
                    }
                    other => {
                        return Err(format!(
                            "line {}: expected , or ] between the array's documents, found {:?}",
                            self.line, other as char
                        ))
                    }
                }
                self.bump();
                if self.skip_blank()?.is_none() {
                    return self.next_doc();
                }
            }
            Shape::Done => {
                return Err(format!(
                    "line {}: more data after the array's closing ]",
                    self.line
                ))
            }
            Shape::Lines => {}
        }
        let line = self.line;
        let text = self.value()?;
        if text.is_empty() {
            let b = self.bump().unwrap_or(b' ');
            return Err(format!("line {line}: unexpected {:?}", b as char));
        }
        self.index += 1;
        let position = match self.shape {
            Shape::Lines => format!("line {line}"),
            _ => format!("document {} (line {line})", self.index),
        };
        let mut id = None;
        let doc = match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(m)) => {
                id = id_of(m.get("_id"));
                match extjson::plain(Value::Object(m)) {
                    Ok(Value::Object(m)) => Ok(m),
                    Ok(_) => Ok(Map::new()),
                    Err(e) => Err(e),
                }
            }
            Ok(other) => Err(format!(
                "not a JSON object: {}",
                crate::import::excerpt(&other.to_string())
            )),
            Err(e) => Err(format!("not valid JSON: {e}")),
        };
        Ok(Some(Read1 {
            position,
            id,
            doc,
            bytes: text.len(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(text: &str) -> Result<Vec<Result<String, String>>, String> {
        let mut docs = JsonDocs::new(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())));
        let mut out = vec![];
        while let Some(d) = docs.next_doc()? {
            out.push(
                d.doc
                    .map(|m| format!("{} {}", d.position, Value::Object(m)))
                    .map_err(|e| format!("{} {e}", d.position)),
            );
        }
        Ok(out)
    }

    #[test]
    fn lines_and_arrays_split_into_documents() {
        let lines = all("{\"a\":1}\n{\"b\":\"x}\\\"{\"}\n\n{\"c\":[1,{\"d\":2}]}\n").unwrap();
        assert_eq!(
            lines,
            vec![
                Ok(r#"line 1 {"a":1}"#.to_string()),
                Ok(r#"line 2 {"b":"x}\"{"}"#.to_string()),
                Ok(r#"line 4 {"c":[1,{"d":2}]}"#.to_string()),
            ]
        );
        let array = all("[\n  {\"a\":1},\n  {\"b\":2}\n]\n").unwrap();
        assert_eq!(
            array,
            vec![
                Ok(r#"document 1 (line 2) {"a":1}"#.to_string()),
                Ok(r#"document 2 (line 3) {"b":2}"#.to_string()),
            ]
        );
        assert_eq!(all("[]").unwrap(), vec![]);
        assert_eq!(all("").unwrap(), vec![]);
    }

    #[test]
    fn a_bad_document_is_refused_and_reading_goes_on() {
        let out = all("[{\"a\":1}, 42, \"x\", {\"b\":tru}, {\"c\":3}]").unwrap();
        assert_eq!(out.len(), 5);
        assert!(out[0].is_ok());
        assert_eq!(
            out[1],
            Err("document 2 (line 1) not a JSON object: 42".into())
        );
        assert_eq!(
            out[2],
            Err("document 3 (line 1) not a JSON object: \"x\"".into())
        );
        assert!(out[3].as_ref().unwrap_err().contains("not valid JSON"));
        assert!(out[4].is_ok());
    }

    #[test]
    fn broken_files_stop_with_the_line() {
        assert!(all("[{\"a\":1}").unwrap_err().contains("closing ]"));
        assert!(all("{\"a\":1}\n{\"b\":").unwrap_err().contains("line 2"));
        assert!(all("[{\"a\":1} {\"b\":2}]")
            .unwrap_err()
            .contains("expected , or ]"));
        assert!(all("[{\"a\":1}] {}")
            .unwrap_err()
            .contains("after the array"));
    }

    #[test]
    fn a_byte_order_mark_is_passed_over() {
        let out = all("\u{feff}[{\"a\":1}]").unwrap();
        assert_eq!(out, vec![Ok(r#"document 1 (line 1) {"a":1}"#.to_string())]);
        let out = all("\u{feff}{\"a\":1}\n").unwrap();
        assert_eq!(out, vec![Ok(r#"line 1 {"a":1}"#.to_string())]);
    }

    #[test]
    fn bson_documents_are_read_one_by_one_with_their_offsets() {
        use bson::{doc, oid::ObjectId};
        let id = ObjectId::parse_str("5f1c2a3b4c5d6e7f80910a1b").unwrap();
        let good = doc! {"_id": id, "sgv": 120_i32}.to_vec().unwrap();
        let nan = doc! {"_id": id, "x": f64::NAN}.to_vec().unwrap();
        let mut bytes = [good.clone(), nan.clone(), good.clone()].concat();
        bytes.extend_from_slice(&good[..10]);
        let mut docs = BsonDocs {
            input: std::io::Cursor::new(bytes),
            offset: 0,
            index: 0,
        };
        let first = docs.next_doc().unwrap().unwrap();
        assert_eq!(first.position, "document 1 (byte 0)");
        assert_eq!(
            Value::Object(first.doc.unwrap()).to_string(),
            r#"{"_id":"5f1c2a3b4c5d6e7f80910a1b","sgv":120}"#
        );
        let second = docs.next_doc().unwrap().unwrap();
        assert_eq!(second.position, format!("document 2 (byte {})", good.len()));
        assert_eq!(second.id.as_deref(), Some("5f1c2a3b4c5d6e7f80910a1b"));
        assert!(second
            .doc
            .unwrap_err()
            .contains("x: NaN is not a finite number"));
        assert!(docs.next_doc().unwrap().unwrap().doc.is_ok());
        let end = docs.next_doc().err().unwrap();
        assert!(end.contains("the file ends inside a document"), "{end}");

        let mut text = BsonDocs {
            input: std::io::Cursor::new(b"{\"sgv\": 120}\n".to_vec()),
            offset: 0,
            index: 0,
        };
        let e = text.next_doc().err().unwrap();
        assert!(e.contains("this is not a BSON file"), "{e}");
    }

    #[test]
    fn collection_names_come_from_file_names() {
        for (path, want) in [
            ("entries.json", "entries"),
            ("x/treatments.bson", "treatments"),
            ("dump/ns/devicestatus.bson.gz", "devicestatus"),
            ("profile.jsonl", "profile"),
            ("entries.metadata.json", "entries.metadata"),
        ] {
            assert_eq!(collection_name(Path::new(path)), want);
        }
    }
}
