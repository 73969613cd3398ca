//! Signatures against keys generated here, signed as an identity provider would sign them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm as Signing, EncodingKey, Header, encode};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::*;

struct Rsa {
    der: Vec<u8>,
    jwk: Value,
}

struct Ec {
    der: Vec<u8>,
    jwk: Value,
}

fn rsa_key(kid: &str) -> Rsa {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "n": B64.encode(key.n().to_bytes_be()), "e": B64.encode(key.e().to_bytes_be()) });
    Rsa { der: key.to_pkcs1_der().unwrap().as_bytes().to_vec(), jwk }
}

fn ec_key(kid: &str) -> Ec {
    let key = p256::SecretKey::random(&mut rand::thread_rng());
    let point = key.public_key().to_encoded_point(false);
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()) });
    Ec { der: key.to_pkcs8_der().unwrap().as_bytes().to_vec(), jwk }
}

fn sign(alg: Signing, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    encode(&h, claims, key).unwrap()
}

fn jwks(keys: &[&Value]) -> Vec<Jwk> {
    parse_jwks(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({ "sub": "alice", "iss": "https://idp", "aud": "https://gw/s/mcp", "exp": 4_000_000_000u64, "scope": "mcp" })
}

const BOTH: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

#[test]
fn rs256_and_es256_tokens_verify_against_their_own_keys_only() {
    let (r, e) = (rsa_key("r1"), ec_key("e1"));
    let keys = jwks(&[&r.jwk, &e.jwk]);
    let rs = sign(Signing::RS256, Some("r1"), &EncodingKey::from_rsa_der(&r.der), &claims());
    let es = sign(Signing::ES256, Some("e1"), &EncodingKey::from_ec_der(&e.der), &claims());
    assert_eq!(verify(&rs, &keys, &BOTH).unwrap()["sub"], "alice");
    assert_eq!(verify(&es, &keys, &BOTH).unwrap()["sub"], "alice");
    // Signed by the EC key but claiming the RSA key's id: the key does not fit the algorithm.
    let crossed = sign(Signing::ES256, Some("r1"), &EncodingKey::from_ec_der(&e.der), &claims());
    assert!(matches!(verify(&crossed, &keys, &BOTH), Err(Refusal::Invalid(m)) if m.contains("no key fits")));
    assert!(matches!(verify(&rs, &keys, &[Algorithm::ES256]), Err(Refusal::Invalid(m)) if m.contains("not accepted")));
    let unknown = sign(Signing::RS256, Some("r9"), &EncodingKey::from_rsa_der(&r.der), &claims());
    assert_eq!(verify(&unknown, &keys, &BOTH), Err(Refusal::UnknownKey));
    let no_kid = sign(Signing::RS256, None, &EncodingKey::from_rsa_der(&r.der), &claims());
    assert!(verify(&no_kid, &keys, &BOTH).is_ok(), "without kid, the keys that fit are tried");
}

#[test]
fn forged_tokens_are_refused() {
    let r = rsa_key("r1");
    let keys = jwks(&[&r.jwk]);
    let good = sign(Signing::RS256, Some("r1"), &EncodingKey::from_rsa_der(&r.der), &claims());
    // Another subject in the payload, the old signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged_claims = claims();
    forged_claims["sub"] = json!("mallory");
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(forged_claims.to_string()), parts[2]);
    assert_eq!(verify(&tampered, &keys, &BOTH), Err(Refusal::Invalid("the token's signature is invalid".into())));
    // HMAC keyed with the RSA public key: the classic confusion attack.
    let n = r.jwk["n"].as_str().unwrap();
    let hs = sign(Signing::HS256, Some("r1"), &EncodingKey::from_secret(n.as_bytes()), &claims());
    assert!(matches!(verify(&hs, &keys, &BOTH), Err(Refusal::Invalid(m)) if m.contains("HS256")));
    // alg none, no signature.
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), B64.encode(claims().to_string()));
    assert!(verify(&none, &keys, &BOTH).is_err());
    for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(20_000), "eyJhbGciOiJSUzI1NiJ9.!!!.###"] {
        assert!(verify(junk, &keys, &BOTH).is_err(), "{junk:.20}");
    }
}

