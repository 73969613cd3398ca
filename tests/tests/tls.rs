//! TLS on the client listener: a client that trusts the certificate gets MCP over HTTPS, a
//! plain-HTTP client gets nothing, and a certificate file that is not one is refused at load.

use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, run_tollgate, write_temp};
use tollgate_tests::raw::initialize_request;

struct Pair {
    cert_pem: String,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn localhost_cert() -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).expect("a certificate");
    let cert_pem = ck.cert.pem();
    Pair { cert: write_temp("cert.pem", &cert_pem), key: write_temp("key.pem", &ck.signing_key.serialize_pem()), cert_pem }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trusts_the_certificate_speaks_mcp_over_https() {
    let backend = Backend::rmcp().start().await;
    let pair = localhost_cert();
    let gateway = Gateway::new().server("echo", backend.url()).tls(&pair.cert, &pair.key).start().await;
    let url = gateway.mcp_url("echo").replacen("http://", "https://", 1);

    let trusted = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap()).build().unwrap();
    let resp = trusted
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_request(1).to_string())
        .send()
        .await
        .expect("an HTTPS exchange");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("mcp-session-id").is_some(), "the session is issued over TLS");

    let untrusting = reqwest::Client::new();
    assert!(untrusting.post(&url).body("{}").send().await.is_err(), "a client that does not trust the certificate is refused");
    let plain = reqwest::Client::new().post(gateway.mcp_url("echo")).body("{}").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served on a TLS listener");
}

#[tokio::test]
async fn a_certificate_file_that_is_not_one_is_refused_at_load() {
    let not_pem = write_temp("not-a-cert.pem", "hello");
    let config =
        format!("tls:\n  cert: {}\n  key: {}\nservers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n", not_pem.display(), not_pem.display());
    let (status, output) = run_tollgate(&["validate"], &config).await;
    assert!(!status.success());
    assert!(output.contains("line 1: tls:") && output.contains("holds no certificate"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_serves_over_tls_when_configured() {
    let backend = Backend::rmcp().start().await;
    let pair = localhost_cert();
    let tls = serde_json::json!({ "tls": { "cert": pair.cert, "key": pair.key } });
    let gateway = Gateway::new().server("echo", backend.url()).management_with("tls-admin-token", tls).start().await;
    let base = gateway.management().replacen("http://", "https://", 1);
    let trusted = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap()).build().unwrap();
    let r = trusted.get(format!("{base}/api/servers")).bearer_auth("tls-admin-token").send().await.expect("an HTTPS exchange");
    assert_eq!(r.status(), 200);
    let plain = reqwest::Client::new().get(format!("{}/api/servers", gateway.management())).bearer_auth("tls-admin-token").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served on a TLS management listener");
}
