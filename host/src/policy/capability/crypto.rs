//! `tollgate:policy/crypto`: public-key signature checks run natively for policies. Stateless
//! and side-effect free, so it needs no grant: any binding may use it. Checked with `ring`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;

use crate::policy::bindings::crypto;
use crate::policy::engine::Host;

/// Messages larger than this are refused: a JWS signing input is a few KiB at most.
const MAX_MESSAGE: usize = 1 << 20;

impl crypto::Host for Host {
    fn verify_signature(&mut self, alg: String, key: String, message: Vec<u8>, signature: String) -> wasmtime::Result<Result<bool, String>> {
        Ok(verify(&alg, &key, &message, &signature))
    }
}

/// The members of a public JWK a check reads (RFC 7517, 7518 section 6, RFC 8037).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// How a JWS algorithm is checked: `ring`'s verifiers, the ones rustls trusts. RSA keys must
/// have at least 2048 bits.
enum Check {
    Rsa(&'static signature::RsaParameters),
    Ec(&'static signature::EcdsaVerificationAlgorithm, &'static str),
    Ed25519,
}

fn check_for(alg: &str) -> Result<Check, String> {
    Ok(match alg {
        "RS256" => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => Check::Ec(&signature::ECDSA_P256_SHA256_FIXED, "P-256"),
        "ES384" => Check::Ec(&signature::ECDSA_P384_SHA384_FIXED, "P-384"),
        "EdDSA" => Check::Ed25519,
        "HS256" | "HS384" | "HS512" => return Err("shared-secret algorithms are not checked here".into()),
        other => return Err(format!("unknown algorithm '{other}'")),
    })
}

fn verify(alg: &str, key: &str, message: &[u8], signature: &str) -> Result<bool, String> {
    let check = check_for(alg)?;
    if message.len() > MAX_MESSAGE {
        return Err("the message is too large".into());
    }
    let jwk: Jwk = serde_json::from_str(key).map_err(|e| format!("not a usable JWK: {e}"))?;
    let Ok(signature) = B64.decode(signature) else { return Ok(false) };
    let part = |v: &Option<String>, name: &str| -> Result<Vec<u8>, String> {
        let v = v.as_deref().ok_or_else(|| format!("not a usable public key: no '{name}'"))?;
        B64.decode(v).map_err(|_| format!("not a usable public key: '{name}' is not base64url"))
    };
    // A key of another family for `alg` is an error from the backend, not a forgery: say so.
    let family = |want: &str| Err(format!("cannot check the signature: {alg} needs a key of type {want}, not {}", jwk.kty));
    match check {
        Check::Rsa(params) => {
            if jwk.kty != "RSA" {
                return family("RSA");
            }
            let (n, e) = (part(&jwk.n, "n")?, part(&jwk.e, "e")?);
            Ok(RsaPublicKeyComponents { n: &n, e: &e }.verify(params, message, &signature).is_ok())
        }
        Check::Ec(algorithm, curve) => {
            if jwk.kty != "EC" || jwk.crv.as_deref() != Some(curve) {
                return family(&format!("EC on {curve}"));
            }
            let (x, y) = (part(&jwk.x, "x")?, part(&jwk.y, "y")?);
            let point = [&[4u8][..], &x, &y].concat();
            Ok(checked(algorithm, &point, message, &signature))
        }
        Check::Ed25519 => {
            if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
                return family("OKP on Ed25519");
            }
            Ok(checked(&signature::ED25519, &part(&jwk.x, "x")?, message, &signature))
        }
    }
}

fn checked(algorithm: &'static dyn VerificationAlgorithm, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(algorithm, key).verify(message, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 appendix A.3: an ES256 JWS and its key.
    const KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    const INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const SIG: &str = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

    #[test]
    fn a_published_signature_verifies_and_a_changed_message_does_not() {
        assert_eq!(verify("ES256", KEY, INPUT.as_bytes(), SIG), Ok(true));
        let mut changed = INPUT.as_bytes().to_vec();
        changed[40] ^= 1;
        assert_eq!(verify("ES256", KEY, &changed, SIG), Ok(false));
    }

    /// Keys made here with `ring` (which cannot make RSA keys; RS256 is checked end to end
    /// against a real JWKS in the `jwt` policy's tests).
    #[test]
    fn es384_and_eddsa_signatures_verify_and_changed_ones_do_not() {
        use ring::rand::SystemRandom;
        use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
        let rng = SystemRandom::new();
        let message = b"header.claims";

        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(48);
        let key = format!(r#"{{"kty":"EC","crv":"P-384","x":"{}","y":"{}"}}"#, B64.encode(x), B64.encode(y));
        let sig = B64.encode(pair.sign(&rng, message).unwrap().as_ref());
        assert_eq!(verify("ES384", &key, message, &sig), Ok(true));
        assert_eq!(verify("ES384", &key, b"header.claimz", &sig), Ok(false));
        assert!(verify("ES256", &key, message, &sig).is_err(), "a P-384 key does not check ES256");

        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, B64.encode(pair.public_key().as_ref()));
        let sig = B64.encode(pair.sign(message).as_ref());
        assert_eq!(verify("EdDSA", &key, message, &sig), Ok(true));
        assert_eq!(verify("EdDSA", &key, message, &B64.encode([0u8; 64])), Ok(false));
        assert_eq!(verify("EdDSA", &key, message, "not base64!"), Ok(false));
    }

    #[test]
    fn secrets_unknown_algorithms_and_keys_that_do_not_fit_are_errors() {
        assert!(verify("HS256", KEY, b"m", SIG).is_err());
        assert!(verify("XS999", KEY, b"m", SIG).is_err());
        assert!(verify("ES256", "{}", b"m", SIG).is_err());
        assert!(verify("RS256", KEY, INPUT.as_bytes(), SIG).map_or(true, |ok| !ok), "an EC key never passes an RSA check");
    }
}
