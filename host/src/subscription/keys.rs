//! Subscription keys: 256 random bits, shown to the subscriber once and kept only as SHA-256.
//!
//! A plain SHA-256 suffices (no slow password hash): the key is random, so there is no
//! dictionary to try, and a stolen database gives no usable key.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The digest a key is kept as, hex-encoded in the record.
pub type KeyHash = [u8; 32];

/// A fresh key: `tgk_` and 43 characters of URL-safe base64.
pub fn generate() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("tgk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of two digests.
pub fn same(a: &KeyHash, b: &KeyHash) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_hash_stably() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("tgk_") && a.len() == 47, "{a}");
        assert!(same(&hash(&a), &hash(&a)));
        assert!(!same(&hash(&a), &hash(&b)));
    }
}
