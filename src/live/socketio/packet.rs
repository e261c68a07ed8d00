//! Engine.IO (v3 and v4) and Socket.IO (protocol v4 for socket.io 2.x, v5 for 3.x/4.x)
//! packets, text only: binary packets are refused.

use serde_json::Value;

/// Engine.IO protocol version of a session (the `EIO` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eio {
    V3,
    V4,
}

/// Engine.IO packet types.
pub const OPEN: char = '0';
pub const CLOSE: char = '1';
pub const PING: char = '2';
pub const PONG: char = '3';
pub const MESSAGE: char = '4';
pub const UPGRADE: char = '5';
pub const NOOP: char = '6';

/// Joins engine packets into one polling response body.
pub fn encode_payload(eio: Eio, packets: &[String]) -> String {
    match eio {
        // v4: separated by the record separator.
        Eio::V4 => packets.join("\u{1e}"),
        // v3: each prefixed by its length in UTF-16 code units (JavaScript string length).
        Eio::V3 => packets
            .iter()
            .map(|p| format!("{}:{p}", p.encode_utf16().count()))
            .collect(),
    }
}

pub const TOO_MANY: &str = "too many packets in one payload";

/// The packets of a payload, refused when there are more than `max` (before they are copied).
pub fn decode_payload_max(eio: Eio, body: &str, max: usize) -> Result<Vec<String>, &'static str> {
    match eio {
        Eio::V4 => {
            let packets = || body.split('\u{1e}').filter(|p| !p.is_empty());
            if packets().nth(max).is_some() {
                return Err(TOO_MANY);
            }
            Ok(packets().map(str::to_string).collect())
        }
        Eio::V3 => {
            let mut out = vec![];
            let mut rest = body;
            while !rest.is_empty() {
                if out.len() == max {
                    return Err(TOO_MANY);
                }
                let (len, after) = rest.split_once(':').ok_or("v3 payload without a length")?;
                let len: usize = len
                    .parse()
                    .map_err(|_| "v3 payload length is not a number")?;
                // The length counts UTF-16 code units; walk chars until that many are taken.
                let mut units = 0;
                let mut end = 0;
                for (i, c) in after.char_indices() {
                    if units == len {
                        end = i;
                        break;
                    }
                    units += c.len_utf16();
                    end = i + c.len_utf8();
                }
                if units != len {
                    return Err("v3 payload shorter than its length");
                }
                out.push(after[..end].to_string());
                rest = &after[end..];
            }
            Ok(out)
        }
    }
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    /// CONNECT_ERROR (v5) or ERROR (v4).
    Error,
    BinaryEvent,
    BinaryAck,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: Kind,
    pub nsp: String,
    pub id: Option<u64>,
    pub data: Option<Value>,
}

