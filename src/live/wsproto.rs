//! WebSocket framing (RFC 6455) with permessage-deflate (RFC 7692), written for nightlite's
//! own needs: actix-web hands us the upgraded byte streams; this turns bytes into messages and
//! back. Compression is negotiated without context takeover in either direction, so every
//! message is compressed on its own and memory per client stays small.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use sha1::Digest;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Messages at least this long are compressed when the client offered permessage-deflate.
pub const COMPRESS_MIN: usize = 512;
/// Largest message accepted from a client (they send small commands).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
pub fn accept_key(key: &str) -> String {
    let digest = sha1::Sha1::digest(format!("{}{GUID}", key.trim()).as_bytes());
    crate::auth::jwt::b64_std(&digest)
}

/// The Sec-WebSocket-Extensions answer when the client offered permessage-deflate with
/// parameters this server can honour (RFC 7692): its window is always 15 bits, so an offer
/// limiting the server's window, or with a parameter it does not know, is declined.
pub fn negotiate_deflate(offer: Option<&str>) -> Option<&'static str> {
    let acceptable = |ext: &str| {
        let mut parts = ext.split(';').map(str::trim);
        if parts.next() != Some("permessage-deflate") {
            return false;
        }
        parts.all(|p| {
            let (name, value) = p.split_once('=').map_or((p, None), |(n, v)| {
                (n.trim(), Some(v.trim().trim_matches('"')))
            });
            match name {
                "server_no_context_takeover"
                | "client_no_context_takeover"
                | "client_max_window_bits" => true,
                "server_max_window_bits" => value == Some("15"),
                _ => false,
            }
        })
    };
    offer?
        .split(',')
        .any(acceptable)
        .then_some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("client frames must be masked")]
    Unmasked,
    #[error("message too large")]
    TooLarge,
    #[error("bad frame: {0}")]
    Bad(&'static str),
    #[error("text is not UTF-8")]
    NotUtf8,
}

/// One whole frame: fin, rsv1, opcode, unmasked payload, and how many bytes it took.
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
    used: usize,
}

/// Turns received bytes into messages.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// A fragmented message being assembled: opcode, compressed, payload so far.
    partial: Option<(u8, bool, Vec<u8>)>,
    deflate: bool,
}

impl Decoder {
    pub fn new(deflate: bool) -> Decoder {
        Decoder {
            deflate,
            ..Decoder::default()
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        if self.buf.len() + data.len() > MAX_MESSAGE + 16 {
            return Err(ProtoError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete message, if the buffer holds one.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtoError> {
        loop {
            let Some(Frame {
                fin,
                rsv1,
                opcode,
                payload,
                used,
            }) = self.frame()?
            else {
                return Ok(None);
            };
            self.buf.drain(..used);
            match opcode {
                0x8 => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Message::Close(code)));
                }
                0x9 => return Ok(Some(Message::Ping(payload))),
                0xA => return Ok(Some(Message::Pong(payload))),
                0x0 => {
                    let Some((op, compressed, mut data)) = self.partial.take() else {
                        return Err(ProtoError::Bad("continuation without a start"));
                    };
                    data.extend_from_slice(&payload);
                    if data.len() > MAX_MESSAGE {
                        return Err(ProtoError::TooLarge);
                    }
                    if fin {
                        return self.finish(op, compressed, data).map(Some);
                    }
                    self.partial = Some((op, compressed, data));
                }
                0x1 | 0x2 => {
                    if self.partial.is_some() {
                        return Err(ProtoError::Bad("new message inside a fragmented one"));
                    }
                    if rsv1 && !self.deflate {
                        return Err(ProtoError::Bad(
                            "compressed frame without permessage-deflate",
                        ));
                    }
                    if fin {
                        return self.finish(opcode, rsv1, payload).map(Some);
                    }
                    self.partial = Some((opcode, rsv1, payload));
                }
                _ => return Err(ProtoError::Bad("unknown opcode")),
            }
        }
    }

    fn finish(&self, opcode: u8, compressed: bool, data: Vec<u8>) -> Result<Message, ProtoError> {
        let data = if compressed { inflate(&data)? } else { data };
        Ok(if opcode == 0x1 {
            Message::Text(String::from_utf8(data).map_err(|_| ProtoError::NotUtf8)?)
        } else {
            Message::Binary(data)
        })
    }

    /// The first whole frame in the buffer.
    fn frame(&self) -> Result<Option<Frame>, ProtoError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        let rsv1 = b[0] & 0x40 != 0;
        if b[0] & 0x30 != 0 {
            return Err(ProtoError::Bad("reserved bits set"));
        }
        let opcode = b[0] & 0x0F;
        if b[1] & 0x80 == 0 {
            return Err(ProtoError::Unmasked);
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                let len =
                    usize::try_from(u64::from_be_bytes(n)).map_err(|_| ProtoError::TooLarge)?;
                (len, 10)
            }
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if len > MAX_MESSAGE {
            return Err(ProtoError::TooLarge);
        }
        if opcode >= 0x8 && (len > 125 || !fin) {
            return Err(ProtoError::Bad("bad control frame"));
        }
        if b.len() < at + 4 + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let payload = b[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        Ok(Some(Frame {
            fin,
            rsv1,
            opcode,
            payload,
            used: at + len,
        }))
    }
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, ProtoError> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xFF, 0xFF]);
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(data.len() * 4 + 64);
    loop {
        let consumed = usize::try_from(d.total_in())
            .unwrap_or(usize::MAX)
            .min(input.len());
        let produced = d.total_out();
        d.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|_| ProtoError::Bad("bad deflate data"))?;
        if out.len() > MAX_MESSAGE {
            return Err(ProtoError::TooLarge);
        }
        let all_in = usize::try_from(d.total_in()).unwrap_or(usize::MAX) >= input.len();
        if out.len() == out.capacity() {
            // Output space ran out: there may be more to come.
            out.reserve(out.capacity().max(1024));
        } else if all_in {
            return Ok(out);
        } else if d.total_out() == produced && usize::try_from(d.total_in()).ok() == Some(consumed)
        {
            return Err(ProtoError::Bad("bad deflate data"));
        }
    }
}

fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        out.reserve(data.len() / 2 + 64);
        let consumed = usize::try_from(c.total_in()).ok()?;
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
        if usize::try_from(c.total_in()).ok()? >= data.len() && out.len() < out.capacity() {
            break;
        }
    }
    // A sync flush ends with an empty stored block; the receiver appends it back.
    if out.ends_with(&[0x00, 0x00, 0xFF, 0xFF]) {
        out.truncate(out.len() - 4);
    }
    Some(out)
}

fn header(first: u8, len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(10);
    h.push(first);
    if len < 126 {
        h.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        h.push(126);
        h.extend_from_slice(&short.to_be_bytes());
    } else {
        h.push(127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h
}

/// A server-to-client text frame, compressed when negotiated and worth it.
pub fn text_frame(text: &str, deflate_ok: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    if deflate_ok && bytes.len() >= COMPRESS_MIN {
        if let Some(z) = deflate(bytes) {
            let mut f = header(0x80 | 0x40 | 0x1, z.len());
            f.extend_from_slice(&z);
            return f;
        }
    }
    let mut f = header(0x81, bytes.len());
    f.extend_from_slice(bytes);
    f
}

pub fn control_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(125)];
    let mut f = header(0x80 | opcode, payload.len());
    f.extend_from_slice(payload);
    f
}

pub fn close_frame(code: u16) -> Vec<u8> {
    control_frame(0x8, &code.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, as browsers send it.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![first];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn rfc_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn decodes_split_and_fragmented_messages() {
        let mut d = Decoder::new(false);
        let frame = client_frame(0x81, b"hello");
        d.push(&frame[..3]).unwrap();
        assert_eq!(d.next_message().unwrap(), None);
        d.push(&frame[3..]).unwrap();
        assert_eq!(
            d.next_message().unwrap(),
            Some(Message::Text("hello".into()))
        );
        d.push(&client_frame(0x01, b"ab")).unwrap();
        d.push(&client_frame(0x89, b"p")).unwrap();
        d.push(&client_frame(0x80, b"cd")).unwrap();
        assert_eq!(
            d.next_message().unwrap(),
            Some(Message::Ping(b"p".to_vec())),
            "control frames interleave"
        );
        assert_eq!(
            d.next_message().unwrap(),
            Some(Message::Text("abcd".into()))
        );
        let long = "x".repeat(300);
        d.push(&client_frame(0x81, long.as_bytes())).unwrap();
        assert_eq!(d.next_message().unwrap(), Some(Message::Text(long)));
    }

    #[test]
    fn refuses_unmasked_and_bad_frames() {
        let mut d = Decoder::new(false);
        d.push(&[0x81, 0x01, b'a']).unwrap();
        assert_eq!(d.next_message(), Err(ProtoError::Unmasked));
        let mut d = Decoder::new(false);
        d.push(&client_frame(0xC1, b"x")).unwrap();
        assert!(d.next_message().is_err(), "compressed without negotiation");
    }

    #[test]
    fn deflate_round_trip() {
        let text = r#"{"type":"dataUpdate","sgvs":[{"mgdl":120}]}"#.repeat(40);
        let frame = text_frame(&text, true);
        assert_eq!(frame[0], 0xC1, "RSV1 set");
        assert!(frame.len() < text.len() / 4, "compressed");
        // Decode it as a client would: make it masked and feed it to our decoder.
        let payload_at = if frame[1] == 126 { 4 } else { 2 };
        let masked = client_frame(0xC1, &frame[payload_at..]);
        let mut d = Decoder::new(true);
        d.push(&masked).unwrap();
        assert_eq!(d.next_message().unwrap(), Some(Message::Text(text)));
        assert_eq!(
            text_frame("short", true)[0],
            0x81,
            "short messages are not compressed"
        );
    }

    #[test]
    fn negotiation() {
        assert!(negotiate_deflate(Some("permessage-deflate; client_max_window_bits")).is_some());
        assert!(negotiate_deflate(Some("x-webkit-deflate-frame")).is_none());
        assert!(negotiate_deflate(Some("permessage-deflate; server_max_window_bits=10")).is_none());
        assert!(negotiate_deflate(Some("permessage-deflate; foo=1")).is_none());
        assert!(negotiate_deflate(Some("permessage-deflate; foo=1, permessage-deflate")).is_some());
        assert!(negotiate_deflate(None).is_none());
    }
}
