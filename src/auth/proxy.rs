//! Which address is the client behind reverse proxies (TRUST_PROXY).
//!
//! A proxy such as nginx (`proxy_add_x_forwarded_for`) *appends* the address it received the
//! request from to `X-Forwarded-For`, so only the right end of the header was written by
//! proxies we trust; everything left of it is whatever the client sent. The client is
//! therefore found by walking from the peer leftwards over trusted hops, never by taking the
//! left-most entry (which Nightscout and Express with `trust proxy` = true do, letting a
//! client choose its own address: docs/compatibility.md).

use std::net::IpAddr;

/// TRUST_PROXY: `false` (default), `true` (one proxy: the right-most entry is the client), a
/// hop count, or a comma-separated list of trusted proxy addresses/CIDR ranges (and the names
/// `loopback`, `linklocal`, `uniquelocal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyTrust {
    #[default]
    Off,
    /// This many proxies in front: the client is that many hops left of the peer.
    Hops(usize),
    /// Every hop in one of these ranges is a proxy; the first other address is the client.
    Ranges(Vec<Range>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    net: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Option<Range> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Range { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, as dual-stack sockets report it) is
/// the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl ProxyTrust {
    /// The setting's value; Err names what is wrong.
    pub fn parse(text: &str) -> Result<ProxyTrust, String> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "" | "false" | "no" | "off" | "0" => return Ok(ProxyTrust::Off),
            "true" | "yes" | "on" => return Ok(ProxyTrust::Hops(1)),
            _ => {}
        }
        if let Ok(n) = t.parse::<usize>() {
            return if n <= 16 {
                Ok(ProxyTrust::Hops(n))
            } else {
                Err(format!("'{t}': at most 16 proxy hops"))
            };
        }
        let mut ranges = Vec::new();
        for item in t.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "loopback" => ranges.extend(["127.0.0.0/8", "::1/128"].map(named)),
                "linklocal" => ranges.extend(["169.254.0.0/16", "fe80::/10"].map(named)),
                "uniquelocal" => ranges.extend(
                    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"].map(named),
                ),
                _ => ranges.push(Range::parse(item).ok_or_else(|| {
                    format!("'{item}' is not true, false, a hop count or an address/CIDR range")
                })?),
            }
        }
        Ok(ProxyTrust::Ranges(ranges))
    }

    /// Whether a proxy is in front at all (X-Forwarded-Proto is then believed too).
    pub fn is_on(&self) -> bool {
        !matches!(self, ProxyTrust::Off | ProxyTrust::Hops(0))
    }

    /// The client's address from the peer and the X-Forwarded-For header(s) in order.
    pub fn client(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
        if !self.is_on() {
            return peer;
        }
        // Right to left: the peer, then the header's entries from its right end. An entry that
        // is not an address ends the chain: nothing left of it can be believed.
        let entries = forwarded
            .iter()
            .rev()
            .flat_map(|h| h.rsplit(','))
            .map(|e| e.trim().parse::<IpAddr>().ok());
        let mut chain = std::iter::once(peer).chain(entries).map_while(|ip| ip);
        let mut client = chain.next()?;
        match self {
            ProxyTrust::Off => {}
            ProxyTrust::Hops(n) => {
                for ip in chain.take(*n) {
                    client = ip;
                }
            }
            ProxyTrust::Ranges(ranges) => {
                for ip in chain {
                    if !ranges.iter().any(|r| r.contains(client)) {
                        break;
                    }
                    client = ip;
                }
            }
        }
        Some(canonical(client))
    }
}

fn named(cidr: &str) -> Range {
    // The names' ranges are literals above; a typo there would be caught by the unit tests.
    Range::parse(cidr).unwrap_or(Range {
        net: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        prefix: 32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn off_takes_the_peer_and_ignores_the_header() {
        let t = ProxyTrust::parse("false").unwrap();
        assert_eq!(t.client(ip("10.0.0.9"), &["1.2.3.4"]), ip("10.0.0.9"));
    }

    #[test]
    fn one_hop_takes_the_right_most_entry_a_client_cannot_forge() {
        let t = ProxyTrust::parse("true").unwrap();
        assert_eq!(t, ProxyTrust::Hops(1));
        // nginx appended the real client (203.0.113.7) after what the client sent.
        let forged = "198.51.100.1, 192.0.2.66, 203.0.113.7";
        assert_eq!(t.client(ip("127.0.0.1"), &[forged]), ip("203.0.113.7"));
        // Rotating the forged part does not change the address.
        let other = "10.9.9.9, 203.0.113.7";
        assert_eq!(t.client(ip("127.0.0.1"), &[other]), ip("203.0.113.7"));
        // No header: the peer itself.
        assert_eq!(t.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn hop_counts_walk_left_and_stop_at_the_left_end() {
        let t = ProxyTrust::parse("2").unwrap();
        let h = "1.1.1.1, 2.2.2.2, 3.3.3.3";
        assert_eq!(t.client(ip("127.0.0.1"), &[h]), ip("2.2.2.2"));
        assert_eq!(t.client(ip("127.0.0.1"), &["3.3.3.3"]), ip("3.3.3.3"));
        // Two header lines read as one list, in order.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["1.1.1.1, 2.2.2.2", "3.3.3.3"]),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn garbage_ends_the_chain() {
        let t = ProxyTrust::parse("3").unwrap();
        let h = "1.1.1.1, not-an-ip, 3.3.3.3";
        assert_eq!(t.client(ip("127.0.0.1"), &[h]), ip("3.3.3.3"));
    }

    #[test]
    fn ranges_skip_trusted_proxies_only() {
        let t = ProxyTrust::parse("loopback, 10.0.0.0/8").unwrap();
        let h = "6.6.6.6, 203.0.113.7, 10.1.2.3";
        assert_eq!(t.client(ip("127.0.0.1"), &[h]), ip("203.0.113.7"));
        // A peer that is not a trusted proxy is the client, whatever it says.
        assert_eq!(t.client(ip("192.0.2.1"), &[h]), ip("192.0.2.1"));
        // Mapped IPv4 peers match IPv4 ranges.
        assert_eq!(
            t.client(ip("::ffff:127.0.0.1"), &["203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        assert!(ProxyTrust::parse("10.0.0.0/33").is_err());
        assert!(ProxyTrust::parse("proxy").unwrap_err().contains("'proxy'"));
        assert!(ProxyTrust::parse("99").is_err());
        assert_eq!(ProxyTrust::parse("0").unwrap(), ProxyTrust::Off);
    }

    #[test]
    fn the_named_ranges_parse() {
        for n in ["loopback", "linklocal", "uniquelocal"] {
            let ProxyTrust::Ranges(r) = ProxyTrust::parse(n).unwrap() else {
                panic!("{n}")
            };
            assert!(r.iter().all(|r| r.prefix < 32 || r.net.is_ipv6()), "{n}");
        }
    }
}
