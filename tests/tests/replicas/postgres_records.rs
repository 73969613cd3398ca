//! Management records in PostgreSQL: what one replica's API changes is in force on the others
//! within a second, concurrent changes through two replicas are refused as on one, and
//! nothing acknowledged is lost to a `kill -9` of a replica or a restart of PostgreSQL.

use std::ops::Not;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use tollgate_tests::admin::Admin;
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::client::{Client, Options};
use tollgate_tests::eventually_async;
use tollgate_tests::gateway::{RunningGateway, TempDir};
use tollgate_tests::postgres::Postgres;

const TOKEN: &str = "replicas-admin-token";

/// A replica: its own data_dir, the shared database, product `team` over server `alpha`.
async fn replica(pg: &Postgres, backend: &RunningBackend, data: &TempDir, n: usize) -> (RunningGateway, Admin) {
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "T", "data_dir": data.0.join(format!("replica-{n}")), "database": pg.url() },
        "servers": [{ "name": "alpha", "backend": { "http": backend.url() } }],
        "products": [{ "name": "team", "servers": [{ "server": "alpha" }] }],
    });
    let gw = RunningGateway::from_config(config, &[("T", TOKEN)]).await;
    let admin = Admin::new(&gw.management(), TOKEN);
    (gw, admin)
}

