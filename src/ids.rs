//! Identities: the `_id` clients see (MongoDB ObjectId shape) and the API v3 `identifier`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// API v3's namespace: the ASCII bytes of "NightscoutRocks!".
const NS_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes(*b"NightscoutRocks!");

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom fails only without an OS entropy source; fall back to time-derived bytes then,
    // since an _id needs uniqueness, not secrecy.
    if getrandom::getrandom(&mut buf).is_err() {
        let t = crate::dates::now_ms().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = t[i % t.len()] ^ (i as u8);
        }
    }
    buf
}

/// A new 24-hex-character id: 4 bytes of seconds, 5 random bytes per process, 3 bytes of counter,
/// like a MongoDB ObjectId, so clients that parse `_id` (or read its timestamp) keep working.
pub fn object_id() -> String {
    static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    let process = PROCESS.get_or_init(random_bytes::<5>);
    let counter = COUNTER.get_or_init(|| {
        let r = random_bytes::<4>();
        AtomicU32::new(u32::from_le_bytes(r))
    });
    let secs = u32::try_from(crate::dates::now_ms() / 1000).unwrap_or(u32::MAX);
    let count = counter.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..9].copy_from_slice(process);
    bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    hex(&bytes)
}

pub(crate) fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Nightscout API v3's identifier: UUID v5 of `${device}_${date}` plus `_${eventType}` when
/// present. `device` is JavaScript's string of the value, so a missing device is "undefined".
pub fn v3_identifier(device: Option<&str>, date_ms: i64, event_type: Option<&str>) -> String {
    let mut key = format!("{}_{}", device.unwrap_or("undefined"), date_ms);
    if let Some(e) = event_type.filter(|e| !e.is_empty()) {
        key.push('_');
        key.push_str(e);
    }
    uuid::Uuid::new_v5(&NS_NAMESPACE, key.as_bytes()).to_string()
}

/// A UUID v5 of `key` in nightlite's namespace: stable ids for things derived from stored
/// documents (state spans), so deriving them again gives the same ids.
pub fn derived_uuid(key: &str) -> String {
    uuid::Uuid::new_v5(&NS_NAMESPACE, key.as_bytes()).to_string()
}

/// A new API secret: 24 characters from an unambiguous alphabet.
pub(crate) fn random_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<24>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightscout_test_vector() {
        assert_eq!(
            v3_identifier(Some("dexcom"), 1491717830000, None),
            "b07c45bc-b043-56aa-a8c0-125c16a085a2"
        );
    }

    #[test]
    fn object_ids_are_24_hex_and_distinct() {
        let a = object_id();
        let b = object_id();
        assert!(is_object_id(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, a.to_lowercase());
    }

    #[test]
    fn secret_is_long_enough() {
        assert!(random_secret().len() >= crate::config::MIN_SECRET_LENGTH);
        assert_ne!(random_secret(), random_secret());
    }
}
