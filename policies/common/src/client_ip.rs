//! The caller's IP address, and address ranges to match it against. The gateway resolves the
//! address once, through the proxies it trusts, and every policy reads that one answer.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

use crate::Facts;

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

/// The caller's address, as the gateway resolved it through the proxies it trusts (its
/// `client_address` setting). `None` without one (a stdio client).
pub fn resolve(facts: &impl Facts) -> Option<IpAddr> {
    facts.client_ip()?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// `trusted_proxies` in a policy's config: set once for the whole gateway now, so every
/// policy and the access log agree on who the client is. Refused with where it went.
#[derive(Debug)]
pub struct MovedToGateway;

impl<'de> Deserialize<'de> for MovedToGateway {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(de::Error::custom("`trusted_proxies` is set once for the whole gateway: `client_address.trusted_proxies` in the gateway's config file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Known;

    fn nets(list: &[&str]) -> Nets {
        Nets::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
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
    fn the_gateways_answer_is_the_address_and_headers_are_not_read() {
        let k = Known { client_ip: Some("::ffff:192.0.2.1".into()), headers: vec![("x-forwarded-for".into(), "6.6.6.6".into())], ..Known::default() };
        assert_eq!(resolve(&k), Some(ip("192.0.2.1")));
        assert_eq!(resolve(&Known::default()), None);
    }

    #[test]
    fn trusted_proxies_in_a_policy_points_to_the_gateway() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct C {
            trusted_proxies: Option<MovedToGateway>,
        }
        let e = serde_json::from_str::<C>(r#"{"trusted_proxies": ["10.0.0.1"]}"#).unwrap_err().to_string();
        assert!(e.contains("client_address.trusted_proxies"), "{e}");
    }
}
