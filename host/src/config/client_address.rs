//! Who the client is when the gateway sits behind proxies: `client_address` names the proxies
//! it trusts and the one header they write. The gateway reads every line of that header, walks
//! from the right (each proxy appends the address it got the request from), and takes the first
//! address that is not a trusted proxy. What a client writes itself sits left of that, and a
//! header of the other kind is never read, so neither can choose the address. Every policy that
//! keys on the client address (`ip-filter`, `rate-limit`, `quota`, `cache`) and the access log
//! see this one answer.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// At most this many hops are read from the header; a longer chain is cut there.
const MAX_HOPS: usize = 32;

/// `client_address: { trusted_proxies: [10.0.0.0/8], header: x-forwarded-for }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAddress {
    /// Peers whose forwarding header is believed: addresses and CIDR ranges. Empty: the TCP
    /// peer is the client, and no header is read.
    #[serde(skip_serializing_if = "Nets::is_empty")]
    pub trusted_proxies: Nets,
    /// The header the trusted proxies write.
    pub header: ForwardedHeader,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239: the `for=` of each element.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

impl ClientAddress {
    /// The client's address: the peer, or what the trusted proxies say it is.
    pub fn resolve(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusted_proxies.contains(peer) {
            return peer;
        }
        let mut hops: Vec<Option<IpAddr>> = Vec::new();
        for line in headers.get_all(self.header.name()) {
            let Ok(text) = line.to_str() else {
                hops.push(None);
                continue;
            };
            for element in text.split(',') {
                hops.push(match self.header {
                    ForwardedHeader::XForwardedFor => parse_hop(element.trim()),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                });
            }
        }
        let mut caller = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            match hop {
                Some(ip) => {
                    caller = *ip;
                    if !self.trusted_proxies.contains(*ip) {
                        break;
                    }
                }
                // A hop that is not an address: the proxy that wrote it is the last one known.
                None => break,
            }
        }
        caller
    }

    /// As [`ClientAddress::resolve`], for a peer that may be unknown.
    pub fn of(&self, peer: Option<SocketAddr>, headers: &hyper::HeaderMap) -> Option<IpAddr> {
        peer.map(|p| self.resolve(p.ip(), headers))
    }
}

/// The `for=` of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"'))
    })?;
    parse_hop(value)
}

/// `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]:443`; `unknown` and obfuscated
/// names are not addresses.
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

/// Addresses and CIDR ranges of both families (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
/// `ipnet` parses and matches them: the standard crate for it, with no dependencies.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Nets(Vec<IpNet>);

impl Nets {
    pub fn parse(texts: &[String]) -> Result<Nets, String> {
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

impl fmt::Debug for Nets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|n| n.to_string())).finish()
    }
}

impl<'de> Deserialize<'de> for Nets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Nets::parse(&Vec::<String>::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// As [`Nets`]' `Deserialize` reads it: a list of strings, each an address or a CIDR range. The
/// pattern admits every one that parses.
impl JsonSchema for Nets {
    fn schema_name() -> Cow<'static, str> {
        "Nets".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "IP addresses and CIDR ranges of either family: `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`.",
            "type": "array",
            "items": { "type": "string", "pattern": r"^\s*[0-9A-Fa-f:.]+(/\d+)?\s*$" }
        })
    }
}

impl Serialize for Nets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|n| n.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(yaml: &str) -> ClientAddress {
        serde_norway::from_str(yaml).unwrap()
    }

    fn headers(lines: &[(&'static str, &str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in lines {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_line_is_read_from_the_right() {
        let c = at("trusted_proxies: [127.0.0.1]");
        // The client wrote the first line; the proxy appended the second.
        let h = headers(&[("x-forwarded-for", "10.1.2.3"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(c.resolve(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        assert_eq!(c.resolve(ip("127.0.0.1"), &h), ip("203.0.113.9"), "what the client wrote first does not count");
    }

    #[test]
    fn only_the_named_header_counts() {
        let xff = at("trusted_proxies: [127.0.0.1]");
        let h = headers(&[("forwarded", "for=10.0.0.1"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(xff.resolve(ip("127.0.0.1"), &h), ip("203.0.113.9"), "a client's own Forwarded changes nothing");
        let fwd = at("trusted_proxies: [127.0.0.1]\nheader: forwarded");
        let h = headers(&[("x-forwarded-for", "10.0.0.1"), ("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::17]:4711\"")]);
        assert_eq!(fwd.resolve(ip("127.0.0.1"), &h), ip("2001:db8::17"));
        assert_eq!(fwd.resolve(ip("127.0.0.1"), &headers(&[("forwarded", "for=unknown")])), ip("127.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client() {
        let c = at("trusted_proxies: [10.0.0.0/8]");
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(c.resolve(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(ClientAddress::default().resolve(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        assert_eq!(c.resolve(ip("::ffff:198.51.100.1"), &h), ip("198.51.100.1"), "a mapped address is its IPv4 address");
        let trusted_all = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &trusted_all), ip("10.0.0.3"));
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.2")]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &garbage), ip("10.0.0.2"), "a hop that is not an address stops the walk");
        let long = vec!["10.0.0.9"; 10_000].join(",");
        assert_eq!(c.resolve(ip("10.0.0.1"), &headers(&[("x-forwarded-for", &long)])), ip("10.0.0.9"));
    }

    #[test]
    fn bad_ranges_are_refused_with_the_text() {
        let e = serde_norway::from_str::<ClientAddress>("trusted_proxies: [10.0.0.0/33]").unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!(serde_norway::from_str::<ClientAddress>("header: x-real-ip").is_err());
    }
}
