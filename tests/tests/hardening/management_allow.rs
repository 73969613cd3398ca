//! The admin token is not a shell: through the management API, a stdio backend, a component
//! from a local path and a secret or certificate read from a file are refused unless
//! `management.allow` opens them, on every route that takes them.

use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, write_temp};

const TOKEN: &str = "allow-admin-token";

fn problems(body: &Value) -> Vec<String> {
    body["errors"].as_array().into_iter().flatten().map(|p| p["path"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_reaches_past_the_network_unless_allowed() {
    let backend = Backend::rmcp().start().await;
    let data = write_temp("keep", "").parent().unwrap().join("data");
    let gateway = Gateway::new()
        .server("docs", backend.url())
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", json!([{ "name": "free", "servers": [{ "server": "docs" }], "subscription_required": false }]))
        .start()
        .await;
    let admin = Admin::new(&gateway.management(), TOKEN);

    let stdio = json!({ "name": "shell", "backend": { "stdio": { "command": "sh", "args": ["-c", "id"] } } });
    let r = admin.put_if("/api/servers/shell", None, stdio).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(problems(&r.body), ["server.backend.stdio"]);
    assert!(r.body["detail"].as_str().unwrap().contains("management.allow: [stdio]"), "{:?}", r.body);

    let file_secret = json!({ "name": "leak", "backend": { "http": backend.url(), "headers": { "x-key": { "file": "/etc/passwd" } } } });
    let r = admin.put_if("/api/servers/leak", None, file_secret).await;
    assert_eq!((r.status, problems(&r.body)), (403, vec!["server.backend.headers.x-key".to_owned()]), "{:?}", r.body);

    // A CA bundle or client certificate is a file read from the gateway's disk too.
    let pki = json!({ "name": "pki", "backend": { "http": backend.url(), "tls": { "ca": "/etc/ssl/private/ca.pem", "cert": "/etc/c.pem", "key": { "file": "/etc/k.pem" } } } });
    let r = admin.put_if("/api/servers/pki", None, pki).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(problems(&r.body), ["server.backend.tls.key", "server.backend.tls.ca", "server.backend.tls.cert"], "{:?}", r.body);
    let chain_pki = json!([{ "policy": "jwt", "config": {}, "tls": { "ca": "/etc/ca.pem" } }]);
    let etag = admin.get("/api/servers/docs/policies").await.etag;
    let r = admin.put_if("/api/servers/docs/policies", etag.as_deref(), chain_pki).await;
    assert_eq!((r.status, problems(&r.body)), (403, vec!["policies[0].tls.ca".to_owned()]), "{:?}", r.body);

    let local = json!([{ "policy": "/tmp/anything.wasm" }]);
    let etag = admin.get("/api/servers/docs/policies").await.etag;
    let r = admin.put_if("/api/servers/docs/policies", etag.as_deref(), local).await;
    assert_eq!((r.status, problems(&r.body)), (403, vec!["policies[0].policy".to_owned()]), "{:?}", r.body);

    let secret_file = json!([{ "policy": "credentials", "config": {}, "secrets": { "k": { "file": "/etc/shadow" } } }]);
    let r = admin.put_if("/api/servers/docs/policies", etag.as_deref(), secret_file).await;
    assert_eq!((r.status, problems(&r.body)), (403, vec!["policies[0].secrets.k".to_owned()]), "{:?}", r.body);

    let product = json!({ "name": "free", "servers": [{ "server": "docs" }], "subscription_required": false, "policies": [{ "policy": "../x.wasm" }] });
    let etag = admin.get("/api/products/free").await.etag;
    let r = admin.put_if("/api/products/free", etag.as_deref(), product).await;
    assert_eq!((r.status, problems(&r.body)), (403, vec!["product.policies[0].policy".to_owned()]), "{:?}", r.body);

    for name in ["shell", "leak", "pki"] {
        assert_eq!(admin.get(&format!("/api/servers/{name}")).await.status, 404, "nothing of a refused server is kept");
    }
    assert_eq!(admin.get("/api/servers/docs/policies").await.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_stdio_is_taken() {
    let gateway =
        Gateway::new().server("docs", tollgate_tests::backend::nothing_listening()).management_with(TOKEN, json!({ "allow": ["stdio"] })).start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let echo = tollgate_tests::process::binary("echo_stdio");
    let r = admin.put_if("/api/servers/local", None, json!({ "name": "local", "backend": { "stdio": { "command": echo, "warm": 0 } } })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}
