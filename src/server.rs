//! The HTTP server: actix-web's app on actix-server's listener, assembled here as HttpServer
//! assembles it internally, so that each connection's stream can be wrapped: in TLS when
//! TLS_CERT is set (`crate::tls`), then in a wrapper that writes response header names the way
//! Express does (`ETag`, `X-Sync-Inserted`), because some Nightscout clients look headers up
//! case-sensitively.

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::{error::DispatchError, HttpService, KeepAlive, Protocol};
use actix_rt::net::TcpStream;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::AppConfig;
use actix_web::middleware::{Compress, NormalizePath, TrailingSlash};
use actix_web::{web, App};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connect::{Clock, SystemClock};
use crate::connlimits::WriteWatch;
use crate::store::lock::DataDirLock;
use crate::{api, care, https, tls, AppState};

/// Header names whose canonical spelling is not plain Camel-Case, as actix would write them,
/// and as Express writes them. Same length, so bytes can be replaced in place.
const RESPELL: &[(&[u8], &[u8])] = &[
    (b"\r\nEtag:", b"\r\nETag:"),
    (b"\r\nSec-Websocket-Accept:", b"\r\nSec-WebSocket-Accept:"),
    (
        b"\r\nSec-Websocket-Extensions:",
        b"\r\nSec-WebSocket-Extensions:",
    ),
];

/// A connection whose response heads get Express' header spelling, and whose writes are
/// watched for a client that stopped reading (`connlimits::WriteWatch`, absent in unit tests).
struct ExpressHeaders<T> {
    inner: T,
    /// Inside a response head (between its status line and the blank line).
    in_head: bool,
    scratch: Vec<u8>,
    watch: Option<WriteWatch>,
}

impl<T> ExpressHeaders<T> {
    fn new(inner: T, watch: Option<WriteWatch>) -> Self {
        ExpressHeaders {
            inner,
            in_head: false,
            scratch: Vec::new(),
            watch,
        }
    }

    fn check<R>(&mut self, cx: &mut Context<'_>, res: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match &mut self.watch {
            Some(w) => w.check(cx, res),
            None => res,
        }
    }

    /// The bytes to write for `buf`: heads respelled, bodies untouched.
    #[cfg(test)]
    fn respell<'a>(&'a mut self, buf: &'a [u8]) -> &'a [u8] {
        if respell_into(&mut self.in_head, &mut self.scratch, buf) {
            &self.scratch
        } else {
            buf
        }
    }
}

/// Tracks whether `buf` continues a response head and, when the head holds a name to respell,
/// writes the respelled bytes into `scratch` and returns true.
fn respell_into(in_head: &mut bool, scratch: &mut Vec<u8>, buf: &[u8]) -> bool {
    if !*in_head && !buf.starts_with(b"HTTP/1.") {
        return false;
    }
    *in_head = true;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let head_len = head_end.unwrap_or(buf.len());
    if head_end.is_some() {
        *in_head = false;
    }
    let head = &buf[..head_len];
    if !RESPELL
        .iter()
        .any(|(from, _)| head.windows(from.len()).any(|w| w == *from))
    {
        return false;
    }
    scratch.clear();
    scratch.extend_from_slice(buf);
    for (from, to) in RESPELL {
        let mut i = 0;
        while i + from.len() <= head_len {
            if &scratch[i..i + from.len()] == *from {
                scratch[i..i + from.len()].copy_from_slice(to);
                i += from.len();
            } else {
                i += 1;
            }
        }
    }
    true
}

impl<T: AsyncRead + Unpin> AsyncRead for ExpressHeaders<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ExpressHeaders<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let was_in_head = this.in_head;
        let res = if respell_into(&mut this.in_head, &mut this.scratch, buf) {
            Pin::new(&mut this.inner).poll_write(cx, &this.scratch)
        } else {
            Pin::new(&mut this.inner).poll_write(cx, buf)
        };
        if res.is_pending() {
            // Nothing was written: look at this buffer afresh when it comes again.
            this.in_head = was_in_head;
        }
        this.check(cx, res)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, res)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, res)
    }
}

