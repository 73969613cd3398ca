//! `ip-filter`: lets callers in or keeps them out by IP address, IPv4 and IPv6, with CIDR
//! ranges. Behind a proxy, the caller's address is the one the gateway resolved through the
//! proxies it trusts (`client_address` in its config).

use policy_common::client_ip::{self, MovedToGateway, Nets};
use serde::Deserialize;
use serde_json::json;
use tollgate_policy_sdk::{Exchange, Hooks, Policy, Rejection, Verdict};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// When not empty, only these addresses and ranges get in.
    #[serde(default)]
    pub allow: Nets,
    /// Never these, even when `allow` lists them.
    #[serde(default)]
    pub deny: Nets,
    /// Refused: set once for the gateway, as `client_address.trusted_proxies`.
    #[serde(default)]
    pub trusted_proxies: Option<MovedToGateway>,
}

pub struct IpFilter(Config);

impl IpFilter {
    /// Whether `ip` may pass. A caller with no known address (stdio) passes only without an allow list.
    pub fn admits(&self, ip: Option<std::net::IpAddr>) -> bool {
        let c = &self.0;
        match ip {
            Some(ip) => !c.deny.contains(ip) && (c.allow.is_empty() || c.allow.contains(ip)),
            None => c.allow.is_empty(),
        }
    }
}

impl Policy for IpFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.allow.is_empty() && config.deny.is_empty() {
            return Err("name at least one address or range in allow or deny".into());
        }
        Ok(IpFilter(config))
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        let ip = client_ip::resolve(ex);
        if self.admits(ip) {
            return Verdict::next();
        }
        let shown = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        Rejection::forbidden(&format!("Forbidden: client address {shown} is not allowed")).data(&json!({ "clientIp": shown })).into()
    }
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(IpFilter);

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(yaml_like: serde_json::Value) -> Result<IpFilter, String> {
        IpFilter::new(serde_json::from_value(yaml_like).map_err(|e| e.to_string())?)
    }

    #[test]
    fn deny_wins_over_allow_and_both_families_work() {
        let f = filter(json!({ "allow": ["10.0.0.0/8", "2001:db8::/32", "::1"], "deny": ["10.6.6.0/24"] })).unwrap();
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(f.admits(ip("10.1.2.3")));
        assert!(!f.admits(ip("10.6.6.6")));
        assert!(f.admits(ip("2001:db8::7")));
        assert!(f.admits(ip("::1")));
        assert!(!f.admits(ip("192.0.2.1")));
        assert!(!f.admits(None), "an allow list admits no unknown caller");
        let deny_only = filter(json!({ "deny": ["192.0.2.0/24"] })).unwrap();
        assert!(deny_only.admits(ip("198.51.100.1")) && !deny_only.admits(ip("192.0.2.9")) && deny_only.admits(None));
    }

    #[test]
    fn a_bad_config_is_refused_with_a_reason() {
        let e = filter(json!({ "allow": ["10.0.0.0/40"] })).err().unwrap();
        assert!(e.contains("10.0.0.0/40"), "{e}");
        assert!(filter(json!({})).err().unwrap().contains("at least one"));
        assert!(filter(json!({ "alow": ["10.0.0.1"] })).err().unwrap().contains("unknown field"));
    }
}
