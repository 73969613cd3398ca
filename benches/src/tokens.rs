//! Tokens for rows with a `jwt` policy. At start the harness makes an RSA 2048 key pair; its
//! public half goes into config templates as an inline JWK (`{JWT_JWKS_KEY}`), and tokens are
//! RS256-signed with the private half, which never leaves this process.
//!
//! A row either sends one token for all its calls (`repeated`: after the first call the
//! gateway finds it among the tokens it verified) or a new one per call (`fresh`: a new `jti`
//! and `iat`, so every call pays for a signature check). Fresh tokens are minted before each
//! measurement, in bulk on every core, so signing never runs in a measured window; tokens left
//! over are kept for the row's next measurement, as none of them has been sent yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hyper::header::HeaderValue;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

pub const ISSUER: &str = "https://bench.tollgate.invalid";
pub const AUDIENCE: &str = "tollgate-bench";
pub const SUBJECT: &str = "bench-user";
/// Tokens expire this long after they are minted.
pub const LIFETIME_S: u64 = 3600;

/// Which bearer token a row's calls carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenMode {
    /// No `authorization` header (beyond any `--gateway-header`).
    None,
    /// One token for the whole row.
    Repeated,
    /// A new token for every call.
    Fresh,
}

impl TokenMode {
    pub fn parse(s: &str) -> Option<TokenMode> {
        match s {
            "none" => Some(TokenMode::None),
            "repeated" => Some(TokenMode::Repeated),
            "fresh" => Some(TokenMode::Fresh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenMode::None => "none",
            TokenMode::Repeated => "repeated",
            TokenMode::Fresh => "fresh",
        }
    }
}

/// The run's signing key and what the gateway needs to check its tokens.
pub struct Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
    /// The JWS header, base64url-encoded once.
    header: String,
    /// The public JWK, as inline JSON for `{JWT_JWKS_KEY}`.
    pub jwk: String,
    /// Makes `jti`s unique across runs as well as within one.
    nonce: String,
    counter: AtomicU64,
}

impl Signer {
    /// Makes a 2048-bit key pair (a second or so) and checks a token made with it verifies
    /// against its own JWK, the way the gateway checks it.
    pub fn generate() -> anyhow::Result<Arc<Signer>> {
        let private = rsa::RsaPrivateKey::new(&mut rand08::rngs::OsRng, 2048).context("making an RSA key")?;
        let jwk = json!({
            "kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
            "n": B64.encode(private.n().to_bytes_be()), "e": B64.encode(private.e().to_bytes_be()),
        })
        .to_string();
        let der = private.to_pkcs1_der().context("encoding the RSA key")?;
        // ring signs several times faster than the `rsa` crate: fewer seconds minting.
        let key = RsaKeyPair::from_der(der.as_bytes()).map_err(|e| anyhow!("ring refused the key: {e}"))?;
        let header = B64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "bench"}).to_string());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let nonce = format!("{:x}", nanos ^ u128::from(std::process::id()));
        let signer = Signer { key, rng: SystemRandom::new(), header, jwk, nonce, counter: AtomicU64::new(0) };
        signer.check()?;
        Ok(Arc::new(signer))
    }

    /// A new token: `iss`, `aud`, `sub`, `iat` now, `exp` an hour ahead, a unique `jti`.
    pub fn mint(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT,
            "iat": now, "exp": now + LIFETIME_S, "jti": format!("{}-{n}", self.nonce),
        });
        let signing_input = format!("{}.{}", self.header, B64.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature).expect("RSA signing does not fail");
        format!("{signing_input}.{}", B64.encode(signature))
    }

    /// A new token as an `authorization` header value.
    pub fn bearer(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {}", self.mint())).expect("a token is a valid header value")
    }

    /// `count` new bearer values, minted on every core. Returns them with the rate reached.
    pub fn mint_many(self: &Arc<Self>, count: usize) -> (Vec<HeaderValue>, f64) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(count.max(1));
        let started = Instant::now();
        let per_thread = count.div_ceil(threads);
        let mut out = Vec::with_capacity(count);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let n = per_thread.min(count.saturating_sub(t * per_thread));
                    scope.spawn(move || (0..n).map(|_| self.bearer()).collect::<Vec<_>>())
                })
                .collect();
            for handle in handles {
                out.extend(handle.join().expect("a minting thread panicked"));
            }
        });
        let rate = count as f64 / started.elapsed().as_secs_f64().max(1e-9);
        (out, rate)
    }

    /// Verifies a token against the JWK with `jsonwebtoken`, the crate the gateway checks
    /// signatures with, so a key or encoding slip shows here rather than as 401s.
    fn check(&self) -> anyhow::Result<()> {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&self.jwk)?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let token = self.mint();
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).context("a bench token does not verify")?;
        anyhow::ensure!(data.claims["sub"] == SUBJECT, "the bench token lost its subject");
        Ok(())
    }
}

