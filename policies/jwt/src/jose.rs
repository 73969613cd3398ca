//! The JOSE the policy reads itself: the accepted algorithms, public JWKs, a token's header and
//! claims. The signature is the gateway's to check (the `crypto` import), so the Wasm build needs
//! no JWT crate: `jsonwebtoken` there would bring `wasm-bindgen` imports. Keys and headers are
//! read as `jsonwebtoken` reads them (the gateway parses the same keys with it): what one
//! refuses, the other does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The algorithms a binding may accept: asymmetric only. `{:?}` is the JWS name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    /// The JWS name, as configs, errors and the gateway's `crypto` import write it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

/// An `alg` as a JWK or a token header writes it: the names `jsonwebtoken` knows, anything else
/// `Unknown` (a JWK with it is no signing key; a header with it is malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum KeyAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
    RSA1_5,
    #[serde(rename = "RSA-OAEP")]
    RSA_OAEP,
    #[serde(rename = "RSA-OAEP-256")]
    RSA_OAEP_256,
    #[serde(other)]
    Unknown,
}

impl KeyAlg {
    /// The accepted algorithm of this name, if it is one.
    pub fn algorithm(self) -> Option<Algorithm> {
        Some(match self {
            KeyAlg::RS256 => Algorithm::RS256,
            KeyAlg::RS384 => Algorithm::RS384,
            KeyAlg::RS512 => Algorithm::RS512,
            KeyAlg::PS256 => Algorithm::PS256,
            KeyAlg::PS384 => Algorithm::PS384,
            KeyAlg::PS512 => Algorithm::PS512,
            KeyAlg::ES256 => Algorithm::ES256,
            KeyAlg::ES384 => Algorithm::ES384,
            KeyAlg::EdDSA => Algorithm::EdDSA,
            _ => return None,
        })
    }
}

/// What a key is, told apart as `jsonwebtoken` does: by `kty` and the members that type needs
/// (`n`, `e`; `crv`, `x`, `y`; `crv`, `x`; `k`); a key without them is `Other`, usable by nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rsa,
    Ec(Curve),
    Okp,
    Oct,
    Other,
}

/// `kty`, read as a serde enum as theirs is.
#[derive(Deserialize)]
enum Kty {
    #[serde(rename = "RSA")]
    Rsa,
    EC,
    #[serde(rename = "OKP")]
    Okp,
    #[serde(rename = "oct")]
    Oct,
}

/// `crv`. Every one makes an EC key, but only P-256 and P-384 fit an accepted algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Curve {
    #[serde(rename = "P-256")]
    P256,
    #[serde(rename = "P-384")]
    P384,
    #[serde(rename = "P-521")]
    P521,
    Ed25519,
}

/// A public JWK: what the checks read of it, and the JSON it came from, which is what the gateway
/// is handed (standard member names, nothing dropped or renamed on the way).
#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// `use`; `enc` keys are not for signatures.
    pub key_use: Option<String>,
    pub alg: Option<KeyAlg>,
    pub kind: Kind,
    json: Map<String, Value>,
    /// `json` as text, made at the first signature check: a binding's keys outlive the call
    /// (in its snapshot or its reused instance), so later checks do not serialize them again.
    text: std::cell::OnceCell<String>,
}

/// The members any JWK may have, typed as `jsonwebtoken` types them, so a key it refuses (a
/// `kid` that is a number, a JWK that is not an object) is refused with the same message.
#[derive(Deserialize)]
#[serde(expecting = "struct Jwk")]
struct Common {
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    alg: Option<KeyAlg>,
    #[serde(rename = "key_ops")]
    _key_ops: Option<Vec<String>>,
    #[serde(rename = "x5u")]
    _x5u: Option<String>,
    #[serde(rename = "x5c")]
    _x5c: Option<Vec<String>>,
    #[serde(rename = "x5t")]
    _x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    _x5t_s256: Option<String>,
    /// Flattened, as theirs is: a JWK must be an object (a list is not read by position).
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

impl Jwk {
    /// The JWK's JSON, as the gateway's `crypto` import takes it.
    pub fn text(&self) -> &str {
        // A map of JSON values always serializes.
        self.text.get_or_init(|| serde_json::to_string(&self.json).unwrap_or_default())
    }

    /// Reads a JWK as `jsonwebtoken` does: `Err` (with its message) for what it refuses.
    pub fn from_json(v: Value) -> Result<Jwk, serde_json::Error> {
        let common = Common::deserialize(&v)?;
        // `Common` parsed, so `v` is an object.
        let Value::Object(json) = v else { return Err(serde::de::Error::custom("a JWK is an object")) };
        let has = |name: &str| json.get(name).is_some_and(Value::is_string);
        let curve = || json.get("crv").and_then(|c| Curve::deserialize(c).ok());
        let kind = match json.get("kty").and_then(|k| Kty::deserialize(k).ok()) {
            Some(Kty::Rsa) if has("n") && has("e") => Kind::Rsa,
            Some(Kty::EC) if has("x") && has("y") => curve().map_or(Kind::Other, Kind::Ec),
            Some(Kty::Okp) if has("x") && curve().is_some() => Kind::Okp,
            Some(Kty::Oct) if has("k") => Kind::Oct,
            _ => Kind::Other,
        };
        Ok(Jwk { kid: common.kid, key_use: common.key_use, alg: common.alg, kind, json, text: std::cell::OnceCell::new() })
    }
}

/// As the JSON it came from.
impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Jwk::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A token's header, typed as `jsonwebtoken` types it: a header it refuses is malformed here.
#[derive(Deserialize)]
struct Header {
    alg: KeyAlg,
    kid: Option<String>,
    #[serde(rename = "typ")]
    _typ: Option<String>,
    #[serde(rename = "cty")]
    _cty: Option<String>,
    #[serde(rename = "jku")]
    _jku: Option<String>,
    #[serde(rename = "jwk")]
    _jwk: Option<Jwk>,
    #[serde(rename = "x5u")]
    _x5u: Option<String>,
    #[serde(rename = "x5c")]
    _x5c: Option<Vec<String>>,
    #[serde(rename = "x5t")]
    _x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    _x5t_s256: Option<String>,
    #[serde(rename = "crit")]
    _crit: Option<Vec<String>>,
    #[serde(rename = "enc")]
    _enc: Option<String>,
    #[serde(rename = "zip")]
    _zip: Option<String>,
    #[serde(rename = "url")]
    _url: Option<String>,
    #[serde(rename = "nonce")]
    _nonce: Option<String>,
    // Other members are skipped unread, as by `jsonwebtoken`. (Collecting them with `flatten`
    // made serde buffer the whole header first: most of the cost of reading it.)
}

/// The encoded header and payload of `header.payload.signature`, split as `jsonwebtoken` splits.
fn parts(token: &str) -> Option<(&str, &str)> {
    let (message, _signature) = token.rsplit_once('.')?;
    message.rsplit_once('.')
}

/// The token's `alg` and `kid`; `None` when the header is malformed.
pub fn header(token: &str) -> Option<(KeyAlg, Option<String>)> {
    let bytes = B64.decode(parts(token)?.0).ok()?;
    let h: Header = serde_json::from_slice(&bytes).ok()?;
    Some((h.alg, h.kid))
}

/// The token's claims, unchecked; `None` when the payload is malformed.
pub fn claims(token: &str) -> Option<Map<String, Value>> {
    let bytes = B64.decode(parts(token)?.1).ok()?;
    serde_json::from_slice(&bytes).ok()
}
