//! What keeps one client from holding the server's connections (docs/security.md#connections-and-timeouts):
//! a cap on open connections, a cap on live sockets that have not authorized, a deadline for a
//! request body, and a timeout for a client that stops reading while data waits for it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::rt::time::{sleep, Sleep};
use actix_web::web::Bytes;
use futures_util::Stream;

/// A counted resource with a cap; a [`Slot`] holds one unit until dropped.
#[derive(Clone)]
pub struct Counter {
    used: Arc<AtomicUsize>,
    max: usize,
}

pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Counter {
    pub fn new(max: usize) -> Counter {
        Counter {
            used: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot, or None when all `max` are taken.
    pub fn take(&self) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.used.clone()))
    }
}

/// The answer to a connection over the cap (plain HTTP; a TLS connection is just closed).
pub const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 55\r\nConnection: close\r\n\r\n{\"status\":503,\"message\":\"too many connections; retry\"}\n";

/// Writes [`REFUSED`] (for at most a second) and closes the connection.
pub async fn refuse(mut io: actix_rt::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = actix_web::rt::time::timeout(Duration::from_secs(1), io.write_all(REFUSED)).await;
}

/// What a connection holds while open: its [`Slot`], and a timer that fails writes that stay
/// blocked longer than `write_timeout` (the client stopped reading and its buffers are full),
/// so the connection is dropped instead of holding a descriptor and memory for good.
pub struct WriteWatch {
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

impl WriteWatch {
    pub fn new(slot: Slot, write_timeout: Duration) -> WriteWatch {
        WriteWatch {
            write_timeout,
            stalled: None,
            _slot: slot,
        }
    }

    /// Passes a write's (or flush's) outcome on; a Pending one starts or checks the timer.
    pub fn check<R>(
        &mut self,
        cx: &mut Context<'_>,
        res: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if res.is_ready() {
            self.stalled = None;
            return res;
        }
        let timeout = self.write_timeout;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing within the write timeout",
            )));
        }
        Poll::Pending
    }
}

/// A request body that fails once its deadline passes (the timer starts with the first read
/// that has to wait).
struct Deadline {
    inner: Payload,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        let timeout = this.timeout;
        let timer = this.timer.get_or_insert_with(|| Box::pin(sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the body did not arrive within {} s", timeout.as_secs()),
            )))));
        }
        Poll::Pending
    }
}

/// Middleware: every request body (not a WebSocket's stream) must arrive within
/// `body_timeout_secs` of its first wait, so slow uploads cannot hold connections.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let upgrade = req.headers().contains_key(actix_web::http::header::UPGRADE);
    let timeout = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .map(|s| Duration::from_secs(u64::from(s.config.connections.body_timeout_secs)));
    if let (false, Some(timeout)) = (upgrade, timeout) {
        let inner = actix_web::HttpMessage::take_payload(&mut req);
        let stream: actix_http::BoxedPayloadStream = Box::pin(Deadline {
            inner,
            timeout,
            timer: None,
        });
        req.set_payload(Payload::from(stream));
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let c = Counter::new(2);
        let a = c.take().map(|_s| ());
        assert!(a.is_some(), "dropped at once");
        let s1 = c.take();
        let s2 = c.take();
        assert!(s1.is_some() && s2.is_some());
        assert!(c.take().is_none(), "the cap holds");
        drop(s1);
        assert!(c.take().is_some(), "a dropped slot is free again");
    }

    #[test]
    fn the_refusal_is_a_whole_response() {
        let text = std::str::from_utf8(REFUSED).unwrap_or("");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
    }
}
