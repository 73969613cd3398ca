//! `tollgate:policy/crypto`: public-key signature checks run natively for policies. Stateless
//! and side-effect free, so it needs no grant: any binding may use it.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;

use crate::policy::bindings::crypto;
use crate::policy::engine::Host;

/// Messages larger than this are refused: a JWS signing input is a few KiB at most.
const MAX_MESSAGE: usize = 1 << 20;

impl crypto::Host for Host {
    fn verify_signature(&mut self, alg: String, key: String, message: Vec<u8>, signature: String) -> wasmtime::Result<Result<bool, String>> {
        Ok(verify(&alg, &key, &message, &signature))
    }
}

fn verify(alg: &str, key: &str, message: &[u8], signature: &str) -> Result<bool, String> {
    let alg: Algorithm = alg.parse().map_err(|_| format!("unknown algorithm '{alg}'"))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err("shared-secret algorithms are not checked here".into());
    }
    if message.len() > MAX_MESSAGE {
        return Err("the message is too large".into());
    }
    let jwk: Jwk = serde_json::from_str(key).map_err(|e| format!("not a usable JWK: {e}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| format!("not a usable public key: {e}"))?;
    // A key of another family for `alg` is an error from the backend, not a forgery: say so.
    jsonwebtoken::crypto::verify(signature, message, &key, alg).map_err(|e| format!("cannot check the signature: {e}"))
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

    #[test]
    fn secrets_unknown_algorithms_and_keys_that_do_not_fit_are_errors() {
        assert!(verify("HS256", KEY, b"m", SIG).is_err());
        assert!(verify("XS999", KEY, b"m", SIG).is_err());
        assert!(verify("ES256", "{}", b"m", SIG).is_err());
        assert!(verify("RS256", KEY, INPUT.as_bytes(), SIG).map_or(true, |ok| !ok), "an EC key never passes an RSA check");
    }
}
