//! Whose counter (or cache entry) an exchange belongs to: a key built from the parts the
//! config names, such as `[subject, tool]`.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Facts;
use crate::client_ip;

/// The attribute an authenticating policy (`jwt`) sets to the caller's subject.
pub const SUBJECT: &str = tollgate_policy_sdk::attr::SUBJECT;
/// The attribute an authenticating policy sets to the token's issuer: a subject is unique
/// only within its issuer.
pub const ISSUER: &str = tollgate_policy_sdk::attr::ISSUER;
/// The attribute that names the caller's subscription (set by the gateway for a server sold
/// in a product, or by an earlier policy such as `jwt` with `attributes: { subscription: azp }`).
pub const SUBSCRIPTION: &str = tollgate_policy_sdk::attr::SUBSCRIPTION;

/// Keys longer than this are stored as their SHA-256, so a huge header cannot make a huge key.
const MAX_PLAIN: usize = 128;

/// One part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// The `subscription` attribute.
    Subscription,
    /// The token's issuer and subject (`auth.iss`, `auth.sub`): one caller.
    Subject,
    /// The caller's IP, through the proxies the gateway trusts.
    ClientIp,
    /// The MCP session.
    Session,
    /// The tool of a `tools/call` (other methods have none).
    Tool,
    /// The MCP server the binding belongs to.
    Server,
    /// The JSON-RPC method.
    Method,
    /// Any attribute an earlier policy set: `{ attribute: tenant }`.
    Attribute(String),
    /// A header of the client's request: `{ header: x-team }`. Only trust it behind a policy
    /// that authenticates it.
    Header(String),
}

/// Builds keys from a list of parts. Missing values (no subject before authentication, say)
/// are part of the key too: all such callers share one counter.
#[derive(Debug, Clone)]
pub struct Keyer {
    parts: Vec<KeyPart>,
}

impl Keyer {
    pub fn new(parts: Vec<KeyPart>) -> Result<Keyer, String> {
        if parts.is_empty() {
            return Err("key must name at least one part (subject, client_ip, session, tool, ...)".into());
        }
        for p in &parts {
            if let KeyPart::Attribute(s) | KeyPart::Header(s) = p
                && s.is_empty()
            {
                return Err("key: attribute and header names must not be empty".into());
            }
        }
        Ok(Keyer { parts })
    }

    pub fn parts(&self) -> &[KeyPart] {
        &self.parts
    }

    /// The values of the parts, in order.
    pub fn values(&self, ex: &impl Facts) -> Vec<Option<String>> {
        self.parts.iter().map(|p| value(p, ex)).collect()
    }

    /// The key text: the JSON array of the values, or its hash when long.
    pub fn key(&self, ex: &impl Facts) -> String {
        digest_if_long(serde_json::to_string(&self.values(ex)).unwrap_or_default())
    }
}

fn value(part: &KeyPart, ex: &impl Facts) -> Option<String> {
    match part {
        KeyPart::Subscription => ex.attribute(SUBSCRIPTION),
        // The same subject from two issuers is two callers.
        KeyPart::Subject => ex.attribute(SUBJECT).map(|sub| match ex.attribute(ISSUER) {
            Some(iss) => format!("{iss} {sub}"),
            None => sub,
        }),
        KeyPart::ClientIp => client_ip::resolve(ex).map(|ip| ip.to_string()),
        KeyPart::Session => ex.session_id(),
        KeyPart::Tool => (ex.method() == "tools/call").then(|| ex.target()).flatten(),
        KeyPart::Server => Some(ex.server()),
        KeyPart::Method => Some(ex.method()),
        KeyPart::Attribute(a) => ex.attribute(a),
        KeyPart::Header(h) => ex.header(h),
    }
}

/// `text` itself, or `#` and the hex SHA-256 of it when it is longer than 128 bytes.
pub fn digest_if_long(text: String) -> String {
    if text.len() <= MAX_PLAIN {
        return text;
    }
    format!("#{}", hex(&Sha256::digest(text.as_bytes())))
}

/// Lowercase hex, by table: a `format!` per byte cost more than the hash it printed.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Known;

    fn known() -> Known {
        Known {
            method: "tools/call".into(),
            target: Some("search".into()),
            server: "docs".into(),
            session_id: Some("s1".into()),
            client_ip: Some("2001:db8::5".into()),
            headers: vec![("X-Team".into(), "red".into())],
            attributes: vec![("auth.sub".into(), "alice".into()), ("tenant".into(), "acme".into())],
        }
    }

    #[test]
    fn parts_read_what_they_name_and_missing_ones_are_shared() {
        let parts: Vec<KeyPart> =
            serde_json::from_str(r#"["subject","tool","client_ip","session",{"attribute":"tenant"},{"header":"x-team"},"subscription","server","method"]"#)
                .unwrap();
        let k = Keyer::new(parts).unwrap();
        let v = k.values(&known());
        let want = [Some("alice"), Some("search"), Some("2001:db8::5"), Some("s1"), Some("acme"), Some("red"), None, Some("docs"), Some("tools/call")];
        assert_eq!(v, want.map(|s| s.map(str::to_owned)));
        let mut list = known();
        list.method = "tools/list".into();
        assert_eq!(Keyer::new(vec![KeyPart::Tool]).unwrap().values(&list), vec![None], "only tools/call has a tool");
    }

    #[test]
    fn different_callers_get_different_keys_and_long_ones_are_hashed() {
        let k = Keyer::new(vec![KeyPart::Subject, KeyPart::Tool]).unwrap();
        let mut bob = known();
        bob.attributes[0].1 = "bob".into();
        assert_ne!(k.key(&known()), k.key(&bob));
        // The same subject from two issuers: two callers.
        let (mut from_a, mut from_b) = (known(), known());
        from_a.attributes.push(("auth.iss".into(), "https://a.example".into()));
        from_b.attributes.push(("auth.iss".into(), "https://b.example".into()));
        assert_ne!(k.key(&from_a), k.key(&from_b));
        assert_eq!(k.values(&from_a)[0].as_deref(), Some("https://a.example alice"));
        // ["a,b"] and ["a","b"] must not collide.
        let mut comma = known();
        comma.attributes[0].1 = "alice\",\"search".into();
        comma.target = None;
        assert_ne!(k.key(&known()), k.key(&comma));
        let mut long = known();
        long.attributes[0].1 = "x".repeat(10_000);
        let key = k.key(&long);
        assert!(key.starts_with('#') && key.len() == 65, "{key}");
        assert!(Keyer::new(vec![]).is_err());
        assert!(Keyer::new(vec![KeyPart::Header(String::new())]).is_err());
    }
}
