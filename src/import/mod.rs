//! `nightlite import FILE…`: an old Nightscout's MongoDB data, from mongoexport (JSON lines or
//! arrays, Extended JSON) or mongodump (BSON, gzip'ed or not), stored through the one write
//! path (documents::upsert, API v1's rules), so identity and dedup apply as for an upload:
//! the original `_id`s are kept, and importing a file again stores nothing new.
//!
//! Files are read one document at a time ([`files`]) and written in batches of
//! [`BATCH`] documents, each one transaction. A document nightlite refuses (not an object, a
//! value it cannot store, a date it cannot read) is reported with its position and skipped;
//! the rest is imported and the command ends non-zero. A file that cannot be read on (broken
//! structure, I/O error) stops the import: what was committed before stays, and running the
//! import again is safe. docs/import.md is the user's side.

mod extjson;
mod files;
pub mod from_site;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::documents::{self, Action, Caller, Collect, Outcome, Source};
use crate::error::{Error, Result};
use crate::store::lock::DataDirLock;
use crate::store::prepare::{self, NewDoc};
use crate::store::upsert::{Merge, Written};
use crate::store::{Collection, Store};

/// Documents per transaction.
const BATCH: usize = 1000;
/// Bytes (as read from the file) per transaction at most, whatever the documents' size.
const BATCH_BYTES: usize = 16 << 20;

/// What an import did to one collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Documents read from the files.
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Refused, each reported with its position and reason.
    pub refused: u64,
    /// Deleted in the source (`isValid: false`, API v3's soft delete): not imported.
    pub deleted: u64,
    /// Of those, held here live (an earlier import stored them before the source deleted
    /// them) and so deleted here too.
    pub deleted_here: u64,
}

/// Counts per collection, in the order first met.
#[derive(Debug, Default)]
pub struct Report {
    pub collections: Vec<(Collection, Counts)>,
}

impl Report {
    fn counts(&mut self, coll: Collection) -> &mut Counts {
        let at = match self.collections.iter().position(|(c, _)| *c == coll) {
            Some(i) => i,
            None => {
                self.collections.push((coll, Counts::default()));
                self.collections.len() - 1
            }
        };
        &mut self.collections[at].1
    }

    pub fn refused(&self) -> u64 {
        self.collections.iter().map(|(_, c)| c.refused).sum()
    }
}

/// Imports `paths` (files, or mongodump folders) into the database in `data_dir`, which no
/// server may be running on. `collection` names the collection of every file; without it each
/// file's name says it. Messages (refusals, skipped files, progress) go to stderr.
pub fn run(data_dir: &Path, paths: &[PathBuf], collection: Option<&str>) -> Result<Report> {
    let forced = match collection {
        Some(name) => Some(Collection::from_name(name).ok_or_else(|| {
            Error::bad_request(format!(
                "--collection {name}: not a collection nightlite holds ({})",
                names()
            ))
        })?),
        None => None,
    };
    let mut files = vec![];
    for p in paths {
        let found =
            files::expand(p).map_err(|e| Error::Internal(format!("{}: {e}", p.display())))?;
        if found.is_empty() {
            eprintln!("{}: no .bson or .json files in this folder", p.display());
        }
        files.extend(found);
    }
    let (_lock, store) = open(data_dir)?;
    let mut report = Report::default();
    actix_web::rt::System::new().block_on(async {
        for file in &files {
            let coll = match forced {
                Some(c) => c,
                None => {
                    let name = files::collection_name(file);
                    match Collection::from_name(&name) {
                        Some(c) => c,
                        None => {
                            eprintln!("{}: skipped: {}", file.display(), why_skipped(&name));
                            continue;
                        }
                    }
                }
            };
            import_file(&store, file, coll, &mut report).await?;
        }
        Ok::<_, Error>(())
    })?;
    Ok(report)
}

/// The database in `data_dir`, locked against a server starting on it while importing.
pub(crate) fn open(data_dir: &Path) -> Result<(DataDirLock, Store)> {
    let lock = DataDirLock::try_acquire(data_dir)?.ok_or_else(|| {
        Error::Internal(format!(
            "a nightlite server is running on {}; stop it first",
            data_dir.display()
        ))
    })?;
    Ok((lock, Store::open(data_dir)?))
}

