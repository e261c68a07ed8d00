//! JSON Web Tokens as Nightscout issues them (jsonwebtoken, HS256): payload
//! `{accessToken, iat, exp}`, 8 hours. Hand-written over `hmac` because HS256 is a few lines and
//! a full JWT crate would bring a second crypto stack to every ARM build.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub(crate) const LIFETIME_S: i64 = 8 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub access_token: String,
    pub iat: i64,
    pub exp: i64,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (WebSocket accept keys).
pub(crate) fn b64_std(data: &[u8]) -> String {
    let mut out = encode_with(B64_STD, data);
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

pub fn b64url_encode(data: &[u8]) -> String {
    encode_with(B64, data)
}

fn encode_with(alphabet: &[u8; 64], data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// HMAC accepts keys of any length, so this is always `Some`; no panic path either way.
fn mac(key: &[u8]) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(key).ok()
}

pub fn sign(key: &[u8], access_token: &str, now_s: i64) -> Option<String> {
    let header = b64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = json!({ "accessToken": access_token, "iat": now_s, "exp": now_s + LIFETIME_S });
    let payload = b64url_encode(payload.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(key)?;
    m.update(signing_input.as_bytes());
    let sig = b64url_encode(&m.finalize().into_bytes());
    Some(format!("{signing_input}.{sig}"))
}

/// The claims of a token signed with `key`, HS256, not expired.
pub(crate) fn verify(key: &[u8], token: &str, now_s: i64) -> Option<Claims> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return None;
    }
    let mut m = mac(key)?;
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    // verify_slice compares in constant time.
    m.verify_slice(&b64url_decode(s)?).ok()?;
    let payload: Value = serde_json::from_slice(&b64url_decode(p)?).ok()?;
    let exp = payload.get("exp").and_then(Value::as_i64)?;
    if exp <= now_s {
        return None;
    }
    Some(Claims {
        access_token: payload.get("accessToken")?.as_str()?.to_string(),
        iat: payload.get("iat").and_then(Value::as_i64).unwrap_or(0),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trip() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(b64url_decode(&b64url_encode(data)).unwrap(), data);
        }
        assert_eq!(b64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        assert!(b64url_decode("a*b").is_none());
    }

    #[test]
    fn sign_and_verify() {
        let t = sign(b"key", "reader-0123456789abcdef", 1000).unwrap();
        let c = verify(b"key", &t, 1001).unwrap();
        assert_eq!(c.access_token, "reader-0123456789abcdef");
        assert_eq!((c.iat, c.exp), (1000, 1000 + LIFETIME_S));
    }

    #[test]
    fn expiry_forgery_and_other_keys_fail() {
        let t = sign(b"key", "a-0123456789abcdef", 1000).unwrap();
        assert!(verify(b"key", &t, 1000 + LIFETIME_S).is_none(), "expired");
        assert!(verify(b"other", &t, 1001).is_none(), "other key");
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(b"key", &forged, 1001).is_none(), "bad signature");
        // A token claiming alg none is refused.
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!("{}.{}.", b64url_encode(br#"{"alg":"none"}"#), parts[1]);
        assert!(verify(b"key", &none, 1001).is_none());
        assert!(verify(b"key", "1234567890", 1001).is_none());
    }

    #[test]
    fn known_vector() {
        // HS256 of the jwt.io example header/payload with key "your-256-bit-secret".
        let h = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let p = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
        let mut m = mac(b"your-256-bit-secret").unwrap();
        m.update(format!("{h}.{p}").as_bytes());
        assert_eq!(
            b64url_encode(&m.finalize().into_bytes()),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }
}