/// Serves on `listener` until `shutdown` completes, then stops gracefully.
pub async fn serve(
    config: crate::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_announced(config, listener, shutdown, || {}).await
}

/// Blocking threads per HTTP worker. Blocking work on a worker's runtime is gzip of large
/// bodies (actix-http); reads run on the store's own reader threads. Two cores do not compress
/// faster on more threads, and each extra thread is another malloc arena keeping freed reply
/// buffers. Per worker, because one worker may carry every connection. (Four, as when reads
/// used these threads with one per reader connection; not measured again since.)
const BLOCKING_THREADS_PER_WORKER: usize = 4;

/// As [`serve`], with the bridges (src/connect/) on `clock`: tests pass a
/// [`crate::connect::ManualClock`] so that no bridge waits in real time.
pub async fn serve_with_clock(
    config: crate::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Arc<dyn Clock>,
) -> io::Result<()> {
    serve_inner(config, listener, shutdown, || {}, clock).await
}

/// As [`serve`], calling `ready` once the data directory, database and certificates are open
/// and before the first request is accepted: the command line prints its banner there, so a
/// locked data directory or an unreadable certificate is the only thing a user sees.
pub async fn serve_announced(
    config: crate::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> io::Result<()> {
    serve_inner(config, listener, shutdown, ready, Arc::new(SystemClock)).await
}

async fn serve_inner(
    config: crate::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
    clock: Arc<dyn Clock>,
) -> io::Result<()> {
    // Held until this function returns: `nightlite restore` and a second server look for it.
    let lock = DataDirLock::try_acquire(&config.data_dir)?.ok_or_else(|| {
        io::Error::other(format!(
            "another nightlite server is using the data directory {}",
            config.data_dir.display()
        ))
    })?;
    let certs = match &config.tls {
        Some(files) => {
            Some(tls::Certificates::load(&files.cert, &files.key).map_err(io::Error::other)?)
        }
        None => None,
    };
    let acceptor = match &certs {
        Some(c) => Some(c.acceptor().map_err(io::Error::other)?),
        None => None,
    };
    let state = web::Data::new(
        AppState::open(config)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?,
    );
    actix_web::rt::spawn(
        state
            .live
            .clone()
            .run(state.store.clone(), state.config.clone()),
    );
    let stopping_live = state.live.clone();
    let mut tasks = care::spawn(state.clone());
    let auth_state = state.clone();
    tasks.push(actix_web::rt::spawn(async move {
        auth_state.auth.reload_periodically().await
    }));
    if let Some(c) = certs {
        tasks.push(actix_web::rt::spawn(tls::watch(c)));
    }
    // One task per bridge; each stops by itself after a fatal error, the rest at shutdown.
    tasks.extend(crate::connect::spawn(
        &state.config.bridges,
        &state.store,
        clock.clone(),
        &state.bridges,
    ));
    // The sync with SYNC_URL (docs/sync.md), on the same clock.
    if let Some(sync) = &state.sync {
        tasks.extend(sync.spawn(clock));
    }
    if crate::heap_trim::AVAILABLE {
        tasks.push(actix_web::rt::spawn(crate::heap_trim::run()));
    }
    listener.set_nonblocking(true)?;
    let limits = state.config.connections;
    let connections = crate::connlimits::Counter::new(limits.max_connections);
    let write_timeout = Duration::from_secs(u64::from(limits.write_timeout_secs));
    ready();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = actix_server::Server::build()
        .workers(workers)
        .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
        .shutdown_timeout(5)
        .listen("nightlite-http", listener, move || {
            let state = state.clone();
            let app = App::new()
                .app_data(state.clone())
                // Read somewhat past the limit, so a too-large body is answered 413 after it was
                // received instead of cutting the client off mid-upload; v1::read_json applies
                // the real limit.
                .app_data(web::PayloadConfig::new(
                    state.config.max_body_bytes * 2 + 4 * 1024 * 1024,
                ))
                .wrap(actix_web::middleware::from_fn(api::guard::guard))
                .wrap(actix_web::middleware::from_fn(api::cors::cors))
                .wrap(actix_web::middleware::from_fn(
                    crate::connlimits::body_deadline,
                ))
                .wrap(Compress::default())
                .wrap(actix_web::middleware::from_fn(api::v3::extension_to_accept))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(actix_web::middleware::from_fn(https::enforce))
                .wrap(actix_web::middleware::from_fn(api::http_conventions))
                .configure(api::configure);
            let http = HttpService::build()
                .keep_alive(KeepAlive::Timeout(Duration::from_secs(5)))
                .client_request_timeout(Duration::from_secs(5))
                // How full a connection's write buffer may get before actix stops taking body
                // chunks: paired with the WebSocket bodies' slices, so a follower's buffer keeps
                // at most 32 KB (actix's 32 KB let each keep 64 KB; live::body).
                .h1_write_buffer_size(crate::live::body::WRITE_BUFFER)
                .finish(map_config(
                    app.into_factory()
                        .map_err(|err: actix_web::Error| err.error_response()),
                    |_| AppConfig::default(),
                ));
            let acceptor = acceptor.clone();
            let connections = connections.clone();
            fn_service(move |io: TcpStream| {
                let acceptor = acceptor.clone();
                let slot = connections.take();
                async move {
                    let Some(slot) = slot else {
                        // Over the cap: a short answer and close, before any TLS work.
                        if acceptor.is_none() {
                            crate::connlimits::refuse(io).await;
                        }
                        tracing::debug!("connection refused: NIGHTLITE_MAX_CONNECTIONS reached");
                        return Err(DispatchError::Io(io::Error::other("too many connections")));
                    };
                    let _ = io.set_nodelay(true);
                    let peer = io.peer_addr().ok();
                    let conn = match acceptor {
                        Some(a) => tls::accept(&a, io).await.map_err(|e| {
                            // Scanners and plain-HTTP clients do this all day: not an error.
                            tracing::debug!(error = %e, ?peer, "TLS handshake failed");
                            DispatchError::Io(e)
                        })?,
                        None => tls::Conn::Plain(io),
                    };
                    let watch = WriteWatch::new(slot, write_timeout);
                    Ok::<_, DispatchError>((
                        ExpressHeaders::new(conn, Some(watch)),
                        Protocol::Http1,
                        peer,
                    ))
                }
            })
            .and_then(http)
        })?
        .run();
    let handle = server.handle();
    let live = stopping_live;
    actix_web::rt::spawn(async move {
        shutdown.await;
        // Sockets first: their open responses would otherwise hold the graceful stop.
        live.stop();
        handle.stop(true).await;
    });
    let result = server.await;
    for t in tasks {
        t.abort();
    }
    drop(lock);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_respelled_only_in_heads() {
        let mut w = ExpressHeaders::new((), None);
        let head = b"HTTP/1.1 200 OK\r\nEtag: W/\"1\"\r\n\r\nbody\r\nEtag: x";
        let out = w.respell(head).to_vec();
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nETag: W/\"1\"\r\n\r\nbody\r\nEtag: x".to_vec()
        );
        assert!(!w.in_head);
        let body = b"\r\nEtag: in a body";
        assert_eq!(w.respell(body), body);
    }

    #[test]
    fn a_head_split_over_writes_is_followed() {
        let mut w = ExpressHeaders::new((), None);
        assert_eq!(
            w.respell(b"HTTP/1.1 200 OK\r\nX-A: 1"),
            b"HTTP/1.1 200 OK\r\nX-A: 1"
        );
        assert!(w.in_head);
        assert_eq!(w.respell(b"\r\nEtag: 1\r\n\r\n"), b"\r\nETag: 1\r\n\r\n");
        assert!(!w.in_head);
    }
}
