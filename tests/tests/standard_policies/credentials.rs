//! `credentials`: the backend gets its own credential (a named secret from the gateway's
//! environment or a file, or an OAuth 2.0 client-credentials token from the test's token
//! endpoint), and never the client's.

use serde_json::json;
use tollgate_tests::gateway::write_temp;

use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::Idp;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

const CLIENT_TOKEN: &str = "the-clients-own-token";
const ENV_SECRET: &str = "s3cret-from-the-environment";
const FILE_SECRET: &str = "s3cret-from-a-file";
const CLIENT_SECRET: &str = "cc-s3cret";

#[tokio::test]
async fn credentials_give_the_backend_a_secret_or_a_client_credentials_token_and_never_the_clients_token() {
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key_file = write_temp("backend-key", &format!("{FILE_SECRET}\n"));

    let mut from_env = policy("credentials", json!({ "secret": "backend_token" }));
    from_env["secrets"] = json!({ "backend_token": { "env": "BACKEND_TOKEN" } });
    let mut from_file = policy("credentials", json!({ "header": "x-api-key", "secret": "api_key" }));
    from_file["secrets"] = json!({ "api_key": { "file": key_file } });
    let mut oauth = policy(
        "credentials",
        json!({
            "client_credentials": { "token_url": idp.token_url(), "client_id": "tollgate", "client_secret": "cc_secret", "scope": "backend.read" }
        }),
    );
    oauth["secrets"] = json!({ "cc_secret": { "env": "CC_SECRET" } });
    oauth["allow_hosts"] = json!(["127.0.0.1"]);
    let servers = json!([
        server("env", &backend.url, json!([from_env])),
        server("file", &backend.url, json!([from_file])),
        server("oauth", &backend.url, json!([oauth])),
    ]);
    let gw =
        RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": servers }), &[("BACKEND_TOKEN", ENV_SECRET), ("CC_SECRET", CLIENT_SECRET)])
            .await;

    // A static secret from the gateway's environment, in Authorization with its Bearer prefix.
    let mut c = gw.caller("env").bearer(CLIENT_TOKEN).initialized().await;
    let r = c.call("echo", json!({ "text": "env" })).await;
    assert_eq!(r.message()["result"]["structuredContent"]["authorization"], format!("Bearer {ENV_SECRET}"), "{r:?}");

    // A static secret from a file, in a header of its own, as it is (the file's newline trimmed).
    let mut c = gw.caller("file").bearer(CLIENT_TOKEN).initialized().await;
    c.call("echo", json!({ "text": "file" })).await;
    let last = backend.seen("tools/call").pop().expect("the call reached the backend");
    assert_eq!(last.headers.get("x-api-key").and_then(|v| v.to_str().ok()), Some(FILE_SECRET), "{last:?}");
    assert_eq!(last.headers.get("authorization"), None, "the client's Authorization is not forwarded: {last:?}");

    // Client credentials: several calls, one token request, and that token on every call.
    let mut c = gw.caller("oauth").bearer(CLIENT_TOKEN).initialized().await;
    for i in 0..4 {
        let r = c.call("echo", json!({ "text": format!("oauth {i}") })).await;
        assert_eq!(r.message()["result"]["structuredContent"]["authorization"], "Bearer backend-token-1", "{r:?}");
    }
    let mut again = gw.caller("oauth").initialized().await;
    let r = again.call("echo", json!({ "text": "another session" })).await;
    assert_eq!(r.message()["result"]["structuredContent"]["authorization"], "Bearer backend-token-1", "{r:?}");
    let requests = idp.token_requests();
    assert_eq!(requests.len(), 1, "the token is fetched once and kept: {requests:?}");
    let (headers, body) = &requests[0];
    assert_eq!(body, "grant_type=client_credentials&scope=backend.read");
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("tollgate:{CLIENT_SECRET}")));
    assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some(basic.as_str()));

    // The client's own token reached the backend nowhere, and no secret was logged.
    for seen in backend.all() {
        let values: Vec<&str> = seen.headers.values().filter_map(|v| v.to_str().ok()).collect();
        assert!(!values.iter().any(|v| v.contains(CLIENT_TOKEN)), "the client's token reached the backend: {seen:?}");
    }
    let log = gw.log();
    for secret in [ENV_SECRET, FILE_SECRET, CLIENT_SECRET, "backend-token-1"] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
}

#[tokio::test]
async fn a_per_user_credential_goes_to_its_subject_of_its_issuer_only() {
    use tollgate_tests::idp::{Key, now};
    let backend = Recorder::start().await;
    let (a, b) = (Key::rsa("ka"), Key::rsa_other("kb"));
    let jwt = policy("jwt", json!({ "keys": [a.jwk, b.jwk], "issuers": ["https://a.example", "https://b.example"], "audiences": ["tollgate"] }));
    let mut per_user =
        policy("credentials", json!({ "per_user": { "issuer": "https://a.example", "secrets": { "alice": "alice_key" }, "default": "shared_key" } }));
    per_user["secrets"] = json!({ "alice_key": { "env": "ALICE_KEY" }, "shared_key": { "env": "SHARED_KEY" } });
    let servers = json!([server("docs", &backend.url, json!([jwt, per_user]))]);
    let gw = RunningGateway::from_config(
        json!({ "listen": "127.0.0.1:0", "servers": servers }),
        &[("ALICE_KEY", "alices-own-key"), ("SHARED_KEY", "the-shared-key")],
    )
    .await;

    let token = |key: &Key, iss: &str| key.sign(&json!({ "iss": iss, "sub": "alice", "aud": "tollgate", "exp": now() + 600 }));
    // The same subject from two issuers is two callers: only issuer A's alice gets alice's key.
    for (key, iss, expected) in [(&a, "https://a.example", "Bearer alices-own-key"), (&b, "https://b.example", "Bearer the-shared-key")] {
        let mut c = gw.caller("docs").bearer(&token(key, iss)).initialized().await;
        let r = c.call("echo", json!({ "text": iss })).await;
        assert_eq!(r.message()["result"]["structuredContent"]["authorization"], expected, "{iss}: {r:?}");
    }
}
