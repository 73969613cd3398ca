//! Products and subscriptions through the real binary: subscribe, approve, call; the refusals
//! (no key, wrong key, suspended, another product's key); key rotation under a live client;
//! stale ETags; and nothing acknowledged lost to a restart or a kill -9.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, RunningGateway};
use tollgate_tests::raw::{Raw, initialize_request};

const TOKEN: &str = "subscriptions-admin-token";
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// A data directory of the test's own, kept across restarts of the gateway.
fn data_dir() -> PathBuf {
    let dir = tollgate_tests::gateway::write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

/// Servers `alpha` and `beta`; product `team` (alpha's echo and whoami, approval required),
/// product `other` (beta), product `metered` (alpha, two tool calls a minute per subscription).
fn config(alpha: &RunningBackend, beta: &RunningBackend, data: &std::path::Path) -> Gateway {
    Gateway::new().server("alpha", alpha.url()).server("beta", beta.url()).management_with(TOKEN, json!({ "data_dir": data })).top(
        "products",
        json!([
            { "name": "team", "servers": [{ "server": "alpha", "tools": ["echo", "whoami"] }], "approval_required": true },
            { "name": "other", "servers": [{ "server": "beta" }] },
            { "name": "metered", "servers": [{ "server": "alpha" }], "policies": [
                { "policy": "rate-limit", "config": { "key": ["subscription"], "methods": ["tools/call"], "limit": 2, "window": "1m" } }
            ] },
        ]),
    )
}

struct Setup {
    _alpha: RunningBackend,
    _beta: RunningBackend,
    data: PathBuf,
    config: Gateway,
    gateway: RunningGateway,
    admin: Admin,
}

async fn setup() -> Setup {
    let alpha = Backend::rmcp().start().await;
    let beta = Backend::rmcp().start().await;
    let data = data_dir();
    let config = config(&alpha, &beta, &data);
    let gateway = config.clone().start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    Setup { _alpha: alpha, _beta: beta, data, config, gateway, admin }
}

/// `initialize` by hand with `key` (if any) in the subscription header.
async fn initialize(gateway: &RunningGateway, server: &str, key: Option<&str>) -> tollgate_tests::raw::RawResponse {
    let mut req = Raw::new(&gateway.mcp_url(server)).post_json(&initialize_request(1));
    if let Some(k) = key {
        req = req.header(KEY_HEADER, k);
    }
    req.send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_approve_then_call_only_the_products_tools() {
    let s = setup().await;
    let sub = s.admin.subscribe("team", "alice@example.com").await;
    assert_eq!(sub.state, "pending", "the product needs approval");

    let refused = initialize(&s.gateway, "alpha", Some(&sub.primary)).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.error_code(), -32012);
    assert!(refused.error_message().contains("is pending"), "{refused:?}");

    let approved = s.admin.act(&sub.id, "approve").await;
    assert_eq!(approved.body["state"], "active");
    assert_eq!(approved.body["history"][1]["by"], "ops@example.com", "who approved is kept: {:?}", approved.body);
    assert!(approved.body.get("keys").is_none() && !approved.body.to_string().contains(&sub.primary), "keys are shown once only");

    let client = Client::connect_with_key(&s.gateway.mcp_url("alpha"), &sub.primary).await;
    assert_eq!(client.echo("hello").await, "hello");
    let mut tools = client.list_tools().await;
    tools.sort();
    assert_eq!(tools, ["echo", "whoami"], "only the product's tools are listed");
    let hidden = client.call_tool("slow", json!({ "ms": 1 })).await.expect_err("a tool outside the product");
    assert!(hidden.to_string().contains("tool 'slow' is not available"), "{hidden}");

    let log = s.gateway.log();
    assert!(!log.contains(&sub.primary) && !log.contains(&sub.secondary), "keys are never logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_wrong_key_and_another_products_key_are_refused() {
    let s = setup().await;
    let other = s.admin.subscribe("other", "bob").await;

    let none = initialize(&s.gateway, "alpha", None).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.error_code(), -32011);
    assert!(none.error_message().contains(KEY_HEADER), "{none:?}");

    let wrong = initialize(&s.gateway, "alpha", Some("tgk_not-a-key-the-gateway-issued")).await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.error_code(), -32011);

    let foreign = initialize(&s.gateway, "alpha", Some(&other.primary)).await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    assert_eq!(foreign.error_code(), -32012);
    assert!(foreign.error_message().contains("does not include server 'alpha'"), "{foreign:?}");

    let own = initialize(&s.gateway, "beta", Some(&other.primary)).await;
    assert_eq!(own.status, 200, "the key serves its own product's server: {own:?}");

    let by_query = Raw::new(&format!("{}?subscription-key={}", s.gateway.mcp_url("beta"), other.secondary)).post_json(&initialize_request(1)).send().await;
    assert_eq!(by_query.status, 200, "the key may come as a query parameter: {by_query:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_stops_a_live_session_at_its_next_request_and_resuming_restores_it() {
    let s = setup().await;
    let sub = s.admin.subscribe("other", "carol").await;
    let client = Client::connect_with_key(&s.gateway.mcp_url("beta"), &sub.primary).await;
    assert_eq!(client.echo("before").await, "before");

    s.admin.act(&sub.id, "suspend").await;
    let refused = client.call_tool("echo", json!({ "text": "during" })).await.expect_err("a suspended subscription");
    assert!(refused.to_string().contains("is suspended"), "{refused}");
    let fresh = initialize(&s.gateway, "beta", Some(&sub.primary)).await;
    assert_eq!(fresh.status, 403, "{fresh:?}");

    s.admin.act(&sub.id, "resume").await;
    assert_eq!(client.echo("after").await, "after", "the same session works again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_one_at_a_time_while_the_client_keeps_working() {
    let s = setup().await;
    let sub = s.admin.subscribe("other", "dave").await;
    let client = Client::connect_with_key(&s.gateway.mcp_url("beta"), &sub.primary).await;

    let new_secondary = s.admin.regenerate(&sub.id, "secondary").await;
    assert_eq!(client.echo("still on primary").await, "still on primary");
    client.use_key(&new_secondary);
    assert_eq!(client.echo("on new secondary").await, "on new secondary");

    let new_primary = s.admin.regenerate(&sub.id, "primary").await;
    assert_eq!(client.echo("primary replaced").await, "primary replaced", "the client is on the secondary");
    assert_eq!(initialize(&s.gateway, "beta", Some(&sub.primary)).await.status, 401, "the old primary is gone");
    assert_eq!(initialize(&s.gateway, "beta", Some(&sub.secondary)).await.status, 401, "the old secondary is gone");
    client.use_key(&new_primary);
    assert_eq!(client.echo("on new primary").await, "on new primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_needs_the_current_etag() {
    let s = setup().await;
    let sub = s.admin.subscribe("team", "erin").await;
    let read = s.admin.get(&format!("/api/subscriptions/{}", sub.id)).await;
    let etag = read.etag.expect("an ETag");

    let none = s.admin.post_if(&format!("/api/subscriptions/{}/approve", sub.id), None, json!({})).await;
    assert_eq!(none.status, 428, "{none:?}");

    // Two operators read the same version; the first change wins, the second is refused.
    let first = s.admin.post_if(&format!("/api/subscriptions/{}/approve", sub.id), Some(&etag), json!({})).await;
    assert_eq!(first.status, 200, "{first:?}");
    let second = s.admin.post_if(&format!("/api/subscriptions/{}/cancel", sub.id), Some(&etag), json!({})).await;
    assert_eq!(second.status, 412, "{second:?}");
    assert!(second.body["detail"].as_str().unwrap().contains("changed since it was read"), "{second:?}");
    assert_ne!(first.etag, Some(etag));

    let unknown = s.admin.post("/api/subscriptions", json!({ "product": "nope", "subscriber": "x" })).await;
    assert_eq!(unknown.status, 422, "{unknown:?}");
    assert_eq!(unknown.body["detail"], "product: no product is named 'nope'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_and_product_reach_the_policy_chain() {
    let s = setup().await;
    let a = s.admin.subscribe("metered", "frank").await;
    let b = s.admin.subscribe("metered", "grace").await;
    let ca = Client::connect_with_key(&s.gateway.mcp_url("alpha"), &a.primary).await;
    let cb = Client::connect_with_key(&s.gateway.mcp_url("alpha"), &b.primary).await;
    assert_eq!(ca.echo("1").await, "1");
    assert_eq!(ca.echo("2").await, "2");
    let third = ca.call_tool("echo", json!({ "text": "3" })).await.expect_err("the product's limit: two a minute per subscription");
    assert!(third.to_string().contains("HTTP 429"), "the rate limit answers 429: {third}");
    assert_eq!(cb.echo("other subscription").await, "other subscription", "each subscription has its own counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_lose_nothing_acknowledged() {
    let s = setup().await;
    let kept = s.admin.subscribe("other", "heidi").await;
    let suspended = s.admin.subscribe("other", "ivan").await;
    s.admin.act(&suspended.id, "suspend").await;
    // Acknowledged a moment ago: the kill comes right after the answer.
    let rotated = s.admin.regenerate(&kept.id, "secondary").await;
    s.gateway.kill_9();
    assert!(s.gateway.exit_within(Duration::from_secs(5)).await.is_some(), "killed");

    let again = s.config.clone().start().await;
    assert!(s.data.join("tollgate.redb").is_file());
    let c = Client::connect_with_key(&again.mcp_url("beta"), &kept.primary).await;
    assert_eq!(c.echo("survived").await, "survived");
    assert_eq!(initialize(&again, "beta", Some(&rotated)).await.status, 200, "the regenerated key survived");
    assert_eq!(initialize(&again, "beta", Some(&kept.secondary)).await.status, 401, "the replaced key stays replaced");
    let r = initialize(&again, "beta", Some(&suspended.primary)).await;
    assert_eq!(r.status, 403, "still suspended: {r:?}");

    // And a clean stop keeps them too.
    again.terminate();
    assert!(again.exit_within(Duration::from_secs(10)).await.is_some());
    let third = s.config.clone().start().await;
    let list = Admin::new(&third.management(), TOKEN).get("/api/subscriptions").await;
    let states: Vec<(String, String)> = list.body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["subscriber"].as_str().unwrap().to_owned(), v["state"].as_str().unwrap().to_owned()))
        .collect();
    assert!(states.contains(&("heidi".into(), "active".into())) && states.contains(&("ivan".into(), "suspended".into())), "{states:?}");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let s = setup().await;
    let r = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{}/openapi.json", s.gateway.management())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/subscriptions/{id}/keys/{slot}"]["post"].is_object(), "{doc}");
}

#[tokio::test]
async fn discovery_lists_what_the_caller_may_use() {
    let s = setup().await;
    let sub = s.admin.subscribe("other", "judy").await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/v0/servers", s.gateway.base());

    let anonymous: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(anonymous["metadata"]["count"], 0, "every server here needs a subscription: {anonymous}");

    let r = http.get(&url).header(KEY_HEADER, &sub.primary).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    let servers = listed["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{listed}");
    assert_eq!(servers[0]["server"]["name"], "beta");
    assert_eq!(servers[0]["server"]["remotes"][0]["type"], "streamable-http");
    assert_eq!(servers[0]["server"]["remotes"][0]["url"], s.gateway.mcp_url("beta"));
    assert_eq!(servers[0]["_meta"]["io.github.tollgate/gateway"]["product"], "other");

    let wrong = http.get(&url).header(KEY_HEADER, "tgk_wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_stays_with_its_subscription_and_legacy_sse_takes_the_key_too() {
    let s = setup().await;
    let mine = s.admin.subscribe("other", "kim").await;
    let theirs = s.admin.subscribe("other", "lee").await;
    let raw = Raw::new(&s.gateway.mcp_url("beta"));
    let init = raw.post_json(&initialize_request(1)).header(KEY_HEADER, &mine.primary).send().await;
    assert_eq!(init.status, 200, "{init:?}");
    let session = init.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let call = tollgate_tests::raw::request(2, "tools/list", json!({}));
    let borrowed = raw.post_json(&call).session(&session).header(KEY_HEADER, &theirs.primary).send().await;
    assert_eq!(borrowed.status, 404, "to another subscription's key the session does not exist: {borrowed:?}");
    for door in [raw.get(&session), raw.delete(&session)] {
        let r = door.header(KEY_HEADER, &theirs.primary).open().await;
        assert_eq!(r.status(), 404, "nor on its other doors");
    }
    let own = raw.post_json(&call).session(&session).header(KEY_HEADER, &mine.secondary).send().await;
    assert_eq!(own.status, 200, "either key of the session's subscription works: {own:?}");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let sse = format!("{}/beta/sse", s.gateway.base());
    let refused = http.get(&sse).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let opened = http.get(format!("{sse}?subscription-key={}", mine.primary)).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["content-type"], "text/event-stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_made_through_the_api_apply_at_once_and_survive_a_restart() {
    let s = setup().await;
    let gold = json!({ "name": "gold", "servers": [{ "server": "alpha", "tools": ["echo"] }] });

    let invalid = s.admin.put_if("/api/products/gold", None, json!({ "name": "gold", "servers": [{ "server": "nope" }] })).await;
    assert_eq!(invalid.status, 422, "{invalid:?}");
    assert_eq!(invalid.body["detail"], "product.servers[0].server: no server is named 'nope'", "the words of `tollgate validate`");

    let created = s.admin.put_if("/api/products/gold", None, gold.clone()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let etag = created.etag.clone().expect("an ETag");
    let again = s.admin.put_if("/api/products/gold", None, gold.clone()).await;
    assert_eq!(again.status, 428, "replacing needs If-Match: {again:?}");

    let sub = s.admin.subscribe("gold", "mallory").await;
    let client = Client::connect_with_key(&s.gateway.mcp_url("alpha"), &sub.primary).await;
    assert_eq!(client.list_tools().await, ["echo"]);

    let wider = json!({ "name": "gold", "servers": [{ "server": "alpha", "tools": ["echo", "whoami"] }] });
    let changed = s.admin.put_if("/api/products/gold", Some(&etag), wider.clone()).await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let stale = s.admin.put_if("/api/products/gold", Some(&etag), gold.clone()).await;
    assert_eq!(stale.status, 412, "{stale:?}");
    let mut tools = client.list_tools().await;
    tools.sort();
    assert_eq!(tools, ["echo", "whoami"], "the live session sees the change at its next request");

    s.gateway.kill_9();
    assert!(s.gateway.exit_within(Duration::from_secs(5)).await.is_some());
    let again = s.config.clone().start().await;
    let admin = Admin::new(&again.management(), TOKEN);
    let kept = admin.get("/api/products/gold").await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["servers"][0]["tools"], json!(["echo", "whoami"]));

    let deleted = admin.delete_if("/api/products/gold", kept.etag.as_deref()).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let gone = initialize(&again, "alpha", Some(&sub.primary)).await;
    assert_eq!(gone.status, 403, "{gone:?}");
    assert!(gone.error_message().contains("no longer exists"), "{gone:?}");
}
