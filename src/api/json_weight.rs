//! How many values a JSON text holds, counted on the bytes before anything is parsed. A parsed
//! value costs far more than its text (serde_json with `arbitrary_precision` keeps every
//! number as a string: `1,` is two bytes of text and some 80 bytes parsed), so a size limit
//! alone lets a 1 MB document of small numbers take tens of megabytes several times over. The
//! count bounds that instead (docs/security.md, "Request bodies and lists").

/// Values one document may hold (real ones hold a few thousand: a Loop or AndroidAPS device
/// status with its prediction curves, a profile with several schedules).
pub const MAX_DOC_VALUES: usize = 50_000;

/// Documents one v1 write may hold. Nightscout's v1 reply echoes every document with its
/// `_id`, about four times the text of a minimal entry; this bounds that reply (some 9 MB)
/// where the body size alone let a 20 MB batch of 458k entries build a 79 MB one. Uploaders
/// send hundreds at a time.
pub const MAX_BATCH_DOCS: usize = 50_000;

/// Values one body read whole may hold (API v3 writes, the authorization API).
pub(crate) const MAX_BODY_VALUES: usize = 200_000;

/// Whether `text` holds more than `max` values: each comma and each opening bracket or brace
/// outside a string counts one, plus one for the text itself (an upper bound on the values).
pub(crate) fn more_than(text: &[u8], max: usize) -> bool {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => {
                count += 1;
                if count > max {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::more_than;

    #[test]
    fn counts_values_outside_strings() {
        assert!(!more_than(b"1", 1));
        assert!(more_than(b"[1,2]", 2));
        assert!(!more_than(b"[1,2]", 3));
        // Commas and brackets inside strings (escaped quotes included) do not count.
        assert!(!more_than(br#"{"a":"x,[{\",y"}"#, 2));
        assert!(more_than(br#"{"a":"x\\",[1]}"#, 3));
        let numbers = format!("[{}1]", "1,".repeat(1000));
        assert!(more_than(numbers.as_bytes(), 1000));
        assert!(!more_than(numbers.as_bytes(), 1002));
    }
}
