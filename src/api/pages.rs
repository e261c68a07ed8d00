//! The reply of a list too long to hold ([`crate::store::pages`]): written chunk by chunk as
//! the client reads it, the same bytes a whole list gives.

use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::Stream;

use super::format::{self, Format};
use super::v1::State;
use crate::error::Result;
use crate::store::pages::{self, Paged};
use crate::store::{v1json, Collection, StoredDoc};

/// A 200 (or 304) whose body streams `paged` in `fmt`; Last-Modified from its newest time
/// when `dated`.
pub fn reply(
    req: &HttpRequest,
    state: &State,
    coll: Collection,
    paged: Paged,
    fmt: Format,
    dated: bool,
) -> HttpResponse {
    let last = if dated { paged.newest } else { None };
    let body = body(state, coll, paged.seqs, fmt);
    format::conditional(req, last, |mut b| {
        b.content_type(format::content_type(fmt)).streaming(body)
    })
}

struct Pages {
    state: State,
    coll: Collection,
    seqs: Arc<[i64]>,
    pos: usize,
    fmt: Format,
    started: bool,
    wrote: bool,
    done: bool,
}

fn body(
    state: &State,
    coll: Collection,
    seqs: Vec<i64>,
    fmt: Format,
) -> impl Stream<Item = Result<Bytes>> {
    let pages = Pages {
        state: state.clone(),
        coll,
        seqs: Arc::from(seqs),
        pos: 0,
        fmt,
        started: false,
        wrote: false,
        done: false,
    };
    futures_util::stream::unfold(pages, |mut p| async move {
        if p.done {
            return None;
        }
        let mut out = String::new();
        match p.fill(&mut out).await {
            Ok(()) => Some((Ok(Bytes::from(out)), p)),
            Err(e) => {
                // The status is sent: ending the body early is all that is left to do.
                tracing::warn!(error = %e, "a streamed list ended early");
                p.done = true;
                Some((Err(e), p))
            }
        }
    })
}

impl Pages {
    /// The next chunk's text (the opening `[` first, the closing `]` last for JSON).
    async fn fill(&mut self, out: &mut String) -> Result<()> {
        let json = self.fmt == Format::Json;
        if !self.started {
            self.started = true;
            if json {
                out.push('[');
            }
        }
        if self.pos < self.seqs.len() {
            let (seqs, from, coll) = (self.seqs.clone(), self.pos, self.coll);
            let (docs, used) = self
                .state
                .store
                .read(move |conn| pages::chunk(conn, coll, &seqs[from..]))
                .await?;
            self.pos += used;
            for d in docs {
                if self.wrote {
                    out.push_str(if json { "," } else { format::ROW_END });
                }
                self.wrote = true;
                if json {
                    v1json::push_v1(out, d)?;
                } else {
                    let doc = StoredDoc::parse(d)?.to_v1();
                    out.push_str(&format::text_row(&doc, format::separator(self.fmt)));
                }
            }
        }
        if self.pos >= self.seqs.len() {
            self.done = true;
            if json {
                out.push(']');
            }
        }
        Ok(())
    }
}
