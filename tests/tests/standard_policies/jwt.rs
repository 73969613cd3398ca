//! `jwt` with MCP authorization: keys from the test's own identity provider (OIDC discovery
//! and a JWKS), tokens signed at test time, the 401/403 challenges, the RFC 9728 metadata, a
//! key rotation, and a JWKS endpoint that is down.

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tollgate_tests::backend::{Backend, nothing_listening};
use tollgate_tests::within;

use tollgate_tests::caller::header;
use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::standard::FORBIDDEN;
use tollgate_tests::standard::UNAUTHORIZED;
use tollgate_tests::standard::free_port;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

/// Claims of a token for `aud`, valid for ten minutes, with these scopes.
fn claims(issuer: &str, aud: &str, scope: &str) -> Value {
    json!({ "iss": issuer, "sub": "alice", "aud": aud, "iat": now(), "exp": now() + 600, "scope": scope })
}

fn jwt_binding(config: Value) -> Value {
    let mut b = policy("jwt", config);
    b["allow_hosts"] = json!(["127.0.0.1"]);
    b
}

/// Reads a JSON document over plain HTTP.
async fn get_json(url: &str) -> (u16, Value) {
    let r = within(20, url, reqwest::Client::builder().no_proxy().build().expect("client").get(url).send()).await.expect("GET");
    let status = r.status().as_u16();
    (status, within(20, url, r.json::<Value>()).await.expect("a JSON body"))
}

/// The value of `name="..."` in a `WWW-Authenticate` challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].to_owned())
}