fn names() -> String {
    Collection::ALL.map(Collection::table).join(", ")
}

fn why_skipped(name: &str) -> String {
    if name.ends_with(".metadata") {
        return "mongodump's index description, not documents".into();
    }
    if name.starts_with("auth_") {
        return format!(
            "{name} holds Nightscout's tokens and roles, which are not imported: create \
             followers' tokens with `nightlite token create`"
        );
    }
    format!(
        "{name} is not a collection nightlite holds ({}); name one with --collection if the \
         file holds one of those",
        names()
    )
}

/// A short piece of a long value, for messages.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// One document waiting in a batch, with where it came from.
struct Item {
    doc: Map<String, Value>,
    position: String,
}

/// A batch for [`documents::upsert`]: plain JSON documents (converted from Extended JSON or
/// BSON as they were read) prepared by API v1's rules (store::prepare) one at a time, once to
/// check them before the writer is taken and again as they are written, so only one
/// prepared document is held at a time; as an upload's items are (api/v1.rs `Items`).
struct Batch {
    items: Arc<Vec<Item>>,
    range: std::ops::Range<usize>,
}

impl Source for Batch {
    fn prepare_each(
        &self,
        coll: Collection,
        now: i64,
        each: &mut dyn FnMut(NewDoc) -> Result<()>,
    ) -> Result<()> {
        for item in self.items.get(self.range.clone()).unwrap_or_default() {
            let doc = Value::Object(item.doc.clone());
            for prepared in prepare::prepare(coll, doc, coll.table(), now)? {
                each(prepared)?;
            }
        }
        Ok(())
    }
}

/// The outcomes of a batch, counted as it is written.
#[derive(Default)]
struct Tally {
    inserted: u64,
    updated: u64,
    unchanged: u64,
}

impl Collect for Tally {
    fn push(&mut self, written: Written) -> Result<()> {
        match written.outcome {
            Outcome::Inserted => self.inserted += 1,
            Outcome::Updated | Outcome::Deduplicated { .. } => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
        Ok(())
    }
}

/// A document's fault rather than the store's: skip it and go on.
fn refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::BadRequest(_) | Error::Unprocessable(_) | Error::PayloadTooLarge(_)
    )
}

/// Where a document came from, for messages: `entries.json line 3 (_id 5f…)`.
fn place(file: &Path, position: &str, id: Option<&str>) -> String {
    let id = id
        .map(|id| format!(" (_id {})", excerpt(id)))
        .unwrap_or_default();
    format!("{} {position}{id}", file.display())
}

/// A plain document's `_id` (or identifier) as text.
fn id_text(doc: &Map<String, Value>) -> Option<String> {
    doc.get("_id")
        .or_else(|| doc.get("identifier"))
        .map(crate::jsnum::js_text)
}

async fn import_file(
    store: &Store,
    file: &Path,
    coll: Collection,
    report: &mut Report,
) -> Result<()> {
    let (mut docs, size, read) =
        files::open(file).map_err(|e| Error::Internal(format!("{}: {e}", file.display())))?;
    let caller = Caller::server("import");
    let merge = merge_for(coll);
    let mut progress = ProgressLine::new(file, size);
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    let mut gone: Vec<String> = vec![];
    let mut bytes = 0;
    loop {
        // A broken file: what was read before the broken part is stored (as a rerun would).
        let (one, broken) = match docs.next_doc() {
            Ok(one) => (one, None),
            Err(e) => (None, Some(e)),
        };
        let end = one.is_none();
        if let Some(one) = one {
            let counts = report.counts(coll);
            counts.read += 1;
            match one.doc {
                Err(why) => {
                    counts.refused += 1;
                    progress.clear();
                    let at = place(file, &one.position, one.id.as_deref());
                    eprintln!("{at}: refused: {why}");
                }
                Ok(doc) if doc.get("isValid") == Some(&Value::Bool(false)) => {
                    counts.deleted += 1;
                    gone.extend(id_text(&doc));
                }
                Ok(doc) => {
                    bytes += one.bytes;
                    batch.push(Item {
                        doc,
                        position: one.position,
                    });
                }
            }
        }
        if end || batch.len() >= BATCH || bytes >= BATCH_BYTES {
            let full = std::mem::take(&mut batch);
            write(store, &caller, coll, merge, file, full, report).await?;
            delete_here(store, &caller, coll, std::mem::take(&mut gone), report).await?;
            bytes = 0;
            progress.show(report.counts(coll).read, read.bytes());
        }
        if let Some(e) = broken {
            progress.clear();
            return Err(Error::bad_request(format!(
                "{}: {e}; import stopped",
                file.display()
            )));
        }
        if end {
            break;
        }
    }
    progress.clear();
    let c = report.counts(coll);
    eprintln!(
        "{}: {} documents read into {}",
        file.display(),
        c.read,
        coll.table()
    );
    Ok(())
}

