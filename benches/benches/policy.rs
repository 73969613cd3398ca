//! Cost of the policy runtime: one invocation of a no-op policy (a fresh instance, `init`,
//! `on-request`), a chain of four test policies, and the load harness's chain of four standard
//! policies (`benches/configs/chain4.yaml`), against an empty chain. Runs the same path
//! requests take (`Chain::admit`), without HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tollgate::config::Config;
use tollgate::jsonrpc::{Id, Message};
use tollgate::policy::{self, Admission, Caller, Chain, Route};

/// Builds the test policies (tests/guests) and returns where they are.
fn guests() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests");
    let status = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["build", "-q", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the test policies failed");
    dir.join("target/wasm32-wasip2/release")
}

/// The time limits are wide: on a shared machine the process can be descheduled for longer
/// than the default 100 ms, and a bench measures cost, not limits.
fn chains(rt: &tokio::runtime::Runtime) -> (Arc<Chain>, Arc<Chain>) {
    let g = guests();
    let g = g.display();
    let yaml = format!(
        "servers:
  - name: one
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - policy: {g}/noop.wasm
        limits: {{ timeout_ms: 10000 }}
  - name: four
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - policy: {g}/gatekeeper.wasm
        limits: {{ timeout_ms: 10000 }}
        config: {{ api_key: k1 }}
      - policy: {g}/gatekeeper.wasm
        limits: {{ timeout_ms: 10000 }}
        config: {{ hidden: [secret-tool], role: user }}
      - policy: {g}/gatekeeper.wasm
        limits: {{ timeout_ms: 10000 }}
        config: {{ add_arguments: {{ tenant: acme }} }}
      - policy: {g}/noop.wasm
        limits: {{ timeout_ms: 10000 }}
"
    );
    let file = std::env::temp_dir().join(format!("tollgate-bench-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let config = Config::load(&file).unwrap();
    let loaded = rt.block_on(policy::load(&config, &file)).unwrap();
    let _ = std::fs::remove_file(&file);
    (loaded.chains["one"].clone(), loaded.chains["four"].clone())
}

/// The chain of `benches/configs/chain4.yaml` (jwt RS256, ip-filter, rate-limit, credentials),
/// with its secret read from a scratch file instead of the environment.
fn standard_chain(rt: &tokio::runtime::Runtime) -> Arc<Chain> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let key = std::env::temp_dir().join(format!("tollgate-bench-key-{}", std::process::id()));
    std::fs::write(&key, "bench-key").unwrap();
    let yaml = std::fs::read_to_string(dir.join("chain4.yaml"))
        .unwrap()
        .replace("{LISTEN}", "127.0.0.1:0")
        .replace("{BACKEND_URL}", "http://127.0.0.1:9/mcp")
        .replace("{ env: TOLLGATE_BENCH_KEY }", &format!("{{ file: {} }}", key.display()));
    let file = std::env::temp_dir().join(format!("tollgate-bench-std-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let config = Config::load(&file).unwrap();
    let loaded = rt.block_on(policy::load(&config, &file)).unwrap();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&key);
    loaded.chains["echo"].clone()
}

/// A caller of the standard chain: the bench token, from loopback.
fn bearer() -> Arc<Caller> {
    let token = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/chain4.token")).unwrap();
    let mut headers = hyper::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {}", token.trim()).parse().unwrap());
    Arc::new(Caller { headers, addr: Some("127.0.0.1:40000".parse().unwrap()) })
}

fn call() -> Message {
    Message::request(Id::Num(7), "tools/call", json!({ "name": "echo", "arguments": { "text": "hello" } }))
}

fn caller() -> Arc<Caller> {
    let mut headers = hyper::HeaderMap::new();
    headers.insert("x-api-key", "k1".parse().unwrap());
    Arc::new(Caller { headers, addr: Some("127.0.0.1:40000".parse().unwrap()) })
}

async fn admit(chain: &Arc<Chain>, caller: &Arc<Caller>) {
    let route = Route { server: "s".into(), session_id: Some("sess".into()), protocol_version: Some("2025-06-18".into()) };
    match chain.admit(call(), route, caller.clone()).await {
        Admission::Forward { .. } => {}
        Admission::Deny(r) => panic!("the bench chain forwards, but it refused: {} {}", r.code, r.message),
        _ => panic!("the bench chain forwards"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (one, four) = chains(&rt);
    let empty = Arc::new(Chain::default());
    let who = caller();
    let standard = standard_chain(&rt);
    let holder = bearer();
    let mut g = c.benchmark_group("policy");
    g.bench_function("empty chain", |b| b.to_async(&rt).iter(|| admit(&empty, &who)));
    g.bench_function("no-op policy (instantiate + init + on-request)", |b| b.to_async(&rt).iter(|| admit(&one, &who)));
    g.bench_function("chain of four", |b| b.to_async(&rt).iter(|| admit(&four, &who)));
    g.bench_function("standard chain of four (jwt, ip-filter, rate-limit, credentials)", |b| b.to_async(&rt).iter(|| admit(&standard, &holder)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