#[tokio::test]
async fn jwt_challenges_without_a_token_and_admits_rs256_and_es256_tokens_that_never_reach_the_backend() {
    let idp = Idp::start().await;
    let (rs, es) = (Key::rsa("rs-1"), Key::ec("ec-1"));
    idp.publish(&[&rs, &es]);
    let backend = Backend::rmcp().named("protected").start().await;
    // The canonical URL is `http://{listen}/s/mcp`, so the listen address is known up front.
    let port = free_port("127.0.0.1");
    let jwt = jwt_binding(json!({
        "oidc_discovery": idp.issuer,
        "required_scopes": ["mcp"],
        "tool_scopes": [{ "tools": ["whoami"], "scopes": ["admin"] }],
        "authorization": { "authorization_servers": [idp.issuer], "scopes_supported": ["mcp", "admin"], "resource_name": "Echo tools" },
    }));
    let config = json!({ "listen": format!("127.0.0.1:{port}"), "servers": [server("s", &backend.url(), json!([jwt]))] });
    let gw = RunningGateway::from_config(config, &[]).await;
    let resource = gw.mcp_url("s");

    // RFC 9728: the metadata names this server's canonical URL and the authorization server.
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/s/mcp", gw.base());
    let (status, doc) = get_json(&metadata_url).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["resource"], resource.as_str(), "{doc}");
    assert_eq!(doc["authorization_servers"], json!([idp.issuer]), "{doc}");
    assert_eq!(doc["scopes_supported"], json!(["mcp", "admin"]), "{doc}");
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{doc}");
    // The one protected server is also described at the root form.
    assert_eq!(get_json(&format!("{}/.well-known/oauth-protected-resource", gw.base())).await.1["resource"], resource.as_str());

    // No token: 401, a Bearer challenge that says where the metadata is, and -32001.
    let denied = gw.caller("s").initialize().await;
    assert_eq!(denied.status, 401, "{denied:?}");
    assert_eq!(denied.error_code(), UNAUTHORIZED, "{denied:?}");
    let challenge = header(&denied, "www-authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(param(challenge, "error").as_deref(), Some("invalid_token"), "{challenge}");
    assert_eq!(param(challenge, "resource_metadata").as_deref(), Some(metadata_url.as_str()), "{challenge}");

    // A valid RS256 token, through the SDK's own client with its bearer token: admitted.
    let rs_token = rs.sign(&claims(&idp.issuer, &resource, "mcp"));
    let config = StreamableHttpClientTransportConfig::with_uri(resource.as_str()).auth_header(rs_token);
    let http = reqwest013::Client::builder().no_proxy().build().expect("http client");
    let sdk = within(30, "initialize with a bearer token", ().serve(StreamableHttpClientTransport::with_client(http, config)))
        .await
        .expect("an RS256 token is accepted");
    let tools = within(20, "tools/list", sdk.peer().list_all_tools()).await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "echo"), "{tools:?}");
    let args = json!({ "text": "signed with RS256" }).as_object().cloned().expect("an object");
    let answer = within(20, "tools/call echo", sdk.peer().call_tool(CallToolRequestParams::new("echo").with_arguments(args))).await.expect("echo");
    assert_eq!(answer.content[0].as_text().map(|t| t.text.as_str()), Some("signed with RS256"));
    let _ = within(20, "close the SDK client", sdk.cancel()).await;

    // A valid ES256 token: admitted as well.
    let es_token = es.sign(&claims(&idp.issuer, &resource, "mcp"));
    let mut c = gw.caller("s").bearer(&es_token).initialized().await;
    assert_eq!(text(&c.call("echo", json!({ "text": "signed with ES256" })).await), "signed with ES256");

    // The client's token went no further than the gateway.
    let seen = backend.seen().headers();
    assert!(!seen.is_empty(), "the admitted calls reached the backend");
    let leaked: Vec<_> = seen.iter().filter_map(|h| h.get("authorization")).collect();
    assert!(leaked.is_empty(), "the backend saw Authorization headers: {leaked:?}");

    // Wrong audience, and expired: 401 invalid_token.
    let other_aud = rs.sign(&claims(&idp.issuer, "http://127.0.0.1:1/other/mcp", "mcp"));
    let mut expired_claims = claims(&idp.issuer, &resource, "mcp");
    expired_claims["exp"] = json!(now() - 3600);
    let expired = rs.sign(&expired_claims);
    // And tokens no key of the identity provider signed: garbage, `alg: none`, and HS256 with
    // the RSA key's public modulus as the shared secret (the HMAC/RSA confusion).
    let garbage = "not-a-jwt".to_owned();
    let b64 = |v: &Value| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string());
    let unsigned = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "JWT" })), b64(&claims(&idp.issuer, &resource, "mcp")));
    let modulus = rs.jwk["n"].as_str().expect("n").as_bytes().to_vec();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(rs.kid.clone());
    let confused = jsonwebtoken::encode(&hs, &claims(&idp.issuer, &resource, "mcp"), &jsonwebtoken::EncodingKey::from_secret(&modulus)).expect("sign HS256");
    // A valid token's signature on another payload, and a token signed by a key the identity
    // provider never published under the published key's id.
    let good = rs.sign(&claims(&idp.issuer, &resource, "mcp"));
    let mut admin_claims = claims(&idp.issuer, &resource, "mcp admin");
    admin_claims["sub"] = json!("someone-else");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&admin_claims), parts[2]);
    let forged = Key::rsa_other(&rs.kid).sign(&claims(&idp.issuer, &resource, "mcp"));
    for (what, token, why) in [
        ("wrong audience", other_aud, "audience"),
        ("expired", expired, "expired"),
        ("malformed", garbage, "malformed"),
        ("alg none", unsigned, "malformed"),
        ("HS256 with the RSA modulus", confused, "algorithm"),
        ("another payload under a valid signature", tampered, "signature"),
        ("signed by an unpublished key", forged, "signature"),
    ] {
        let r = gw.caller("s").bearer(&token).initialize().await;
        assert_eq!((r.status, r.error_code()), (401, UNAUTHORIZED), "{what}: {r:?}");
        let challenge = header(&r, "www-authenticate");
        assert_eq!(param(challenge, "error").as_deref(), Some("invalid_token"), "{what}: {challenge}");
        assert!(param(challenge, "error_description").unwrap_or_default().contains(why), "{what}: {challenge}");
    }

    // A tool that needs a scope the token lacks: 403 insufficient_scope, naming the scope.
    let refused = c.call("whoami", json!({})).await;
    assert_eq!((refused.status, refused.error_code()), (403, FORBIDDEN), "{refused:?}");
    let challenge = header(&refused, "www-authenticate");
    assert_eq!(param(challenge, "error").as_deref(), Some("insufficient_scope"), "{challenge}");
    assert!(param(challenge, "scope").unwrap_or_default().split(' ').any(|s| s == "admin"), "{challenge}");
    // With the scope, the same tool answers.
    let admin = es.sign(&claims(&idp.issuer, &resource, "mcp admin"));
    let mut a = gw.caller("s").bearer(&admin).initialized().await;
    assert_eq!(text(&a.call("whoami", json!({})).await), "protected");
    assert_eq!(idp.discovery_fetches(), 1, "the discovery document is fetched once and kept");
}

/// The audience of the rotation tests' tokens.
const ROTATING_AUD: &str = "https://tollgate.test/s/mcp";

