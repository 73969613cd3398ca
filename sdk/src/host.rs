//! What the gateway lends a policy: shared state, outbound HTTP, secrets, its log, a clock.

use crate::bindings::tollgate::policy as wit;

/// State shared by every instance of this binding, kept by the gateway across requests and
/// reloads. Keys are private to the binding. Errors mean the store is unavailable.
pub mod state {
    use super::wit::state as raw;

    /// The value under `key`, if any and not expired.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        raw::get(key)
    }
    /// Stores `value`, expiring after `ttl_ms` when given.
    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), String> {
        raw::set(key, value, ttl_ms)
    }
    /// Atomically adds `delta` to a counter (created at 0 with `ttl_ms`) and returns the new value.
    pub fn incr(key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, String> {
        raw::incr(key, delta, ttl_ms)
    }
    /// Writes `new` only if the current value is `expected` (`None`: absent). True if written.
    pub fn cas(key: &str, expected: Option<&[u8]>, new: &[u8], ttl_ms: Option<u64>) -> Result<bool, String> {
        raw::cas(key, expected, new, ttl_ms)
    }
    /// Removes `key`.
    pub fn delete(key: &str) -> Result<(), String> {
        raw::delete(key)
    }
}

/// HTTP to the hosts the binding's `allow_hosts` lists; others are `FetchError::Denied`.
pub mod http {
    pub use super::wit::outbound::{FetchError, Request, Response};

    /// Sends a request and waits for the whole response.
    pub fn fetch(req: &Request) -> Result<Response, FetchError> {
        super::wit::outbound::fetch(req)
    }

    /// A GET of `url`.
    pub fn get(url: &str) -> Result<Response, FetchError> {
        fetch(&Request { method: "GET".into(), url: url.into(), headers: Vec::new(), body: None, timeout_ms: None })
    }
}

/// Lines in the gateway's log, under the policy's name and the server's.
pub mod log {
    use super::wit::log::{Level, log};

    /// Debug detail.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Normal operation.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Something an operator should look at.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Something failed.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// A secret the binding was granted (`secrets:` in the config), by name.
pub fn secret(name: &str) -> Option<String> {
    wit::secrets::get(name)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    wit::clock::now_ms()
}

/// Signature checks run by the gateway natively: far cheaper than the same check compiled to
/// Wasm, and the policy ships without the bignum code.
pub mod crypto {
    use crate::bindings::tollgate::policy::crypto as wit;

    /// Whether `signature` (base64url, as in a JWS) is valid over `message` for the public JWK
    /// `key_jwk` (JSON) under `alg` (`RS256`, `PS256`, `ES256`, `EdDSA`, ...). `Err` when the key
    /// is not a usable public key for `alg`; shared-secret algorithms are refused.
    pub fn verify_signature(alg: &str, key_jwk: &str, message: &[u8], signature: &str) -> Result<bool, String> {
        wit::verify_signature(alg, key_jwk, message, signature)
    }
}