/// The fresh tokens a row has ready, carried from one measurement to the next.
#[derive(Default)]
pub struct Stock {
    tokens: Vec<HeaderValue>,
    /// Minted so far for this row, and the seconds spent minting them.
    pub minted: u64,
    pub mint_seconds: f64,
}

impl Stock {
    /// Mints until `needed` tokens are in stock.
    pub async fn top_up(&mut self, signer: &Arc<Signer>, needed: usize) -> anyhow::Result<()> {
        let missing = needed.saturating_sub(self.tokens.len());
        if missing == 0 {
            return Ok(());
        }
        let signer = signer.clone();
        let started = Instant::now();
        let (tokens, rate) = tokio::task::spawn_blocking(move || signer.mint_many(missing)).await?;
        self.mint_seconds += started.elapsed().as_secs_f64();
        self.minted += tokens.len() as u64;
        eprintln!("  minted {missing} fresh tokens ({rate:.0}/s)");
        self.tokens.extend(tokens);
        Ok(())
    }

    /// Hands the stock to a measurement.
    pub fn issue(&mut self, signer: &Arc<Signer>) -> Arc<Fresh> {
        Arc::new(Fresh { tokens: std::mem::take(&mut self.tokens), next: AtomicUsize::new(0), signer: signer.clone(), late: AtomicU64::new(0) })
    }

    /// Takes back what a measurement did not send.
    pub fn restock(&mut self, fresh: Arc<Fresh>) -> u64 {
        let late = fresh.late.load(Ordering::Relaxed);
        if let Ok(fresh) = Arc::try_unwrap(fresh) {
            let used = fresh.next.load(Ordering::Relaxed).min(fresh.tokens.len());
            self.tokens.extend(fresh.tokens.into_iter().skip(used));
        }
        late
    }
}

/// Tokens for one measurement: each call takes the next one without a lock.
pub struct Fresh {
    tokens: Vec<HeaderValue>,
    next: AtomicUsize,
    signer: Arc<Signer>,
    /// Calls that found the stock empty and had a token minted on the spot.
    late: AtomicU64,
}

impl Fresh {
    /// The next unused token. Should the stock run out, one is minted here: the caller takes
    /// its token before starting the call's clock, and the report shows how often it happened.
    pub fn take(&self) -> HeaderValue {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.tokens.get(i) {
            Some(token) => token.clone(),
            None => {
                self.late.fetch_add(1, Ordering::Relaxed);
                self.signer.bearer()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tokens_verify_and_differ() {
        let signer = Signer::generate().unwrap();
        let (tokens, _) = signer.mint_many(3);
        assert_eq!(tokens.len(), 3);
        assert_ne!(tokens[0], tokens[1]);
        let mut stock = Stock { tokens, ..Stock::default() };
        let fresh = stock.issue(&signer);
        let first = fresh.take();
        assert!(first.to_str().unwrap().starts_with("Bearer ey"));
        assert_eq!(stock.restock(fresh), 0);
        assert_eq!(stock.tokens.len(), 2);
    }
}