/// An identity provider publishing `first` alone, and a gateway whose server `s` trusts it with
/// one early refetch of its keys an hour.
async fn rotating(first: &Key) -> (Idp, tollgate_tests::backend::RunningBackend, RunningGateway) {
    let idp = Idp::start().await;
    idp.publish(&[first]);
    let backend = Backend::rmcp().start().await;
    let jwt = jwt_binding(json!({ "jwks_url": idp.jwks_url(), "issuers": [idp.issuer], "audiences": [ROTATING_AUD], "jwks_refresh_interval": "1h" }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url(), json!([jwt]))] }), &[]).await;
    (idp, backend, gw)
}

#[tokio::test]
async fn jwt_refetches_the_jwks_once_for_an_unknown_kid_after_a_key_rotation() {
    let (old, new, never) = (Key::rsa("old"), Key::rsa_other("new"), Key::ec("never-published"));
    let (idp, _backend, gw) = rotating(&old).await;

    let mut c = gw.caller("s").bearer(&old.sign(&claims(&idp.issuer, ROTATING_AUD, "mcp"))).initialized().await;
    assert_eq!(text(&c.call("echo", json!({ "text": "old key" })).await), "old key");
    assert_eq!(idp.jwks_fetches(), 1);

    // The identity provider rotates: a token signed with the new key names a kid the gateway
    // has not seen, so it fetches the JWKS again and admits the token.
    idp.publish(&[&old, &new]);
    let mut c = gw.caller("s").bearer(&new.sign(&claims(&idp.issuer, ROTATING_AUD, "mcp"))).initialized().await;
    assert_eq!(text(&c.call("echo", json!({ "text": "new key" })).await), "new key");
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for the unknown kid");

    // Another unknown kid within the refresh interval: refused without another fetch.
    let r = gw.caller("s").bearer(&never.sign(&claims(&idp.issuer, ROTATING_AUD, "mcp"))).initialize().await;
    assert_eq!((r.status, r.error_code()), (401, UNAUTHORIZED), "{r:?}");
    assert_eq!(idp.jwks_fetches(), 2, "refetches are bounded by jwks_refresh_interval");
}

#[tokio::test]
async fn jwt_stops_honouring_remembered_tokens_of_a_key_the_issuer_removed_once_the_keys_are_renewed() {
    let (old, new) = (Key::rsa("compromised"), Key::rsa_other("replacement"));
    let (idp, _backend, gw) = rotating(&old).await;

    // Verified once, then remembered: the session's next calls skip the signature check.
    let mut c = gw.caller("s").bearer(&old.sign(&claims(&idp.issuer, ROTATING_AUD, "mcp"))).initialized().await;
    assert_eq!(text(&c.call("echo", json!({ "text": "before" })).await), "before");
    assert_eq!(text(&c.call("echo", json!({ "text": "remembered" })).await), "remembered");

    // The issuer removes the key; a token of the replacement makes the gateway fetch the keys.
    idp.publish(&[&new]);
    let mut fresh = gw.caller("s").bearer(&new.sign(&claims(&idp.issuer, ROTATING_AUD, "mcp"))).initialized().await;
    assert_eq!(text(&fresh.call("echo", json!({ "text": "replacement" })).await), "replacement");
    assert_eq!(idp.jwks_fetches(), 2);

    // The remembered token is checked again against the keys now in force, and refused.
    let r = c.call("echo", json!({ "text": "after" })).await;
    assert_eq!((r.status, r.error_code()), (401, UNAUTHORIZED), "a token of a removed key: {r:?}");
}

#[tokio::test]
async fn jwt_with_its_jwks_endpoint_down_answers_503_and_does_not_hang() {
    let key = Key::ec("k");
    let backend = Backend::rmcp().start().await;
    let dead = nothing_listening().replace("/mcp", "/jwks");
    let aud = "https://tollgate.test/s/mcp";
    let jwt = jwt_binding(json!({ "jwks_url": dead, "audiences": [aud] }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url(), json!([jwt]))] }), &[]).await;
    let token = key.sign(&json!({ "sub": "alice", "aud": aud, "exp": now() + 600 }));
    // A clear answer, not a hang (the bound only catches a hang, it times nothing).
    let r = within(15, "an answer while the JWKS is down", gw.caller("s").bearer(&token).initialize()).await;
    assert_eq!((r.status, r.error_code()), (503, UNAUTHORIZED), "{r:?}");
    assert!(r.error_message().contains("signing keys are unavailable"), "{r:?}");
    assert!(backend.seen().headers().is_empty(), "nothing reached the backend");
}
