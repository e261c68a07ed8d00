//! The addresses other machines on the network can reach this one at, for the start-up banner
//! when nightlite listens on every interface. Found offline, without sending anything.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// This machine's IPv4 addresses that other machines may use, the one on the default route
/// first. Empty when there is none (no network, or a sandbox that hides both sources).
pub fn addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = primary().into_iter().collect();
    // Hidden under the .deb's unit (ProcSubset=pid); the primary address is still found.
    if let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") {
        for ip in local_addresses(&text) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// The address the kernel would send from towards a documentation address (192.0.2.1,
/// which nobody answers): connecting a UDP socket only chooses the route, no packet leaves.
fn primary() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    usable(ip).then_some(ip)
}

/// The kernel's routing trie lists each local address on a line of its own (`|-- 10.0.0.5`)
/// followed by `/32 host LOCAL`.
fn local_addresses(fib_trie: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut previous: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let item = line.trim().trim_start_matches("|-- ");
        if let Ok(ip) = item.parse::<Ipv4Addr>() {
            previous = Some(ip);
            continue;
        }
        if item == "/32 host LOCAL" {
            if let Some(ip) = previous.take().map(IpAddr::V4) {
                if usable(ip) && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// Reachable from another machine: not loopback, link-local, unspecified or multicast.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast())
        }
        IpAddr::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_come_from_the_routing_trie_without_loopback_or_broadcast() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            \x20    +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n\
            \x20       |-- 127.255.255.255\n           /32 link BROADCAST\n\
            \x20          |-- 192.168.1.0\n              /24 link UNICAST\n\
            \x20          |-- 192.168.1.20\n              /32 host LOCAL\n\
            \x20       |-- 192.168.1.255\n           /32 link BROADCAST\n\
            Local:\n           |-- 192.168.1.20\n              /32 host LOCAL\n\
            \x20          |-- 10.8.0.2\n              /32 host LOCAL\n";
        let ips: Vec<String> = local_addresses(trie)
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ips, ["192.168.1.20", "10.8.0.2"]);
    }
}
