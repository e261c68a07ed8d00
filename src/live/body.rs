//! The response body of an upgraded WebSocket (plain `/ws` and Socket.IO): outgoing frames
//! handed to actix in slices.
//!
//! actix copies each body chunk into the connection's write buffer and keeps polling the body
//! while that buffer holds less than `h1_write_buffer_size` ([`WRITE_BUFFER`], set in
//! src/server.rs). The buffer keeps the capacity it grew to (up to 128 KB), so a frame given
//! whole (a 24-hour snapshot is hundreds of KB) would grow every follower's buffer to its size;
//! in 16 KB slices with a 16 KB limit a buffer that once fell behind keeps 32 KB. Smaller
//! slices were measured and not taken: 4 KB slices with a 4 KB limit (which, by actix's code,
//! never grow the buffer past its first 8 KB) gave 4 MB less RSS with 200 followers but a
//! fifth less ingest with them (docs/PERFORMANCE.md, "Load soak"); a 31 KB delta then goes out
//! in eight slices instead of two, the likely cost, not measured on its own.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// Largest slice of a frame given to actix at once.
pub const BODY_CHUNK: usize = 16 * 1024;
/// The HTTP/1 write buffer's polling limit (src/server.rs).
pub const WRITE_BUFFER: usize = 16 * 1024;

/// Frames from a session, sliced to [`BODY_CHUNK`].
pub struct FrameBody {
    frames: mpsc::Receiver<Bytes>,
    /// The rest of a frame larger than [`BODY_CHUNK`].
    rest: Bytes,
}

impl FrameBody {
    pub fn new(frames: mpsc::Receiver<Bytes>) -> FrameBody {
        FrameBody {
            frames,
            rest: Bytes::new(),
        }
    }
}

impl futures_util::Stream for FrameBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.rest.is_empty() {
            match self.frames.poll_recv(cx) {
                Poll::Ready(Some(frame)) => self.rest = frame,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.rest.len().min(BODY_CHUNK);
        // Slices of a shared frame are reference counts, not copies.
        Poll::Ready(Some(Ok(self.rest.split_to(n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn frames_come_out_whole_in_order_in_slices_of_at_most_body_chunk() {
        let (tx, rx) = mpsc::channel(4);
        let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        tx.send(Bytes::from(big.clone())).await.unwrap();
        tx.send(Bytes::from_static(b"small")).await.unwrap();
        drop(tx);
        let slices: Vec<Bytes> = FrameBody::new(rx).map(|s| s.unwrap()).collect().await;
        let lens: Vec<usize> = slices.iter().map(Bytes::len).collect();
        assert_eq!(
            lens,
            vec![BODY_CHUNK, BODY_CHUNK, 40_000 - 2 * BODY_CHUNK, 5]
        );
        let joined: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(&joined[..40_000], &big[..]);
        assert_eq!(&joined[40_000..], b"small");
    }
}
