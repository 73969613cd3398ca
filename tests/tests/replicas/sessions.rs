//! Sessions that outlive their replica: with `state.redis`, a client whose replica died goes on
//! with the same `Mcp-Session-Id` on another, which opens a new backend session with the
//! client's own `initialize`. The session stays its owner's alone, a DELETE ends it on every
//! replica, and an id never issued is unknown everywhere.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use tollgate_tests::backend::Backend;
use tollgate_tests::caller::{Caller, text};
use tollgate_tests::client::{Client, Options};
use tollgate_tests::eventually_async;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::raw::{Raw, request};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::redis::Redis;
use tollgate_tests::standard::{UNAUTHORIZED, server};
use tollgate_vocabulary::code::BAD_REQUEST as NOT_FOUND_CODE;

/// What B logs when it continues a session another replica began.
const CONTINUED: &str = "continuing a session begun on another replica";

/// `n` gateways whose policies and sessions live in `redis`, with `servers`.
async fn replicas(n: usize, redis: &Redis, servers: Value, sessions: Option<Value>) -> Vec<RunningGateway> {
    let mut config = json!({ "listen": "127.0.0.1:0", "state": { "redis": redis.url() }, "servers": servers });
    if let Some(s) = sessions {
        config["sessions"] = s;
    }
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(RunningGateway::from_config(config.clone(), &[]).await);
    }
    out
}

async fn kill(g: &RunningGateway) {
    g.kill_9();
    g.exit_within(Duration::from_secs(10)).await.expect("the replica died");
}

/// What a load balancer is to a client: one address, each new connection forwarded to
/// whichever replica it points at now.
struct Balancer {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
}

impl Balancer {
    async fn start(to: SocketAddr) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the balancer");
        let addr = listener.local_addr().expect("local addr");
        let target = Arc::new(Mutex::new(to));
        let now = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *now.lock().expect("balancer lock");
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Balancer { addr, target }
    }

    fn point_at(&self, to: SocketAddr) {
        *self.target.lock().expect("balancer lock") = to;
    }

    fn mcp_url(&self, server: &str) -> String {
        format!("http://{}/{server}/mcp", self.addr)
    }
}

/// The backend sessions an rmcp backend was asked in: one per `initialize` it answered.
fn backend_sessions(backend: &tollgate_tests::backend::RunningBackend) -> usize {
    let mut ids: Vec<String> =
        backend.seen().headers().iter().filter_map(|h| h.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned)).collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

/// The value at `key`, as a string (`None` when there is none).
async fn get(redis: &Redis, key: &str) -> Option<String> {
    let reply = redis.command(&["GET", key]).await;
    let (head, rest) = reply.split_once("\r\n").expect("a RESP reply");
    let len: usize = head.strip_prefix('$').and_then(|n| n.parse().ok())?;
    Some(rest[..len].to_owned())
}

#[tokio::test]
async fn an_sdk_client_goes_on_with_its_session_on_another_replica_when_its_own_dies() {
    let redis = Redis::start().await;
    let backend = Backend::rmcp().start().await;
    let gws = replicas(2, &redis, json!([server("s", &backend.url(), json!([]))]), None).await;
    let lb = Balancer::start(gws[0].addr()).await;
    // A client that would start over on a 404 could hide a lost session: this one may not.
    let client = Client::try_connect(&lb.mcp_url("s"), Options { reinit_on_expired_session: false }).await.expect("connect");
    assert_eq!(client.echo("on the first replica").await, "on the first replica");
    let sid = client.session_id();
    assert_eq!(redis.keys("tollgate:session:*").await, [format!("tollgate:session:{sid}")], "the session is in the directory");
    assert_eq!(backend_sessions(&backend), 1);

    kill(&gws[0]).await;
    lb.point_at(gws[1].addr());

    assert_eq!(client.echo("on the second replica").await, "on the second replica");
    assert_eq!(client.session_ids(), std::slice::from_ref(&sid), "the same session, with no new initialize from the client");
    assert_eq!(backend_sessions(&backend), 2, "the second replica opened a backend session of its own");
    assert!(gws[1].log().contains(CONTINUED), "{}", gws[1].log());
    let record: Value = serde_json::from_str(&get(&redis, &format!("tollgate:session:{sid}")).await.expect("still listed")).expect("a JSON record");
    assert_eq!(record["server"], "s");
    assert_eq!(record["initialize"]["params"]["clientInfo"]["name"], "tollgate-e2e", "the client's own initialize: {record}");

    client.close().await;
    eventually_async(10, "the SDK's DELETE ends the session in the directory", || async {
        get(&redis, &format!("tollgate:session:{sid}")).await.as_deref() == Some("ended")
    })
    .await;
}

