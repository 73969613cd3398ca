//! An identity provider run by the test: signing keys generated at test time, an OpenID
//! discovery document, a JWKS whose keys the test can rotate, and an OAuth 2.0 token endpoint
//! for client credentials. It counts what it is asked, so a test can tell when the gateway
//! fetched keys or tokens.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// A signing key: its private half for signing, its public half as a JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    alg: Algorithm,
    private: EncodingKey,
    pub jwk: Value,
}

impl Key {
    /// An RSA key for RS256. The primes are generated once per test run (unoptimized, that
    /// takes a while) and each key gets its own `kid`.
    pub fn rsa(kid: &str) -> Key {
        Key::rsa_from(kid, rsa_primary())
    }

    /// A second RSA key pair, distinct from [`Key::rsa`]'s, for rotations.
    pub fn rsa_other(kid: &str) -> Key {
        Key::rsa_from(kid, rsa_secondary())
    }

    fn rsa_from(kid: &str, k: &rsa::RsaPrivateKey) -> Key {
        let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be()) });
        let der = k.to_pkcs1_der().expect("pkcs1 der");
        Key { kid: kid.into(), alg: Algorithm::RS256, private: EncodingKey::from_rsa_der(der.as_bytes()), jwk }
    }

    /// A P-256 key for ES256.
    pub fn ec(kid: &str) -> Key {
        let k = p256::SecretKey::random(&mut rand08::thread_rng());
        let point = k.public_key().to_encoded_point(false);
        let jwk =
            json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": B64.encode(point.x().expect("x")), "y": B64.encode(point.y().expect("y")) });
        let der = k.to_pkcs8_der().expect("pkcs8 der");
        Key { kid: kid.into(), alg: Algorithm::ES256, private: EncodingKey::from_ec_der(der.as_bytes()), jwk }
    }

    /// A token with these claims, signed with this key and naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.private).expect("sign a token")
    }
}

fn rsa_primary() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).expect("an RSA key"))
}

fn rsa_secondary() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).expect("an RSA key"))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch").as_secs()
}

#[derive(Default)]
struct Shared {
    issuer: OnceLock<String>,
    published: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    token_requests: Mutex<Vec<(HeaderMap, String)>>,
}

/// The identity provider, listening on a loopback port of its own.
pub struct Idp {
    /// The issuer: `http://127.0.0.1:PORT`.
    pub issuer: String,
    shared: Arc<Shared>,
}

impl Idp {
    pub async fn start() -> Idp {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", axum::routing::get(discovery))
            .route("/jwks", axum::routing::get(jwks))
            .route("/token", axum::routing::post(token))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the identity provider");
        let issuer = format!("http://{}", listener.local_addr().expect("local addr"));
        shared.issuer.set(issuer.clone()).expect("set once");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Idp { issuer, shared }
    }

    /// The standard `jwt` policy bound to trust this provider for `audience`, allowed to fetch
    /// its JWKS.
    pub fn jwt_binding(&self, audience: &str) -> serde_json::Value {
        let mut jwt = crate::standard::policy("jwt", serde_json::json!({ "jwks_url": self.jwks_url(), "issuers": [self.issuer], "audiences": [audience] }));
        jwt["allow_hosts"] = serde_json::json!(["127.0.0.1"]);
        jwt
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// Replaces the keys the JWKS publishes.
    pub fn publish(&self, keys: &[&Key]) {
        *self.shared.published.lock().expect("keys lock") = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// The requests the token endpoint got: headers and form body.
    pub fn token_requests(&self) -> Vec<(HeaderMap, String)> {
        self.shared.token_requests.lock().expect("token lock").clone()
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let iss = s.issuer.get().expect("issuer set");
    Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/jwks"),
        "token_endpoint": format!("{iss}/token"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> Json<Value> {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": s.published.lock().expect("keys lock").clone() }))
}

/// Client credentials: every request gets a new token, numbered, valid for an hour.
async fn token(State(s): State<Arc<Shared>>, h: HeaderMap, body: String) -> Json<Value> {
    let n = {
        let mut reqs = s.token_requests.lock().expect("token lock");
        reqs.push((h, body));
        reqs.len()
    };
    Json(json!({ "access_token": format!("backend-token-{n}"), "token_type": "Bearer", "expires_in": 3600 }))
}
