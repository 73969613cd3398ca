//! The signature: pick the key the token names, of a type that fits the token's algorithm,
//! and have the gateway check it natively (the `crypto` import). A key is
//! only ever used with its own family's algorithms: no HMAC/RSA confusion, and no `none`.

use serde_json::{Map, Value};

use crate::jose::{self, Algorithm, Curve, Jwk, KeyAlg, Kind};

/// At most this many keys are tried for a token without `kid`.
const MAX_TRIES: usize = 8;

#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// The token names a key this set does not have: a refreshed set might.
    UnknownKey,
    Invalid(String),
}

/// One public signing key from JSON; shared-secret (`oct`) keys and private keys are refused.
pub fn public_jwk(v: Value) -> Result<Jwk, String> {
    if v.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err("a shared-secret (oct) key cannot be used: it would let its holders forge tokens".into());
    }
    if v.get("d").is_some() {
        return Err("this is a private key; give the public key only".into());
    }
    Jwk::from_json(v).map_err(|e| format!("not a usable JWK: {e}"))
}

/// The signing keys of a JWKS document; keys that cannot be used (unknown types, encryption
/// keys, shared secrets) are left out rather than failing the whole set.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "the JWKS document is not JSON".to_owned())?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS document has no keys list")?;
    Ok(keys.iter().filter_map(|k| public_jwk(k.clone()).ok()).filter(signing).collect())
}

fn signing(k: &Jwk) -> bool {
    k.key_use.as_deref() != Some("enc") && k.alg != Some(KeyAlg::Unknown) && k.kind != Kind::Other
}

/// Whether `key` may verify `alg`: of its family, and of its own `alg` when it names one.
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    if key.alg.is_some_and(|ka| ka.algorithm() != Some(alg)) {
        return false;
    }
    match (key.kind, alg) {
        (Kind::Rsa, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) => true,
        (Kind::Ec(curve), Algorithm::ES256) => curve == Curve::P256,
        (Kind::Ec(curve), Algorithm::ES384) => curve == Curve::P384,
        (Kind::Okp, Algorithm::EdDSA) => true,
        _ => false,
    }
}

fn malformed() -> Refusal {
    Refusal::Invalid("the token is malformed".into())
}

/// The token's algorithm and key id, once the algorithm is one the binding accepts.
pub fn header(token: &str, allowed: &[Algorithm]) -> Result<(Algorithm, Option<String>), Refusal> {
    let (named, kid) = jose::header(token).ok_or_else(malformed)?;
    match named.algorithm() {
        Some(alg) if allowed.contains(&alg) => Ok((alg, kid)),
        // `none` and key-encryption names are no JWS algorithm: malformed, as for `jsonwebtoken`.
        None if !matches!(named, KeyAlg::HS256 | KeyAlg::HS384 | KeyAlg::HS512) => Err(malformed()),
        _ => Err(Refusal::Invalid(format!("the token's algorithm {named:?} is not accepted"))),
    }
}

/// Verifies the signature of `token` against `keys` and returns its claims, unchecked.
pub fn verify(token: &str, keys: &[Jwk], allowed: &[Algorithm]) -> Result<Map<String, Value>, Refusal> {
    let (alg, kid) = header(token, allowed)?;
    let named: Vec<&Jwk> = match &kid {
        Some(kid) => keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
        None => keys.iter().collect(),
    };
    if named.is_empty() {
        return Err(if kid.is_some() { Refusal::UnknownKey } else { Refusal::Invalid("no signing key is known".into()) });
    }
    let mut tried = false;
    for key in named.into_iter().filter(|k| fits(k, alg)).take(MAX_TRIES) {
        tried = true;
        if signed_by(token, key, alg)? {
            return jose::claims(token).ok_or_else(malformed);
        }
    }
    Err(Refusal::Invalid(if tried { "the token's signature is invalid".into() } else { format!("no key fits the token's algorithm {alg:?}") }))
}

/// Whether `key` signed `token`. In the gateway the check runs natively, through the `crypto`
/// import: an RSA check compiled to Wasm costs milliseconds. A key the check cannot use counts
/// as not the signer.
#[cfg(target_family = "wasm")]
fn signed_by(token: &str, key: &Jwk, alg: Algorithm) -> Result<bool, Refusal> {
    let (input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    Ok(tollgate_policy_sdk::crypto::verify_signature(alg.name(), key.text(), input.as_bytes(), signature).unwrap_or(false))
}

/// The same check natively (the unit tests), as the gateway runs it: the key's JSON and the
/// algorithm's name read by `jsonwebtoken`.
#[cfg(not(target_family = "wasm"))]
fn signed_by(token: &str, key: &Jwk, alg: Algorithm) -> Result<bool, Refusal> {
    let (input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let Ok(jwk) = serde_json::from_str::<jsonwebtoken::jwk::Jwk>(key.text()) else { return Ok(false) };
    let (Ok(dk), Ok(alg)) = (jsonwebtoken::DecodingKey::from_jwk(&jwk), alg.name().parse()) else { return Ok(false) };
    Ok(jsonwebtoken::crypto::verify(signature, input.as_bytes(), &dk, alg).unwrap_or(false))
}
