//! Secrets by reference or in place reach their backend, and nothing the gateway shows or logs
//! holds their values. A stdio child gets a minimal environment, never the gateway's own.

use serde_json::json;
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, TempDir, run_remote, run_tollgate};
use tollgate_tests::process::binary;

const TOKEN: &str = "secrets-admin-token";
const LITERAL: &str = "literal-s3cret-value";
const FROM_ENV: &str = "Bearer env-s3cret-value";
const FROM_FILE: &str = "file-s3cret-value";
const STDIO_LITERAL: &str = "stdio-s3cret-value";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_backends_and_nothing_shown_holds_them() {
    let backend = Backend::rmcp().start().await;
    let dir = TempDir::new();
    let secret_file = dir.0.join("token");
    std::fs::write(&secret_file, format!("{FROM_FILE}\n")).unwrap();
    let report = dir.0.join("child-env");
    let gateway = Gateway::new()
        .server_with("vault", json!({ "http": backend.url(), "headers": { "x-api-key": LITERAL, "authorization": { "env": "VAULT_TOKEN" } } }))
        .server_with(
            "local",
            json!({ "stdio": {
                "command": binary("echo_stdio"),
                "args": ["--report-env", report],
                "env": { "CHILD_TOKEN": { "file": secret_file }, "CHILD_PLAIN": STDIO_LITERAL },
            } }),
        )
        .management_with(TOKEN, json!({ "read_only_token_env": "TOLLGATE_READ_TOKEN" }))
        .env("VAULT_TOKEN", FROM_ENV)
        .env("TOLLGATE_READ_TOKEN", "reader-token")
        .env("GATEWAY_ONLY_SECRET", "never-for-children")
        .start()
        .await;

    // The backend gets both headers.
    let client = Client::connect(&gateway.mcp_url("vault")).await;
    assert_eq!(client.echo("hi").await, "hi");
    let seen = backend.seen().headers();
    let last = seen.last().expect("the backend was reached");
    assert_eq!(last["x-api-key"], LITERAL);
    assert_eq!(last["authorization"], FROM_ENV);

    // The stdio child: the variables it was given and the minimal set, nothing of the gateway's.
    tollgate_tests::eventually(15, "the warm stdio child reports its environment", || report.exists()).await;
    let env = std::fs::read_to_string(&report).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    assert!(env.contains(&format!("CHILD_TOKEN={FROM_FILE}\n")), "{env}");
    assert!(env.contains(&format!("CHILD_PLAIN={STDIO_LITERAL}\n")), "{env}");
    assert!(names.contains(&"PATH"), "{names:?}");
    for gateway_own in ["TOLLGATE_ADMIN_TOKEN", "TOLLGATE_READ_TOKEN", "VAULT_TOKEN", "GATEWAY_ONLY_SECRET"] {
        assert!(!names.contains(&gateway_own), "the child got {gateway_own}: {names:?}");
    }
    let local = Client::connect(&gateway.mcp_url("local")).await;
    assert_eq!(local.echo("over stdio").await, "over stdio");

    // Everything shown: references as they are, literals masked, no value anywhere.
    let admin = Admin::new(&gateway.management(), TOKEN);
    let reader = Admin::new(&gateway.management(), "reader-token");
    let mut shown = Vec::new();
    for path in ["/api/config", "/api/servers/vault", "/api/servers/local"] {
        for who in [&admin, &reader] {
            let r = who.get(path).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.body);
            shown.push((path.to_owned(), r.body.to_string()));
        }
    }
    let vault = admin.get("/api/servers/vault").await.body;
    assert_eq!(vault["backend"]["headers"]["x-api-key"], "<redacted>");
    assert_eq!(vault["backend"]["headers"]["authorization"], json!({ "env": "VAULT_TOKEN" }));
    let (ok, exported, err) = run_remote(&["export"], &gateway.management(), TOKEN).await;
    assert!(ok, "{err}");
    shown.push(("export".into(), exported.clone()));
    shown.push(("log".into(), gateway.log()));
    for (what, text) in &shown {
        for value in [LITERAL, FROM_ENV, "env-s3cret", FROM_FILE, STDIO_LITERAL] {
            assert!(!text.contains(value), "{what} shows a secret's value: {text}");
        }
    }
    assert!(exported.contains("<redacted>") && exported.contains("VAULT_TOKEN"), "{exported}");

    // The read-only token changes nothing.
    let r = reader.put_if("/api/servers/extra", None, json!({ "name": "extra", "backend": { "http": backend.url() } })).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(admin.get("/api/servers/extra").await.status, 404);

    // An export applied as it is does not put `<redacted>` in force: the file is refused.
    let (status, out) = run_tollgate(&["validate"], &exported).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("servers[0].backend.headers.x-api-key") && out.contains("masked"), "{out}");
}

#[tokio::test]
async fn a_reference_that_cannot_be_read_is_refused_at_load_with_its_place() {
    let config = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n      headers: { authorization: { env: TOLLGATE_TEST_SURELY_UNSET } }\n  - name: b\n    backend:\n      stdio: { command: cat, env: { K: { file: /nonexistent/secret } } }\n  - name: c\n    backend:\n      http: http://127.0.0.1:9/mcp\n      headers: { x-a: { env: A, file: b } }\n";
    let (status, out) = run_tollgate(&["validate"], config).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("servers[0].backend.headers.authorization: environment variable TOLLGATE_TEST_SURELY_UNSET is not set"), "{out}");
    assert!(out.contains("servers[1].backend.stdio.env.K: cannot read /nonexistent/secret"), "{out}");
    assert!(out.contains("servers[2].backend.headers.x-a: give exactly one of `env` or `file`"), "{out}");
}
