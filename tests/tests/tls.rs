//! TLS on the client listener: a client that trusts the certificate gets MCP over HTTPS, a
//! plain-HTTP client gets nothing, and a certificate file that is not one is refused at load.
//! TLS toward backends behind a private PKI: reached with their CA bundle and, where they ask
//! for one, a client certificate; refused without.

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

    // ALPN offers h2 and HTTP/1.1; a client of either is served.
    let ca = || reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap();
    for (client, version) in [
        (reqwest::Client::builder().add_root_certificate(ca()).build().unwrap(), reqwest::Version::HTTP_2),
        (reqwest::Client::builder().add_root_certificate(ca()).http1_only().build().unwrap(), reqwest::Version::HTTP_11),
    ] {
        let resp = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize_request(1).to_string())
            .send()
            .await
            .expect("an HTTPS exchange");
        assert_eq!((resp.status().as_u16(), resp.version()), (200, version));
        assert!(resp.headers().get("mcp-session-id").is_some(), "the session is issued over TLS");
    }

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

/// Initializes through `name` (with a bearer token, if given): the HTTP status, whether a
/// session was issued, and the body.
async fn initialize_through(gateway: &tollgate_tests::gateway::RunningGateway, name: &str, token: Option<&str>) -> (u16, bool, String) {
    let mut req = reqwest::Client::new()
        .post(gateway.mcp_url(name))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_request(1).to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("an exchange with the gateway");
    let status = resp.status().as_u16();
    let session = resp.headers().get("mcp-session-id").is_some();
    (status, session, resp.text().await.unwrap_or_default())
}

/// A backend whose certificate a private CA signed is reached with that CA's bundle, and not
/// without it (the public roots do not vouch for it); one that requires a client certificate
/// is reached with the gateway's, and refused without; a key file that is no key fails `validate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_behind_a_private_pki_is_reached_with_its_ca_and_client_certificate() {
    use serde_json::json;
    use tollgate_tests::tls_front::{self, TestCa};
    let backend = Backend::rmcp().start().await;
    let plain: std::net::SocketAddr = backend.url().trim_start_matches("http://").trim_end_matches("/mcp").parse().unwrap();
    let ca = TestCa::new("Tollgate test CA");
    let served = ca.sign(&["127.0.0.1", "localhost"]);
    let open = tls_front::start(plain, &served, None).await;
    let mutual = tls_front::start(plain, &served, Some(&ca)).await;
    let client = ca.sign(&["gateway.test"]);
    let ca_file = write_temp("backend-ca.pem", &ca.cert_pem);
    let cert_file = write_temp("client-cert.pem", &client.cert_pem);
    let key_file = write_temp("client-key.pem", &client.key_pem);
    let url = |a: std::net::SocketAddr| format!("https://127.0.0.1:{}/mcp", a.port());
    let gateway = Gateway::new()
        .server_with("trusted", json!({ "http": url(open), "tls": { "ca": ca_file } }))
        .server_with("untrusted", json!({ "http": url(open) }))
        .server_with("mutual", json!({ "http": url(mutual), "tls": { "ca": ca_file, "cert": cert_file, "key": { "file": key_file } } }))
        .server_with("no-client-cert", json!({ "http": url(mutual), "tls": { "ca": ca_file } }))
        .start()
        .await;

    let (status, session, body) = initialize_through(&gateway, "trusted", None).await;
    assert!(status == 200 && session, "reached with the CA bundle: {status} {body}");
    let (status, session, body) = initialize_through(&gateway, "mutual", None).await;
    assert!(status == 200 && session, "reached with the client certificate: {status} {body}");
    let (status, session, body) = initialize_through(&gateway, "untrusted", None).await;
    assert!(!session && body.contains("-32004") && body.contains("certificate"), "a certificate no known root vouches for: {status} {body}");
    // TLS 1.3: the client's side of the handshake completes, then the backend's alert ends it.
    let (status, session, body) = initialize_through(&gateway, "no-client-cert", None).await;
    assert!(!session && body.contains("CertificateRequired"), "a backend that requires a client certificate: {status} {body}");
    assert!(!gateway.log().contains("PRIVATE KEY"), "the client key never reaches the log");

    let not_a_key = write_temp("not-a-key.pem", "hello");
    let config = format!(
        "servers:\n  - name: a\n    backend:\n      http: https://127.0.0.1:9/mcp\n      tls:\n        ca: {}\n        cert: {}\n        key: {{ file: {} }}\n",
        ca_file.display(),
        cert_file.display(),
        not_a_key.display()
    );
    let (status, output) = run_tollgate(&["validate"], &config).await;
    assert!(!status.success());
    assert!(output.contains("servers[0].backend.tls.key") && output.contains("not a PEM private key"), "{output}");
}

