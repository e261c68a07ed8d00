//! A WebSocket client written by hand, for permessage-deflate (tungstenite does not speak it) and
//! for frames a client library would not send.

use super::*;

pub(super) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(super) const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A raw connection: the upgrade's head as received, and frames after it.
pub(super) struct Raw {
    pub(super) tcp: TcpStream,
    pub(super) buf: Vec<u8>,
    pub(super) head: String,
}

/// One server frame.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) first: u8,
    pub(super) payload: Vec<u8>,
}

impl Frame {
    pub(super) fn opcode(&self) -> u8 {
        self.first & 0x0F
    }
    pub(super) fn rsv1(&self) -> bool {
        self.first & 0x40 != 0
    }
}

impl Raw {
    pub(super) async fn upgrade(port: u16, extensions: Option<&str>) -> Raw {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut req = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        );
        if let Some(ext) = extensions {
            req.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![];
        let split = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(SOON, tcp.read(&mut chunk))
                .await
                .expect("no upgrade response")
                .unwrap();
            assert!(
                n > 0,
                "closed before the head: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..split].to_vec()).unwrap();
        let rest = buf[split + 4..].to_vec();
        Raw {
            tcp,
            buf: rest,
            head,
        }
    }

    /// The value of a response header, by exact name.
    pub(super) fn header_exact(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    pub(super) async fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut f = vec![first];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&f).await.unwrap();
    }

    /// The next data or close frame (pings are skipped).
    pub(super) async fn frame(&mut self) -> Frame {
        loop {
            let f = self.any_frame().await;
            if f.opcode() != 0x9 && f.opcode() != 0xA {
                return f;
            }
        }
    }

    pub(super) async fn any_frame(&mut self) -> Frame {
        loop {
            if let Some(f) = self.parse() {
                return f;
            }
            let mut chunk = vec![0u8; 65536];
            let n = tokio::time::timeout(SOON, self.tcp.read(&mut chunk))
                .await
                .expect("no frame in time")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub(super) fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (
                usize::try_from(u64::from_be_bytes(b[2..10].try_into().unwrap())).unwrap(),
                10,
            ),
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        if b.len() < at + len {
            return None;
        }
        let f = Frame {
            first: b[0],
            payload: b[at..at + len].to_vec(),
        };
        assert!(f.first & 0x80 != 0, "unfragmented frames expected");
        self.buf.drain(..at + len);
        Some(f)
    }

    /// The JSON of a text frame, inflated when compressed.
    pub(super) fn text(f: &Frame) -> Value {
        assert_eq!(f.opcode(), 0x1, "a text frame: {f:?}");
        let bytes = if f.rsv1() {
            inflate(&f.payload)
        } else {
            f.payload.clone()
        };
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// permessage-deflate's inflate: raw deflate with the sync-flush tail put back.
pub(super) fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xFF, 0xFF]);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(input.len() * 8 + 1024);
    for _ in 0..64 {
        let consumed = usize::try_from(d.total_in()).unwrap();
        d.decompress_vec(&input[consumed..], &mut out, flate2::FlushDecompress::Sync)
            .expect("valid deflate data");
        if usize::try_from(d.total_in()).unwrap() == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
    panic!("inflate did not finish");
}

pub(super) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert_eq!(usize::try_from(c.total_in()).unwrap(), data.len());
    assert!(out.ends_with(&[0x00, 0x00, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}
