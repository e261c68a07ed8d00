//! `nightlite sync --url URL --direction check`: per collection, how many documents each side
//! has that the other lacks or holds differently, and the direction a sync would take. It
//! reads the remote through API v1 (src/remote/windows.rs: all of history, a page at a time),
//! puts each page's (identity, content hash, modification time) rows into a TEMP table of a
//! read-only connection to the local database (src/store/compare.rs) and compares there, so
//! memory does not grow with either side. With an access token on a site with API v3, a
//! second read through v3 history adds the site's srvModified, which v1 may not show, to tell
//! which of two differing copies is newer. Nothing is written on either side.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::config::bridges::RemoteSite;
use crate::error::{Error, Result};
use crate::import::from_site::{retry, COLLECTIONS, TIMEOUT_MS};
use crate::remote::read::{page_size, srv_modified, Api};
use crate::remote::windows::by_time;
use crate::remote::Remote;
use crate::store::compare::{identity, row, Compare, Tally};
use crate::store::Collection;

/// Which way a sync would copy one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    None,
    Upload,
    Download,
    Both,
}

impl Direction {
    pub fn of(t: &Tally) -> Direction {
        let up = t.only_local + t.newer_local > 0;
        let down = t.only_remote + t.newer_remote > 0;
        match (up, down, t.undecided > 0) {
            (false, false, false) => Direction::None,
            (true, false, false) => Direction::Upload,
            (false, true, false) => Direction::Download,
            _ => Direction::Both,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::None => "none (in sync)",
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::Both => "both",
        }
    }
}

/// Compares the database in `data_dir` with `site`, collection by collection.
pub fn run(data_dir: &Path, site: &RemoteSite) -> Result<Vec<(Collection, Tally)>> {
    let compare = Compare::open(data_dir)?;
    let clock: Arc<dyn crate::connect::Clock> = Arc::new(crate::connect::SystemClock);
    let http =
        crate::connect::http::Http::new(clock.clone(), TIMEOUT_MS).map_err(Error::Internal)?;
    let remote = Remote::new(site, http, clock);
    actix_web::rt::System::new().block_on(async {
        remote
            .login()
            .await
            .map_err(|e| Error::Internal(e.message))?;
        let v3 = remote.api().await.map_err(|e| Error::Internal(e.message))? == Api::V3;
        let mut out = Vec::with_capacity(COLLECTIONS.len());
        for coll in COLLECTIONS {
            read(&compare, &remote, coll).await?;
            if v3 {
                modified_times(&compare, &remote, coll).await?;
            }
            out.push((coll, compare.tally(coll)?));
        }
        Ok(out)
    })
}

/// Every document of `coll` on the remote into the comparison, a page at a time.
async fn read(compare: &Compare, remote: &Remote, coll: Collection) -> Result<()> {
    let name = coll.table();
    let mut below = None;
    loop {
        let (docs, next) = if by_time(name) {
            let page = retry(|| remote.history_page(name, below)).await?;
            (page.docs, page.next)
        } else {
            let count = crate::store::MAX_LIST;
            (retry(|| remote.whole(name, count)).await?, None)
        };
        let rows: Vec<_> = docs
            .iter()
            .filter(|d| d.get("isValid") != Some(&Value::Bool(false)))
            .filter_map(row)
            .collect();
        compare.add(coll, &rows)?;
        match next {
            Some(n) => below = Some(n),
            None => return Ok(()),
        }
    }
}

/// The site's srvModified of every document, through API v3 history (paged by it), where
/// API v1 shows none (nightlite's v1 never does, Nightscout's only for v3 writes): what tells
/// which of two differing copies is newer.
async fn modified_times(compare: &Compare, remote: &Remote, coll: Collection) -> Result<()> {
    let name = coll.table();
    // From 2000-01-01: API v3 refuses an earlier history bound (Nightscout's and nightlite's
    // MIN_TIMESTAMP); srvModified is a server's write time, always later.
    let mut since = crate::store::v3::MIN_TIMESTAMP;
    loop {
        let page = retry(|| remote.changes(name, since, page_size(name))).await?;
        let times: Vec<(String, i64)> = page
            .docs
            .iter()
            .filter_map(|d| Some((identity(d)?.to_string(), srv_modified(d)?)))
            .collect();
        compare.set_modified(coll, &times)?;
        if page.complete || page.cursor <= since {
            return Ok(());
        }
        since = page.cursor;
    }
}
