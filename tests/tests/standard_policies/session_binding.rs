//! A session belongs to the subject that opened it: another caller holding its id, with a
//! valid token of their own, is told the session does not exist.

use serde_json::json;

use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::server;

#[tokio::test]
async fn a_session_id_is_useless_to_another_subject() {
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let token = |sub: &str| key.sign(&json!({ "iss": idp.issuer, "sub": sub, "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let jwt = idp.jwt_binding("tools");
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url, json!([jwt]))] }), &[]).await;

    let mut alice = gw.caller("s").bearer(&token("alice")).initialized().await;
    assert_eq!(text(&alice.call("echo", json!({ "text": "mine" })).await), "mine");

    // Bob has a valid token and Alice's session id.
    let mut bob = alice.clone().bearer(&token("bob"));
    let r = bob.call("echo", json!({ "text": "not mine" })).await;
    assert_eq!(r.status, 404, "another subject's session is unknown to bob: {r:?}");
    assert_eq!(backend.seen("tools/call").iter().filter(|s| s.params["arguments"]["text"] == "not mine").count(), 0);

    // Alice's session is untouched, and Bob gets one of his own.
    assert_eq!(text(&alice.call("echo", json!({ "text": "still mine" })).await), "still mine");
    let mut own = gw.caller("s").bearer(&token("bob")).initialized().await;
    assert_eq!(text(&own.call("echo", json!({ "text": "bob's" })).await), "bob's");
}