#[test]
fn jwks_documents_keep_only_usable_signing_keys() {
    let r = rsa_key("r1");
    let doc = json!({ "keys": [
        r.jwk,
        { "kty": "oct", "kid": "h", "k": "c2VjcmV0" },
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": r.jwk["n"], "e": "AQAB" },
        { "kty": "XYZ", "kid": "odd" },
        { "kty": "RSA", "kid": "weird-alg", "alg": "RSA-OAEP-512", "n": "AQAB", "e": "AQAB" },
    ] });
    let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.clone().unwrap()).collect::<Vec<_>>(), ["r1"]);
    assert!(parse_jwks(b"<html>").is_err());
    assert!(parse_jwks(b"{}").is_err());
    assert!(public_jwk(json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB" })).unwrap_err().contains("private"));
}

#[test]
fn an_admitted_caller_carries_subject_scopes_and_chosen_claims() {
    let c = json!({ "jwks_url": "https://idp/jwks", "audiences": ["a"], "attributes": { "subscription": "azp", "groups": "groups" } });
    let s = serde_json::from_value::<Config>(c).unwrap().check().unwrap();
    let claims = json!({ "sub": "alice", "iss": "https://idp", "azp": "app-1", "groups": ["a", "b"] });
    let m = attributes(&s, claims.as_object().unwrap(), &["mcp".into(), "read".into()]);
    let got: std::collections::BTreeMap<_, _> = m.attributes.into_iter().collect();
    assert_eq!(got["auth.sub"], "alice");
    assert_eq!(got["auth.iss"], "https://idp");
    assert_eq!(got["auth.scopes"], "mcp read");
    assert_eq!(got["subscription"], "app-1");
    assert_eq!(got["groups"], "[\"a\",\"b\"]");
}

#[test]
fn a_remembered_token_is_forgotten_when_the_key_source_or_the_algorithms_change() {
    let settings = |c: Value| serde_json::from_value::<Config>(c).unwrap().check().unwrap();
    let base = settings(json!({ "jwks_url": "https://idp/jwks", "audiences": ["a"] }));
    let narrower = settings(json!({ "jwks_url": "https://idp/jwks", "audiences": ["a"], "algorithms": ["ES256"] }));
    let elsewhere = settings(json!({ "jwks_url": "https://other/jwks", "audiences": ["a"] }));
    let same = settings(json!({ "jwks_url": "https://idp/jwks", "audiences": ["b"] }));
    let key = |s: &Settings| memo_key(s, "t.o.k");
    assert_ne!(key(&base), key(&narrower));
    assert_ne!(key(&base), key(&elsewhere));
    // The claims are checked on every call, so other settings keep what was verified.
    assert_eq!(key(&base), key(&same));
}

#[test]
fn a_remembered_token_is_kept_no_longer_than_the_keys_it_was_checked_with() {
    let settings = |c: Value| serde_json::from_value::<Config>(c).unwrap().check().unwrap();
    let fetched = settings(json!({ "jwks_url": "https://idp/jwks", "audiences": ["a"], "jwks_ttl": "2m" }));
    let now = 1_000_000;
    let in_a_day = now + 86_400_000;
    assert_eq!(remember_for(&fetched, in_a_day, now), 120_000, "renewed keys decide again");
    assert_eq!(remember_for(&fetched, now + 30_000, now), 30_000, "an expiring token goes when it expires");
    assert_eq!(remember_for(&fetched, now - 1, now), 1, "an expired token is never kept");
    let inline = settings(json!({ "keys": [ec_key("k").jwk], "audiences": ["a"] }));
    assert_eq!(remember_for(&inline, in_a_day, now), MAX_REMEMBER_MS, "inline keys change only with the config, which the memo key names");
}
