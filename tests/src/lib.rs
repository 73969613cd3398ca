//! Shared support for the end-to-end tests: a small vocabulary for starting the real gateway
//! binary, real MCP backends and real MCP clients, so each test reads as what it checks.

pub mod admin;
pub mod backend;
pub mod caller;
pub mod client;
pub mod gateway;
pub mod idp;
pub mod otlp;
pub mod petstore;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod recorder;
pub mod redis;
pub mod standard;
pub mod tls_front;

use std::future::Future;
use std::time::Duration;

/// Awaits `fut`, failing the test with `what` if it takes longer than `secs`: nothing here may hang.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {secs} s"),
    }
}

/// Polls `check` every 50 ms until it holds, failing the test with `what` after `secs`.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: still not true after {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// As [`eventually`], for a check that must await (an HTTP request).
pub async fn eventually_async<F: Future<Output = bool>>(secs: u64, what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: still not true after {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits, if needed, so that the next `margin_s` seconds lie in one window of `window_s`
/// seconds aligned to the epoch, as the rate limit's and the quota's windows are.
pub async fn clear_of_window_edge(window_s: u64, margin_s: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch");
    let into = now.as_secs() % window_s;
    if into + margin_s >= window_s {
        tokio::time::sleep(Duration::from_secs(window_s - into + 1)).await;
    }
}