impl Packet {
    pub fn new(kind: Kind, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            kind,
            nsp: nsp.to_string(),
            id,
            data,
        }
    }

    /// `["name", args...]` of an EVENT.
    pub fn event(&self) -> Option<(&str, &[Value])> {
        let items = self.data.as_ref()?.as_array()?;
        let (name, args) = items.split_first()?;
        Some((name.as_str()?, args))
    }

    /// The text of this packet inside an engine MESSAGE (without the leading '4').
    pub fn encode(&self) -> String {
        let mut s = String::new();
        s.push(match self.kind {
            Kind::Connect => '0',
            Kind::Disconnect => '1',
            Kind::Event => '2',
            Kind::Ack => '3',
            Kind::Error => '4',
            Kind::BinaryEvent => '5',
            Kind::BinaryAck => '6',
        });
        if self.nsp != "/" && !self.nsp.is_empty() {
            s.push_str(&self.nsp);
            s.push(',');
        }
        if let Some(id) = self.id {
            s.push_str(&id.to_string());
        }
        if let Some(d) = &self.data {
            s.push_str(&d.to_string());
        }
        s
    }

    /// [`Packet::encode`] of an EVENT `[name, arg]` whose one argument is JSON text already
    /// serialised (a shared snapshot): the same text, without parsing `arg` again.
    pub fn encode_event_text(nsp: &str, name: &str, arg_json: &str) -> String {
        let mut s = Packet::new(Kind::Event, nsp, None, None).encode();
        s.push('[');
        s.push_str(&Value::String(name.to_string()).to_string());
        s.push(',');
        s.push_str(arg_json);
        s.push(']');
        s
    }

    pub fn decode(text: &str) -> Result<Packet, &'static str> {
        let mut chars = text.char_indices();
        let kind = match chars.next().map(|(_, c)| c) {
            Some('0') => Kind::Connect,
            Some('1') => Kind::Disconnect,
            Some('2') => Kind::Event,
            Some('3') => Kind::Ack,
            Some('4') => Kind::Error,
            Some('5') => Kind::BinaryEvent,
            Some('6') => Kind::BinaryAck,
            _ => return Err("unknown Socket.IO packet type"),
        };
        let mut rest = &text[1..];
        if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
            return Err("binary packets are not supported");
        }
        let mut nsp = "/".to_string();
        if rest.starts_with('/') {
            // The namespace runs to a comma (or the end); v4 may append `?query`.
            let end = rest.find(',').unwrap_or(rest.len());
            let full = &rest[..end];
            nsp = full.split('?').next().unwrap_or(full).to_string();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            Some(rest[..digits].parse().map_err(|_| "bad ack id")?)
        } else {
            None
        };
        rest = &rest[digits..];
        let data: Option<Value> = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str(rest).map_err(|_| "packet data is not JSON")?)
        };
        let named = data
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .is_some_and(Value::is_string);
        if kind == Kind::Event && !named {
            return Err("an event needs [\"name\", ...]");
        }
        Ok(Packet {
            kind,
            nsp,
            id,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_from_json_text_is_the_encoded_event() {
        let arg = json!({ "delta": false, "sgvs": [{ "mgdl": 100 }] });
        for nsp in ["/", "/storage"] {
            let parsed = Packet::new(
                Kind::Event,
                nsp,
                None,
                Some(json!(["dataUpdate", arg.clone()])),
            );
            assert_eq!(
                Packet::encode_event_text(nsp, "dataUpdate", &arg.to_string()),
                parsed.encode()
            );
        }
    }

    #[test]
    fn v4_payloads() {
        let p = vec!["40".to_string(), "42[\"a\"]".to_string()];
        let body = encode_payload(Eio::V4, &p);
        assert_eq!(body, "40\u{1e}42[\"a\"]");
        assert_eq!(decode_payload_max(Eio::V4, &body, usize::MAX).unwrap(), p);
    }

    #[test]
    fn v3_payloads_count_utf16_units() {
        let p = vec!["40".to_string(), "42[\"é😀\"]".to_string()];
        let body = encode_payload(Eio::V3, &p);
        // "42[\"é😀\"]" is 9 UTF-16 units: 4 2 [ " é 😀(2) " ]
        assert_eq!(body, "2:409:42[\"é😀\"]");
        assert_eq!(decode_payload_max(Eio::V3, &body, usize::MAX).unwrap(), p);
        assert!(decode_payload_max(Eio::V3, "5:ab", usize::MAX).is_err());
        assert!(decode_payload_max(Eio::V3, "x:ab", usize::MAX).is_err());
        assert_eq!(
            decode_payload_max(Eio::V4, "4a\u{1e}4b", 2).unwrap().len(),
            2
        );
        assert!(decode_payload_max(Eio::V4, "4a\u{1e}4b\u{1e}4c", 2).is_err());
        assert!(decode_payload_max(Eio::V3, "2:4a2:4b2:4c", 2).is_err());
    }

    #[test]
    fn socketio_packets_round_trip() {
        for text in [
            "0",
            "0{\"sid\":\"abc\"}",
            "0/storage,",
            "0/storage,{\"token\":\"x\"}",
            "2[\"dataUpdate\",{\"delta\":true}]",
            "21[\"authorize\",{\"secret\":\"s\"}]",
            "2/storage,3[\"subscribe\",{\"accessToken\":\"t\"}]",
            "31[{\"read\":true}]",
            "3/alarm,7[{\"success\":true}]",
            "1/storage,",
            "4{\"message\":\"no\"}",
        ] {
            let p = Packet::decode(text).unwrap();
            assert_eq!(p.encode(), text, "{text}");
        }
        let p = Packet::decode("2/storage,3[\"subscribe\",{\"accessToken\":\"t\"}]").unwrap();
        assert_eq!(p.nsp, "/storage");
        assert_eq!(p.id, Some(3));
        assert_eq!(p.event().unwrap().0, "subscribe");
        assert_eq!(p.event().unwrap().1, &[json!({"accessToken": "t"})]);
    }

    #[test]
    fn v4_namespace_query_and_refusals() {
        assert_eq!(Packet::decode("0/alarm?x=1,").unwrap().nsp, "/alarm");
        assert!(Packet::decode("51-[\"a\",{\"_placeholder\":true,\"num\":0}]").is_err());
        assert!(Packet::decode("2{\"not\":\"an event\"}").is_err());
        assert!(Packet::decode("9").is_err());
        assert!(Packet::decode("2[\"x\"").is_err());
    }
}
