//! The caller's IP address. The TCP peer is the caller, unless the peer is a proxy the
//! config trusts: then `Forwarded` (RFC 7239) or `X-Forwarded-For` is read from the right,
//! skipping trusted hops, and the first untrusted address is the caller. Headers from an
//! untrusted peer are ignored, since anyone can write them.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

use crate::Facts;

/// At most this many hops are read from a forwarding header; a longer chain is cut there.
const MAX_HOPS: usize = 32;

/// Addresses and CIDR ranges, IPv4 and IPv6 (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
///
/// `ipnet` parses and matches the ranges: the standard crate for them, with no dependencies.
#[derive(Debug, Clone, Default)]
pub struct Nets(Vec<IpNet>);

impl Nets {
    pub fn new(texts: &[String]) -> Result<Nets, String> {
        texts.iter().map(|t| parse_net(t)).collect::<Result<_, _>>().map(Nets)
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    match t.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip.to_canonical())),
        Err(_) => Err(format!("'{text}' is neither an IP address nor a CIDR range")),
    }
}

impl<'de> Deserialize<'de> for Nets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Nets::new(&Vec::<String>::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The caller's address: the peer, or what trusted proxies say it is. `None` without a peer.
pub fn resolve(facts: &impl Facts, trusted: &Nets) -> Option<IpAddr> {
    let peer = facts.client_addr()?.parse::<SocketAddr>().ok()?.ip().to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    let chain = match facts.header("forwarded") {
        Some(f) => forwarded_for(&f),
        None => facts.header("x-forwarded-for").map(|x| x.split(',').map(|s| parse_hop(s.trim())).collect()).unwrap_or_default(),
    };
    Some(walk(peer, &chain, trusted))
}

/// From the right: each hop was appended by the one after it; the first untrusted is the caller.
/// A hop that is not an address stops the walk at the proxy that sent it.
fn walk(peer: IpAddr, chain: &[Option<IpAddr>], trusted: &Nets) -> IpAddr {
    let mut caller = peer;
    for hop in chain.iter().rev().take(MAX_HOPS) {
        match hop {
            Some(ip) => {
                caller = *ip;
                if !trusted.contains(*ip) {
                    break;
                }
            }
            None => break,
        }
    }
    caller
}

/// The `for=` of each element of a `Forwarded` header.
fn forwarded_for(header: &str) -> Vec<Option<IpAddr>> {
    header
        .split(',')
        .map(|element| {
            let value = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"'))
            });
            value.and_then(parse_hop)
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]:443`; `unknown` and
/// obfuscated names are not addresses.
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = text.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Known;

    fn nets(list: &[&str]) -> Nets {
        Nets::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn from(peer: &str, headers: &[(&str, &str)]) -> Known {
        Known { client_addr: Some(peer.into()), headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Known::default() }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_of_both_families_and_mapped_addresses_match() {
        let n = nets(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "10.1.2.3/8"]);
        assert!(n.contains(ip("10.200.0.1")));
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(n.contains(ip("192.0.2.7")));
        assert!(!n.contains(ip("192.0.2.8")));
        assert!(n.contains(ip("::ffff:10.0.0.1")), "an IPv4-mapped IPv6 address is its IPv4 address");
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(Nets::new(&["10.0.0.0/33".into()]).is_err());
        assert!(Nets::new(&["example.com".into()]).is_err());
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/8"]);
        let spoof = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(resolve(&from("198.51.100.1:5000", &spoof), &proxies), Some(ip("198.51.100.1")), "an untrusted peer's header is ignored");
        assert_eq!(resolve(&from("198.51.100.1:5000", &spoof), &Nets::default()), Some(ip("198.51.100.1")));
        let through = [("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")];
        assert_eq!(
            resolve(&from("10.0.0.1:5000", &through), &proxies),
            Some(ip("203.0.113.9")),
            "the rightmost untrusted hop, not what the client wrote first"
        );
        let all_trusted = [("x-forwarded-for", "10.0.0.3")];
        assert_eq!(resolve(&from("10.0.0.1:5000", &all_trusted), &proxies), Some(ip("10.0.0.3")));
        let garbage = [("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.2")];
        assert_eq!(resolve(&from("10.0.0.1:5000", &garbage), &proxies), Some(ip("10.0.0.2")), "a hop that is not an address stops the walk");
    }

    #[test]
    fn forwarded_wins_and_its_ipv6_forms_parse() {
        let proxies = nets(&["::1/128", "10.0.0.0/8"]);
        let h = [("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""), ("x-forwarded-for", "6.6.6.6")];
        assert_eq!(resolve(&from("[::1]:8000", &h), &proxies), Some(ip("2001:db8:cafe::17")));
        let h = [("forwarded", "for=unknown")];
        assert_eq!(resolve(&from("10.0.0.1:1", &h), &proxies), Some(ip("10.0.0.1")));
        assert_eq!(resolve(&from("[::ffff:192.0.2.1]:80", &[]), &proxies), Some(ip("192.0.2.1")));
        assert_eq!(resolve(&Known::default(), &proxies), None);
    }

    #[test]
    fn a_huge_chain_is_cut_not_walked() {
        let long = vec!["10.0.0.9"; 10_000].join(",");
        let h = [("x-forwarded-for", long.as_str())];
        assert_eq!(resolve(&from("10.0.0.1:1", &h), &nets(&["10.0.0.0/8"])), Some(ip("10.0.0.9")));
    }
}
