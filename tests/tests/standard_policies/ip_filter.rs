//! `ip-filter` for a client on IPv6 loopback: the gateway listens on `[::1]`.

use serde_json::json;
use tollgate_tests::backend::Backend;

use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::standard::FORBIDDEN;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

#[tokio::test]
async fn ip_filter_refuses_an_ipv6_client_on_its_deny_list_and_admits_it_on_its_allow_list() {
    let backend = Backend::rmcp().named("inside").start().await;
    let servers = json!([
        server("denied", &backend.url(), json!([policy("ip-filter", json!({ "deny": ["::1"] }))])),
        server("allowed", &backend.url(), json!([policy("ip-filter", json!({ "allow": ["2001:db8::/32", "::1"] }))])),
        // An IPv4 allow list does not take in IPv6 loopback.
        server("v4-only", &backend.url(), json!([policy("ip-filter", json!({ "allow": ["127.0.0.0/8"] }))])),
    ]);
    let gw = RunningGateway::from_config(json!({ "listen": "[::1]:0", "servers": servers }), &[]).await;
    assert!(gw.addr().is_ipv6(), "the gateway listens on {}", gw.addr());

    for name in ["denied", "v4-only"] {
        let r = gw.caller(name).initialize().await;
        assert_eq!((r.status, r.error_code()), (403, FORBIDDEN), "{name}: {r:?}");
        assert!(r.error_message().contains("::1"), "the refusal names the address: {r:?}");
        assert_eq!(r.message()["error"]["data"]["clientIp"], "::1", "{r:?}");
    }

    let mut c = gw.caller("allowed").initialized().await;
    assert_eq!(text(&c.call("whoami", json!({})).await), "inside");
}
