//! Signing keys made at bench start, a JWKS served over HTTP on a loopback port (so the `jwt`
//! policy fetches it once and then runs on the warm copy in shared state, as it does in
//! production), and tokens signed with those keys.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://bench.tollgate.invalid";
pub const AUDIENCE: &str = "tollgate-bench";

pub struct Key {
    kid: &'static str,
    alg: Algorithm,
    private: EncodingKey,
    pub jwk: Value,
}

impl Key {
    /// A 2048-bit RSA key for RS256, the size identity providers issue.
    pub fn rsa(kid: &'static str) -> Key {
        let k = rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).expect("an RSA key");
        let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be()) });
        let der = k.to_pkcs1_der().expect("pkcs1 der");
        Key { kid, alg: Algorithm::RS256, private: EncodingKey::from_rsa_der(der.as_bytes()), jwk }
    }

    /// A P-256 key for ES256.
    pub fn ec(kid: &'static str) -> Key {
        let k = p256::SecretKey::random(&mut rand08::thread_rng());
        let point = k.public_key().to_encoded_point(false);
        let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256", "x": B64.encode(point.x().expect("x")), "y": B64.encode(point.y().expect("y")) });
        let der = k.to_pkcs8_der().expect("pkcs8 der");
        Key { kid, alg: Algorithm::ES256, private: EncodingKey::from_ec_der(der.as_bytes()), jwk }
    }

    /// A token for the bench audience, valid for a day, with typical claims.
    pub fn token(&self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let claims =
            json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "azp": "bench-client", "scope": "mcp tools.read", "iat": now, "exp": now + 86_400 });
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&h, &claims, &self.private).expect("signing")
    }
}

/// Serves `{ keys }` at `http://127.0.0.1:PORT/jwks` from a thread of its own for the rest of
/// the process, and returns that URL.
pub fn serve_jwks(keys: &[&Key]) -> String {
    let doc = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/jwks", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new().route("/jwks", get(move || async move { Json(doc) }));
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("the JWKS server runs");
        });
    });
    url
}
