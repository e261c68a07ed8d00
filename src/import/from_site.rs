//! `nightlite import --from URL`: a whole Nightscout-compatible site copied through its API
//! v1 (src/remote/windows.rs: newest first, a page below a time bound at a time), every
//! collection, all of its history, each document with its `_id`, through the same write path
//! as a file import ([`super::write`]), so importing twice stores nothing new.
//!
//! Resuming: after each page is committed, the bound to read on below is written to a
//! progress record, `import-progress.json` in the data directory (the site's URL without
//! credentials, and per collection the bound, the first page's newest time, whether it is
//! done and what was read). An import that stops (an error, Ctrl-C, `--stop-after`) and is
//! run again for the same site goes on from there; the record is removed when every
//! collection is done. Documents the site receives after the import began are newer than its
//! first pages: run it again to copy them (it stores nothing new for the rest).
//!
//! At the end each collection's count is checked against the site's
//! `/api/v1/count/<collection>/where` up to the newest time of the first page (entries,
//! treatments, device statuses: neither Nightscout nor nightlite counts profile or food).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{delete_here, id_text, write, Item, ProgressLine, Report};
use crate::config::bridges::{Password, RemoteSite};
use crate::connect::errors::SourceError;
use crate::documents::Caller;
use crate::error::{Error, Result};
use crate::remote::windows::by_time;
use crate::remote::Remote;
use crate::store::{Collection, Store};

/// What is read, in this order: every collection Nightscout serves through API v1 that
/// nightlite holds.
pub const COLLECTIONS: [Collection; 5] = [
    Collection::Entries,
    Collection::Treatments,
    Collection::DeviceStatus,
    Collection::Profile,
    Collection::Food,
];

/// Request timeout, ms.
pub(crate) const TIMEOUT_MS: i64 = 60_000;
/// Attempts at a page the site failed to answer (a timeout, a 5xx), with growing pauses.
const ATTEMPTS: u32 = 5;

pub const PROGRESS_FILE: &str = "import-progress.json";

/// How a collection compares with the site at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub collection: Collection,
    /// Read from the site by this import, over every run of it.
    pub read: u64,
    /// What the site counts, where it can.
    pub source: Option<u64>,
}

pub struct Outcome {
    pub report: Report,
    pub checks: Vec<Check>,
    /// `--stop-after` was reached: run again to go on.
    pub stopped: bool,
}

/// Where a collection is, as the progress record keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Place {
    /// Read on below this time (None: from the newest).
    below: Option<i64>,
    /// The newest time of the first page: what the site held then is what is counted.
    top: Option<i64>,
    done: bool,
    read: u64,
}

struct Progress {
    path: PathBuf,
    site: String,
    places: Map<String, Value>,
}

impl Progress {
    /// The record for `site`, or a new one when there is none or it is another site's.
    fn load(data_dir: &Path, site: &str) -> Progress {
        let path = data_dir.join(PROGRESS_FILE);
        let saved: Option<Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let places = match saved {
            Some(v) if v.get("site").and_then(Value::as_str) == Some(site) => v
                .get("collections")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            Some(_) => {
                eprintln!(
                    "{}: the unfinished import recorded there is of another site; starting \
                     anew",
                    path.display()
                );
                Map::new()
            }
            None => Map::new(),
        };
        Progress {
            path,
            site: site.to_string(),
            places,
        }
    }