/// Documents the source deleted (`isValid: false`, by their `_id`s or identifiers) are not
/// imported; one this database holds live (an earlier import stored it before the source
/// deleted it) is deleted here too, so an import never keeps alive what its source deleted.
async fn delete_here(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    ids: Vec<String>,
    report: &mut Report,
) -> Result<()> {
    for id in ids {
        match documents::delete_id(store, caller, coll, &id).await {
            Ok(n) => report.counts(coll).deleted_here += n as u64,
            // An id nightlite could not hold (a device status's that is no ObjectId).
            Err(e) if refusal(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// As an upload through API v1 would (api/entries.rs, api/profile.rs, resource.rs): a
/// profile export is a history, and two of its documents sharing `created_at` stay two.
fn merge_for(coll: Collection) -> Merge {
    match coll {
        Collection::Entries => Merge::Shallow,
        Collection::Profile => Merge::History,
        _ => Merge::Replace,
    }
}

/// Writes a batch in one transaction; when a document in it is refused, writes them one by
/// one instead, so the refused one is named and skipped and the others are stored.
async fn write(
    store: &Store,
    caller: &Caller,
    coll: Collection,
    merge: Merge,
    file: &Path,
    batch: Vec<Item>,
    report: &mut Report,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let items = Arc::new(batch);
    let upsert = |range| {
        let part = Batch {
            items: items.clone(),
            range,
        };
        documents::upsert(
            store,
            caller,
            coll,
            part,
            merge,
            Action::Create,
            Tally::default(),
        )
    };
    match upsert(0..items.len()).await {
        Ok(t) => {
            add(report.counts(coll), &t);
            return Ok(());
        }
        Err(e) if refusal(&e) => {}
        Err(e) => return Err(e),
    }
    for (i, item) in items.iter().enumerate() {
        match upsert(i..i + 1).await {
            Ok(t) => add(report.counts(coll), &t),
            Err(e) if refusal(&e) => {
                report.counts(coll).refused += 1;
                eprintln!(
                    "{}: refused: {e}",
                    place(file, &item.position, id_text(&item.doc).as_deref())
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn add(c: &mut Counts, t: &Tally) {
    c.inserted += t.inserted;
    c.updated += t.updated;
    c.unchanged += t.unchanged;
}

/// `entries.json: 120000 documents, 45%`, rewritten in place on a terminal at most 4 times a
/// second; elsewhere (a log) a line every 10 seconds. Hand-written: a bar crate would add more
/// code than this takes.
struct ProgressLine {
    name: String,
    size: u64,
    terminal: bool,
    last: Instant,
    shown: bool,
}

impl ProgressLine {
    fn new(file: &Path, size: u64) -> ProgressLine {
        ProgressLine::named(file.display().to_string(), size)
    }

    /// `name: 1200 documents, 45%` of `size` (a byte count or a document count).
    fn named(name: String, size: u64) -> ProgressLine {
        ProgressLine {
            name,
            size,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            last: Instant::now(),
            shown: false,
        }
    }

    fn show(&mut self, docs: u64, bytes: u64) {
        let every = if self.terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        // Without a size (a site that does not count a collection), no percentage.
        let line = match bytes.saturating_mul(100).checked_div(self.size) {
            Some(pct) => format!("{}: {docs} documents, {}%", self.name, pct.min(100)),
            None => format!("{}: {docs} documents", self.name),
        };
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
            self.shown = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Clears the line before another message, so it does not end up in the middle of one.
    fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }
}