#[tokio::test]
async fn a_continued_session_is_its_owners_alone_and_a_delete_ends_it_on_every_replica() {
    let redis = Redis::start().await;
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let token = |sub: &str| key.sign(&json!({ "iss": idp.issuer, "sub": sub, "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let jwt = idp.jwt_binding("tools");
    let gws = replicas(3, &redis, json!([server("s", &backend.url, json!([jwt]))]), None).await;
    let (a, b, c) = (&gws[0], &gws[1], &gws[2]);

    let mut alice = Caller::new(&a.mcp_url("s")).bearer(&token("alice")).initialized().await;
    let sid = alice.session().expect("a session").to_owned();
    assert_eq!(text(&alice.call("echo", json!({ "text": "on a" })).await), "on a");
    let record: Value = serde_json::from_str(&get(&redis, &format!("tollgate:session:{sid}")).await.expect("listed")).expect("a JSON record");
    assert!(record["owner"]["subject"].as_str().is_some_and(|s| s.contains("alice")), "bound to its subject: {record}");
    kill(a).await;

    // Bob, with a valid token of his own and Alice's session id, on every door of B (each
    // door's first use there is what has B look the session up).
    let bob = format!("Bearer {}", token("bob"));
    let raw_b = Raw::new(&b.mcp_url("s"));
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/roots/list_changed" });
    let answer = json!({ "jsonrpc": "2.0", "id": 0, "result": {} });
    assert_eq!(raw_b.get(&sid).header("authorization", &bob).open().await.status().as_u16(), 404, "bob's GET stream");
    assert_eq!(raw_b.get(&sid).header("authorization", &bob).header("last-event-id", "0-1").open().await.status().as_u16(), 404, "bob's resumption");
    assert_eq!(raw_b.delete(&sid).header("authorization", &bob).send().await.status, 404, "bob's DELETE");
    for (door, msg) in [("notification", &note), ("response", &answer)] {
        let r = raw_b.post_json(msg).session(&sid).header("authorization", &bob).send().await;
        assert_eq!((r.status, r.error_code()), (404, NOT_FOUND_CODE), "bob's {door}: {r:?}");
    }
    let r = alice.at(&b.mcp_url("s")).bearer(&token("bob")).call("echo", json!({ "text": "not mine" })).await;
    assert_eq!((r.status, r.error_code()), (404, NOT_FOUND_CODE), "as for someone else's session on one replica: {r:?}");
    let r = raw_b.post_json(&note).session(&sid).send().await;
    assert_eq!((r.status, r.error_code()), (401, UNAUTHORIZED), "no token: the chain's own refusal, as on one replica: {r:?}");
    assert_eq!(backend.seen("initialize").len(), 1, "no one but the owner made a replica open a backend session");
    assert!(backend.seen("tools/call").iter().all(|s| s.params["arguments"]["text"] != "not mine"));

    // Alice goes on through B: first her GET stream, then a call, with no initialize of hers.
    let stream = raw_b.get(&sid).header("authorization", &format!("Bearer {}", token("alice"))).open().await;
    assert_eq!(stream.status().as_u16(), 200, "her GET stream opens on B");
    let mut on_b = alice.at(&b.mcp_url("s"));
    assert_eq!(text(&on_b.call("echo", json!({ "text": "on b" })).await), "on b");
    assert_eq!(backend.seen("initialize").len(), 2, "B re-established the backend session");
    let replayed = &backend.seen("initialize")[1];
    assert_eq!(replayed.params["clientInfo"]["name"], "standard-policies", "with the client's own initialize: {:?}", replayed.params);
    drop(stream);

    // A DELETE on B ends it on C too (and on B).
    let gone = raw_b.delete(&sid).header("authorization", &format!("Bearer {}", token("alice"))).send().await;
    assert_eq!(gone.status, 200, "{gone:?}");
    for g in [b, c] {
        let r = alice.at(&g.mcp_url("s")).call("echo", json!({ "text": "after delete" })).await;
        assert_eq!((r.status, r.error_code()), (404, NOT_FOUND_CODE), "{r:?}");
    }
    assert_eq!(get(&redis, &format!("tollgate:session:{sid}")).await.as_deref(), Some("ended"));

    // Ids never issued are unknown everywhere.
    let alice_auth = format!("Bearer {}", token("alice"));
    for id in ["0123456789abcdef0123456789abcdef", "not-an-id", "session:x"] {
        for g in [b, c] {
            let raw = Raw::new(&g.mcp_url("s"));
            let r = raw.post_json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" })).session(id).header("authorization", &alice_auth).send().await;
            assert_eq!((r.status, r.error_code()), (404, NOT_FOUND_CODE), "{id}: {r:?}");
            assert_eq!(raw.get(id).header("authorization", &alice_auth).open().await.status().as_u16(), 404, "{id}");
        }
    }
    assert!(backend.seen("tools/call").iter().all(|s| s.params["arguments"]["text"] != "after delete"));
}

#[tokio::test]
async fn requests_racing_to_continue_one_session_on_a_replica_make_one_session() {
    let redis = Redis::start().await;
    let backend = Recorder::start().await;
    let gws = replicas(2, &redis, json!([server("s", &backend.url, json!([]))]), None).await;
    let mut first = Caller::new(&gws[0].mcp_url("s")).initialized().await;
    assert_eq!(text(&first.call("echo", json!({ "text": "on a" })).await), "on a");
    kill(&gws[0]).await;

    let sid = first.session().expect("a session").to_owned();
    let raw = Raw::new(&gws[1].mcp_url("s"));
    let calls = (0..8)
        .map(|i| raw.post_json(&request(10 + i, "tools/call", json!({ "name": "echo", "arguments": { "text": format!("call {i}") } }))).session(&sid).send());
    for (i, r) in futures::future::join_all(calls).await.iter().enumerate() {
        assert_eq!(text(r), format!("call {i}"));
    }
    assert_eq!(backend.seen("initialize").len(), 2, "one new backend session for all eight");
    assert_eq!(gws[1].log().matches(CONTINUED).count(), 1, "{}", gws[1].log());
}

#[tokio::test]
async fn while_redis_is_out_sessions_stay_in_their_replica_and_are_listed_once_it_is_back() {
    let mut redis = Redis::start().await;
    let backend = Recorder::start().await;
    // A short idle timeout, so the record is written again (every quarter of it) within the test.
    let gws = replicas(2, &redis, json!([server("s", &backend.url, json!([]))]), Some(json!({ "idle_timeout_s": 8 }))).await;
    redis.stop().await;
    eventually_async(10, "the replicas see the outage", || async { gws.iter().all(|g| g.log().contains("policy state store (redis) is unreachable")) }).await;

    let mut caller = Caller::new(&gws[0].mcp_url("s")).initialized().await;
    assert_eq!(text(&caller.call("echo", json!({ "text": "during" })).await), "during", "a session works where it began");
    let r = caller.at(&gws[1].mcp_url("s")).call("echo", json!({ "text": "elsewhere" })).await;
    assert_eq!(r.status, 404, "another replica cannot know it: {r:?}");
    assert_eq!(gws[1].log().matches("sessions of other replicas are not continued here").count(), 1, "logged once: {}", gws[1].log());

    redis.restart().await;
    let sid = caller.session().expect("a session").to_owned();
    let key = format!("tollgate:session:{sid}");
    eventually_async(15, "the session is written once Redis answers", || {
        let mut c = caller.clone();
        let (redis, key) = (&redis, key.clone());
        async move {
            assert_eq!(text(&c.call("echo", json!({ "text": "again" })).await), "again");
            get(redis, &key).await.is_some()
        }
    })
    .await;
    let r = caller.at(&gws[1].mcp_url("s")).call("echo", json!({ "text": "moved" })).await;
    assert_eq!(text(&r), "moved", "and then it can move");
}

#[tokio::test]
async fn a_replica_that_still_holds_a_session_ended_elsewhere_lets_it_go_at_its_next_refresh() {
    let redis = Redis::start().await;
    let backend = Recorder::start().await;
    // Records are written again every quarter of the idle timeout: 2 s here.
    let gws = replicas(2, &redis, json!([server("s", &backend.url, json!([]))]), Some(json!({ "idle_timeout_s": 8 }))).await;
    let mut on_a = Caller::new(&gws[0].mcp_url("s")).initialized().await;
    let sid = on_a.session().expect("a session").to_owned();
    // The client moves while A lives (a load balancer without affinity): both hold the session.
    let mut on_b = on_a.at(&gws[1].mcp_url("s"));
    assert_eq!(text(&on_b.call("echo", json!({ "text": "on b" })).await), "on b");
    assert_eq!(Raw::new(&gws[1].mcp_url("s")).delete(&sid).send().await.status, 200);

    eventually_async(10, "A lets the session go once its refresh finds it ended", || {
        let mut c = on_a.clone();
        async move { c.call("echo", json!({ "text": "on a" })).await.status == 404 }
    })
    .await;
    assert!(gws[0].log().contains("session ended on another replica"), "{}", gws[0].log());
    let r = on_a.call("echo", json!({ "text": "still gone" })).await;
    assert_eq!(r.status, 404, "{r:?}");
}