async fn admitted(gw: &RunningGateway, key: &str) -> bool {
    match Client::try_connect_with_key(&gw.mcp_url("alpha"), Options { reinit_on_expired_session: false }, Some(key)).await {
        Ok(c) => {
            let ok = c.call_tool("echo", json!({ "text": "hi" })).await.is_ok();
            c.close().await;
            ok
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_subscription_made_on_one_replica_admits_on_another_and_a_suspension_refuses_on_a_third() {
    let pg = Postgres::start().await;
    let backend = Backend::rmcp().start().await;
    let data = TempDir::new();
    let (a, admin_a) = replica(&pg, &backend, &data, 0).await;
    let (b, admin_b) = replica(&pg, &backend, &data, 1).await;
    let (c, _admin_c) = replica(&pg, &backend, &data, 2).await;

    let sub = admin_a.subscribe("team", "alice").await;
    let started = Instant::now();
    eventually_async(5, "the key made on A admits on B", || admitted(&b, &sub.primary)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "in force on B after {took:?}");
    assert!(admitted(&c, &sub.primary).await);

    // Suspended through B; read back on A with the same ETag B gave (ETags agree).
    eventually_async(5, "B knows the subscription", || async { admin_b.get(&format!("/api/subscriptions/{}", sub.id)).await.status == 200 }).await;
    admin_b.act(&sub.id, "suspend").await;
    eventually_async(5, "the suspension made on B refuses on C", || async { !admitted(&c, &sub.primary).await }).await;
    eventually_async(5, "A sees the suspension", || async { admin_a.get(&format!("/api/subscriptions/{}", sub.id)).await.body["state"] == "suspended" }).await;
    let (on_a, on_b) = (admin_a.get(&format!("/api/subscriptions/{}", sub.id)).await, admin_b.get(&format!("/api/subscriptions/{}", sub.id)).await);
    assert_eq!(on_b.body["state"], "suspended");
    assert_eq!(on_a.etag, on_b.etag, "an ETag means the same on every replica");
    assert!(admitted(&a, &sub.primary).await.not(), "nor on A");
}

#[tokio::test]
async fn concurrent_changes_through_two_replicas_with_one_etag_are_refused() {
    let pg = Postgres::start().await;
    let backend = Backend::rmcp().start().await;
    let data = TempDir::new();
    let (_a, admin_a) = replica(&pg, &backend, &data, 0).await;
    let (_b, admin_b) = replica(&pg, &backend, &data, 1).await;
    let sub = admin_a.subscribe("team", "bob").await;
    eventually_async(5, "B knows the subscription", || async { admin_b.get(&format!("/api/subscriptions/{}", sub.id)).await.status == 200 }).await;
    let etag = admin_a.get(&format!("/api/subscriptions/{}", sub.id)).await.etag.expect("an ETag");
    let path = format!("/api/subscriptions/{}/suspend", sub.id);
    let body = json!({ "by": "ops" });
    // The same read, two writers on two replicas at once: exactly one wins.
    let (ra, rb) = tokio::join!(admin_a.post_if(&path, Some(&etag), body.clone()), admin_b.post_if(&path, Some(&etag), body.clone()));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{ra:?} {rb:?}");

    // A product changed on A; B, told the old ETag, refuses a change made with it.
    let product = admin_a.get("/api/products/team").await;
    let old = product.etag.clone().expect("an ETag");
    let mut changed: Value = product.body.clone();
    changed["description"] = json!("changed on A");
    assert_eq!(admin_a.put_if("/api/products/team", Some(&old), changed.clone()).await.status, 200);
    changed["description"] = json!("changed on B");
    let r = admin_b.put_if("/api/products/team", Some(&old), changed).await;
    assert_eq!(r.status, 412, "{r:?}");
    eventually_async(5, "B shows A's change", || async { admin_b.get("/api/products/team").await.body["description"] == "changed on A" }).await;
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_to_a_killed_replica_or_a_restarted_database() {
    let mut pg = Postgres::start().await;
    let backend = Backend::rmcp().start().await;
    let data = TempDir::new();
    let (a, admin_a) = replica(&pg, &backend, &data, 0).await;
    let first = admin_a.subscribe("team", "carol").await;
    a.kill_9();
    let (b, admin_b) = replica(&pg, &backend, &data, 1).await;
    assert!(admitted(&b, &first.primary).await, "acknowledged on A before its kill -9, in force on B");

    pg.restart().await;
    // The pool reconnects; the first write after the restart may find a dead connection.
    let mut second = None;
    for _ in 0..3 {
        let r = admin_b.post("/api/subscriptions", json!({ "product": "team", "subscriber": "dave" })).await;
        if r.status == 201 {
            second = Some(r.body["keys"]["primary"].as_str().expect("a key").to_owned());
            break;
        }
    }
    let second = second.expect("writes succeed once PostgreSQL is back");
    let (c, _) = replica(&pg, &backend, &data, 2).await;
    assert!(admitted(&c, &first.primary).await && admitted(&c, &second).await);
    // B follows changes again after the restart: one made on C reaches it.
    let third = Admin::new(&c.management(), TOKEN).subscribe("team", "erin").await;
    eventually_async(5, "B follows changes again after the database restarted", || admitted(&b, &third.primary)).await;
    assert_eq!(pg.psql("SELECT count(*) FROM tollgate_records WHERE kind = 'subscriptions' AND record IS NOT NULL").await, "3");
}

/// What `tollgate apply` does through one replica (servers, chains, uploaded components, through
/// the API) serves on every replica.
#[tokio::test]
async fn a_server_a_chain_and_a_component_put_through_one_replica_serve_on_another() {
    let pg = Postgres::start().await;
    let backend = Backend::rmcp().start().await;
    let other = Backend::rmcp().named("beta").start().await;
    let data = TempDir::new();
    let (_a, admin_a) = replica(&pg, &backend, &data, 0).await;
    let (b, admin_b) = replica(&pg, &backend, &data, 1).await;

    let created = admin_a.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": other.url() } })).await;
    assert_eq!(created.status, 201, "{created:?}");
    eventually_async(5, "the server made on A serves on B", || async {
        match Client::try_connect(&b.mcp_url("beta"), Options { reinit_on_expired_session: false }).await {
            Ok(c) => c.whoami().await == "beta",
            Err(_) => false,
        }
    })
    .await;

    let wasm = std::fs::read(format!("{}/gatekeeper.wasm", env!("TOLLGATE_GUESTS"))).expect("the gatekeeper test policy is built");
    let up = admin_a.post_bytes("/api/components", "application/wasm", wasm).await;
    assert_eq!(up.status, 201, "{up:?}");
    let policy = up.body["policy"].as_str().expect("a reference").to_owned();
    let etag = admin_a.get("/api/servers/alpha/policies").await.etag.expect("an ETag");
    let chain = json!([{ "policy": policy, "config": { "hidden": ["echo"] } }]);
    let put = admin_a.put_if("/api/servers/alpha/policies", Some(&etag), chain.clone()).await;
    assert_eq!(put.status, 200, "{put:?}");
    let key = admin_a.subscribe("team", "frank").await.primary;
    eventually_async(5, "the chain set on A, with the component uploaded there, hides echo on B", || async {
        let Ok(c) = Client::try_connect_with_key(&b.mcp_url("alpha"), Options { reinit_on_expired_session: false }, Some(&key)).await else { return false };
        let hidden = !c.list_tools().await.contains(&"echo".to_owned());
        c.close().await;
        hidden
    })
    .await;
    let shown = admin_b.get("/api/servers/alpha/policies").await.body;
    assert_eq!(shown[0]["policy"], json!(policy), "B shows A's chain: {shown}");
}
