//! `rate-limit` under real concurrency: twenty callers at once against a limit of five.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Barrier;

use tollgate_tests::caller::header;
use tollgate_tests::caller::text;
use tollgate_tests::clear_of_window_edge;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::RATE_LIMITED;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

const CALLERS: usize = 20;
const LIMIT: u64 = 5;

#[tokio::test]
async fn rate_limit_admits_exactly_the_limit_of_twenty_concurrent_callers_and_tells_the_rest_when_to_retry() {
    let backend = Recorder::start().await;
    // Calls only, so each caller's own initialize does not count; keyed by client IP (the
    // default), so all the callers, on 127.0.0.1, share one counter.
    let limit = policy("rate-limit", json!({ "limit": LIMIT, "window": "1h", "methods": ["tools/call"] }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url, json!([limit]))] }), &[]).await;

    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        callers.push(gw.caller("s").initialized().await);
    }
    // The windows are aligned to the clock: start clear of an hour's end.
    clear_of_window_edge(3600, 15).await;
    let start = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = callers
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                c.call("echo", json!({ "text": format!("caller {i}") })).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("a caller task"));
    }

    let (admitted, refused): (Vec<_>, Vec<_>) = answers.into_iter().partition(|r| r.status == 200);
    assert_eq!(admitted.len(), LIMIT as usize, "exactly the limit is admitted; refused: {:?}", refused.first());
    for r in &admitted {
        assert!(text(r).starts_with("caller "), "{r:?}");
    }
    assert_eq!(backend.calls_of("echo"), LIMIT as usize, "only the admitted calls reached the backend");
    for r in &refused {
        assert_eq!((r.status, r.error_code()), (429, RATE_LIMITED), "{r:?}");
        let retry_after: u64 = header(r, "retry-after").parse().unwrap_or_else(|_| panic!("Retry-After is whole seconds: {r:?}"));
        assert!((1..=3600).contains(&retry_after), "{r:?}");
        assert_eq!(r.message()["error"]["data"]["retryAfter"], retry_after, "the JSON-RPC error carries the wait: {r:?}");
        assert_eq!(r.message()["error"]["data"]["limit"], LIMIT, "{r:?}");
        assert_eq!(header(r, "ratelimit-remaining"), "0", "{r:?}");
    }
}