    fn get(&self, coll: Collection) -> Place {
        let v = self.places.get(coll.table());
        let field = |k: &str| v.and_then(|v| v.get(k));
        Place {
            below: field("below").and_then(Value::as_i64),
            top: field("top").and_then(Value::as_i64),
            done: field("done").and_then(Value::as_bool).unwrap_or(false),
            read: field("read").and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// Written to a new file and renamed over the old one, so a stop mid-write leaves one.
    fn save(&mut self, coll: Collection, p: &Place) -> Result<()> {
        self.places.insert(
            coll.table().to_string(),
            json!({"below": p.below, "top": p.top, "done": p.done, "read": p.read}),
        );
        let body = json!({"site": self.site, "collections": self.places});
        let tmp = self.path.with_extension("json.new");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&body)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Imports the site into the database in `data_dir` (no server may be running on it). With
/// `stop_after`, stops once about that many documents were read (the progress record keeps
/// the place). Messages and progress go to stderr; none holds the token or the secret.
pub fn run(data_dir: &Path, site: &RemoteSite, stop_after: Option<u64>) -> Result<Outcome> {
    let (_lock, store) = super::open(data_dir)?;
    let clock: std::sync::Arc<dyn crate::connect::Clock> =
        std::sync::Arc::new(crate::connect::SystemClock);
    let http =
        crate::connect::http::Http::new(clock.clone(), TIMEOUT_MS).map_err(Error::Internal)?;
    let remote = Remote::new(site, http, clock);
    let mut progress = Progress::load(data_dir, &site.base);
    actix_web::rt::System::new().block_on(async {
        remote.login().await.map_err(failed)?;
        let mut out = Outcome {
            report: Report::default(),
            checks: vec![],
            stopped: false,
        };
        let mut budget = stop_after;
        for coll in COLLECTIONS {
            let mut place = progress.get(coll);
            if !place.done {
                let total = retry(|| remote.count(coll.table(), None)).await?;
                let stopped = copy(
                    &store,
                    &remote,
                    coll,
                    total,
                    &mut place,
                    &mut progress,
                    &mut budget,
                    &mut out.report,
                )
                .await?;
                if stopped {
                    out.stopped = true;
                    return Ok(out);
                }
            }
            // Up to the newest document read, so what the site received since does not count.
            let top = place.top;
            let source = retry(|| remote.count(coll.table(), top)).await?;
            out.checks.push(Check {
                collection: coll,
                read: place.read,
                source,
            });
        }
        progress.remove()?;
        Ok(out)
    })
}

/// Copies one collection from `place` on; true when the budget ran out first.
#[allow(clippy::too_many_arguments)]
async fn copy(
    store: &Store,
    remote: &Remote,
    coll: Collection,
    total: Option<u64>,
    place: &mut Place,
    progress: &mut Progress,
    budget: &mut Option<u64>,
    report: &mut Report,
) -> Result<bool> {
    let name = coll.table();
    let caller = Caller::server("import");
    let merge = super::merge_for(coll);
    let label = format!("{} {name}", remote.label());
    let mut line = ProgressLine::named(label.clone(), total.unwrap_or(0));
    report.counts(coll);
    while !place.done {
        if budget.is_some_and(|b| b == 0) {
            line.clear();
            return Ok(true);
        }
        let (docs, next) = if by_time(name) {
            let below = place.below;
            let page = retry(|| remote.history_page(name, below)).await?;
            if place.top.is_none() {
                place.top = page.newest;
            }
            (page.docs, page.next)
        } else {
            let count = crate::store::MAX_LIST;
            (retry(|| remote.whole(name, count)).await?, None)
        };
        let n = docs.len() as u64;
        let position = match place.below {
            Some(b) => format!("at or before {}", crate::dates::to_iso(b)),
            None => "newest page".to_string(),
        };
        let mut batch = Vec::with_capacity(docs.len());
        let mut gone = vec![];
        let counts = report.counts(coll);
        for d in docs {
            counts.read += 1;
            match d {
                Value::Object(doc) if doc.get("isValid") == Some(&Value::Bool(false)) => {
                    counts.deleted += 1;
                    gone.extend(id_text(&doc));
                }
                Value::Object(doc) => batch.push(Item {
                    doc,
                    position: position.clone(),
                }),
                _ => {
                    counts.refused += 1;
                    line.clear();
                    eprintln!("{label} {position}: refused: not a JSON object");
                }
            }
        }
        write(
            store,
            &caller,
            coll,
            merge,
            Path::new(&label),
            batch,
            report,
        )
        .await?;
        delete_here(store, &caller, coll, gone, report).await?;
        place.read += n;
        place.below = next;
        place.done = next.is_none();
        progress.save(coll, place)?;
        if let Some(b) = budget.as_mut() {
            *b = b.saturating_sub(n);
        }
        line.show(place.read, place.read);
    }
    line.clear();
    eprintln!("{label}: {} documents read", place.read);
    Ok(false)
}

/// `f` again after a transient failure, 5 tries in all, 2 s doubling apart
/// (crate::remote::retrying).
pub(crate) async fn retry<T, F, Fut>(f: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, SourceError>>,
{
    crate::remote::retrying(ATTEMPTS, 2000, f)
        .await
        .map_err(failed)
}

fn failed(e: SourceError) -> Error {
    Error::Internal(e.message)
}

/// The site from `--from URL` (a `?token=` on it is taken as the token) and the credentials.
pub fn site(url: &str, token: Option<String>, api_secret: Option<String>) -> Result<RemoteSite> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Error::bad_request(
            "--from must be an http(s):// URL of a Nightscout site",
        ));
    }
    let from_url = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let token = from_url.or(token).filter(|t| !t.is_empty());
    Ok(RemoteSite {
        base: base.trim_end_matches('/').to_string(),
        token: token.map(Password::new),
        api_secret: api_secret.filter(|s| !s.is_empty()).map(Password::new),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_on_the_url_is_taken_off_it() {
        let s = site("https://old.site/?token=reader-abc&x=1", None, None).unwrap();
        assert_eq!(s.base, "https://old.site");
        assert_eq!(s.token.as_ref().map(Password::reveal), Some("reader-abc"));
        let s = site("http://127.0.0.1:1337", None, Some("secret".into())).unwrap();
        assert!(s.token.is_none());
        assert_eq!(s.api_secret.as_ref().map(Password::reveal), Some("secret"));
        assert!(site("old.site", None, None).is_err());
    }
}