/// A policy's outbound HTTP to a host behind a private PKI: `jwt` fetches its JWKS over https
/// from a host whose certificate a test CA signed, with the binding's `tls.ca`; without it the
/// keys cannot be had and the request is refused; a literal key in a binding is refused at load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reaches_a_host_behind_a_private_ca_with_its_binding_s_bundle() {
    use serde_json::json;
    use tollgate_tests::idp::{Idp, Key, now};
    use tollgate_tests::tls_front::{self, TestCa};
    let backend = Backend::rmcp().start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let plain: std::net::SocketAddr = idp.issuer.trim_start_matches("http://").parse().unwrap();
    let ca = TestCa::new("Tollgate test CA");
    let front = tls_front::start(plain, &ca.sign(&["127.0.0.1"]), None).await;
    let ca_file = write_temp("idp-ca.pem", &ca.cert_pem);
    let jwks = format!("https://127.0.0.1:{}/jwks", front.port());
    let jwt = |tls: serde_json::Value| {
        let mut b = json!({ "policy": "jwt", "config": { "jwks_url": jwks, "issuers": [idp.issuer], "audiences": ["tools"] }, "allow_hosts": ["127.0.0.1"] });
        if !tls.is_null() {
            b["tls"] = tls;
        }
        json!([b])
    };
    let gateway = Gateway::new()
        .server("trusting", backend.url())
        .policies("trusting", jwt(json!({ "ca": ca_file })))
        .server("public-roots", backend.url())
        .policies("public-roots", jwt(serde_json::Value::Null))
        .start()
        .await;
    let token = key.sign(&json!({ "iss": idp.issuer, "sub": "alice", "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let (status, session, body) = initialize_through(&gateway, "trusting", Some(&token)).await;
    assert!(status == 200 && session, "the JWKS is fetched through the private CA: {status} {body}");
    let (status, session, body) = initialize_through(&gateway, "public-roots", Some(&token)).await;
    assert!(!session && status == 503, "without the bundle the keys cannot be had: {status} {body}");

    let literal = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n    policies:\n      - policy: jwt\n        config: { jwks_url: https://idp.example/jwks, audiences: [a] }\n        tls: { cert: c.pem, key: not-a-reference }\n";
    let (status, output) = run_tollgate(&["validate"], literal).await;
    assert!(!status.success());
    assert!(output.contains("servers[0].policies[0].tls.key") && output.contains("by reference"), "{output}");
}

/// A relative certificate path is taken from the config file's directory, as every path in the
/// file is, whatever directory the gateway is started from.
#[tokio::test]
async fn a_relative_certificate_path_is_taken_from_the_config_file_s_directory() {
    let pair = localhost_cert();
    let dir = tollgate_tests::gateway::TempDir::new();
    std::fs::copy(&pair.cert, dir.0.join("cert.pem")).unwrap();
    std::fs::copy(&pair.key, dir.0.join("key.pem")).unwrap();
    let file = dir.0.join("gateway.yaml");
    std::fs::write(&file, "tls: { cert: cert.pem, key: key.pem }\nservers:\n  - name: a\n    backend: { http: http://127.0.0.1:9/mcp }\n").unwrap();
    let out = std::process::Command::new(tollgate_tests::process::binary("tollgate"))
        .current_dir(std::env::temp_dir())
        .args(["validate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// An OpenAPI document fetched from a host behind a private PKI: with the backend's `tls.ca`
/// it is read and its operations become tools; without, the fetch is refused at the spec's
/// place, naming the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openapi_document_behind_a_private_ca_is_fetched_with_the_backend_s_bundle() {
    use tollgate_tests::tls_front::{self, TestCa};
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/openapi/petstore.yaml")).expect("the Petstore spec");
    let app = axum::Router::new().route("/openapi.yaml", axum::routing::get(move || async move { spec }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ca = TestCa::new("Tollgate spec CA");
    let front = tls_front::start(plain, &ca.sign(&["127.0.0.1"]), None).await;
    let ca_file = write_temp("spec-ca.pem", &ca.cert_pem);
    let config = |tls: &str| {
        format!(
            "servers:\n  - name: pets\n    backend:\n      openapi: {{ spec: https://127.0.0.1:{}/openapi.yaml, base_url: http://127.0.0.1:9/v1 }}\n{tls}",
            front.port()
        )
    };

    let (status, output) = run_tollgate(&["validate"], &config(&format!("      tls: {{ ca: {} }}\n", ca_file.display()))).await;
    assert!(status.success(), "read with the CA bundle: {output}");
    let (status, output) = run_tollgate(&["validate"], &config("")).await;
    assert!(!status.success());
    assert!(output.contains("servers[0].backend.openapi.spec") && output.contains("certificate"), "{output}");
}
