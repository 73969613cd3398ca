//! Cost of the policy runtime: one invocation of a no-op policy (a fresh instance of its
//! pre-initialized snapshot, `on-request`; and on an instance a step left, `instances: reused`),
//! a chain of four test policies, and the load harness's chain of four standard policies
//! (`benches/configs/chain4.yaml`, whose instances are reused, the standard policies' default),
//! against an empty chain; then one invocation of each standard policy as it is shipped in the
//! binary (`jwt` RS256 and ES256 with a warm JWKS, `rate-limit`, `ip-filter`, a `cache` hit).
//! Runs the same path requests take (`Chain::admit`), without HTTP.

#[path = "support/exchange.rs"]
mod exchange;
#[path = "support/idp.rs"]
mod idp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tollgate::config::Config;
use tollgate::mcp::jsonrpc::{Id, Message};
use tollgate::policy::{self, Admission, Caller, Chain};

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
fn chains(rt: &tokio::runtime::Runtime) -> (Arc<Chain>, Arc<Chain>, Arc<Chain>) {
    let g = guests();
    let g = g.display();
    let yaml = format!(
        "servers:
  - name: one
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - policy: {g}/noop.wasm
        limits: {{ timeout_ms: 10000 }}
  - name: one-reused
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - policy: {g}/noop.wasm
        instances: reused
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
    (loaded.chains["one"].clone(), loaded.chains["one-reused"].clone(), loaded.chains["four"].clone())
}

/// One chain per standard policy, each a single binding of the policy shipped in the binary.
struct Standard {
    rs256: Arc<Chain>,
    es256: Arc<Chain>,
    rs256_remembered: Arc<Chain>,
    rate_limit: Arc<Chain>,
    ip_filter: Arc<Chain>,
    cache: Arc<Chain>,
}

fn standard(rt: &tokio::runtime::Runtime, jwks_url: &str) -> Standard {
    let jwt = |remember: bool| {
        format!(
            "{{ jwks_url: '{jwks_url}', issuers: ['{}'], audiences: [{}], algorithms: [RS256, ES256], cache_verified: {remember} }}",
            idp::ISSUER,
            idp::AUDIENCE
        )
    };
    let (verify, remember) = (jwt(false), jwt(true));
    // Generous per-hook limits (the default is 100 ms): on a shared machine a stall must not fail a bench.
    let yaml = format!(
        "servers:
  - name: rs256
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: jwt, config: {verify}, allow_hosts: [127.0.0.1], limits: {{ timeout_ms: 5000 }} }}
  - name: es256
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: jwt, config: {verify}, allow_hosts: [127.0.0.1], limits: {{ timeout_ms: 5000 }} }}
  - name: rs256-remembered
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: jwt, config: {remember}, allow_hosts: [127.0.0.1], limits: {{ timeout_ms: 5000 }} }}
  - name: rate-limit
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: rate-limit, config: {{ key: [client_ip, tool], limit: 1000000000, window: 1h }}, limits: {{ timeout_ms: 5000 }} }}
  - name: ip-filter
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: ip-filter, config: {{ allow: [10.0.0.0/8, 127.0.0.0/8, '::1', 'fd00::/8'], deny: [127.0.0.66] }}, limits: {{ timeout_ms: 5000 }} }}
  - name: cache
    backend: {{ http: http://127.0.0.1:9/mcp }}
    policies:
      - {{ policy: cache, config: {{ tools: [echo], ttl: 1h }}, limits: {{ timeout_ms: 5000 }} }}
"
    );
    let file = std::env::temp_dir().join(format!("tollgate-bench-standard-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let config = Config::load(&file).unwrap();
    let loaded = rt.block_on(policy::load(&config, &file)).unwrap();
    let _ = std::fs::remove_file(&file);
    let chain = |name: &str| loaded.chains[name].clone();
    Standard {
        rs256: chain("rs256"),
        es256: chain("es256"),
        rs256_remembered: chain("rs256-remembered"),
        rate_limit: chain("rate-limit"),
        ip_filter: chain("ip-filter"),
        cache: chain("cache"),
    }
}

/// The chain of `benches/configs/chain4.yaml` (jwt RS256, ip-filter, rate-limit, credentials),
/// with its secret read from a scratch file instead of the environment.
fn standard_chain(rt: &tokio::runtime::Runtime, key: &idp::Key) -> Arc<Chain> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let secret = std::env::temp_dir().join(format!("tollgate-bench-key-{}", std::process::id()));
    std::fs::write(&secret, "bench-key").unwrap();
    let yaml = std::fs::read_to_string(dir.join("chain4.yaml"))
        .unwrap()
        .replace("{LISTEN}", "127.0.0.1:0")
        .replace("{BACKEND_URL}", "http://127.0.0.1:9/mcp")
        .replace("{JWT_JWKS_KEY}", &key.jwk.to_string())
        .replace("{ env: TOLLGATE_BENCH_KEY }", &format!("{{ file: {} }}", secret.display()));
    let file = std::env::temp_dir().join(format!("tollgate-bench-std-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let config = Config::load(&file).unwrap();
    let loaded = rt.block_on(policy::load(&config, &file)).unwrap();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&secret);
    loaded.chains["echo"].clone()
}

fn caller() -> Arc<Caller> {
    with_header("x-api-key", "k1")
}

fn with_header(name: &'static str, value: &str) -> Arc<Caller> {
    let mut headers = hyper::HeaderMap::new();
    headers.insert(name, value.parse().unwrap());
    Arc::new(Caller { headers, addr: Some("127.0.0.1:40000".parse().unwrap()), ip: Some("127.0.0.1".parse().unwrap()) })
}

fn bearer(token: &str) -> Arc<Caller> {
    with_header("authorization", &format!("Bearer {token}"))
}

async fn admit(chain: &Arc<Chain>, caller: &Arc<Caller>) {
    match run(chain, caller).await {
        Admission::Forward { .. } => {}
        other => panic!("the bench chain forwards, but {}", outcome(&other)),
    }
}

/// The request phase as the server runs it for one `tools/call` on a session.
async fn run(chain: &Arc<Chain>, caller: &Arc<Caller>) -> Admission {
    chain.admit(exchange::call(), exchange::route(), caller.clone(), None).await
}

/// A policy's own answer: what the `cache` policy gives on a hit.
async fn answered(chain: &Arc<Chain>, caller: &Arc<Caller>) {
    match run(chain, caller).await {
        Admission::Answer { .. } => {}
        other => panic!("the bench chain answers from its cache, but {}", outcome(&other)),
    }
}

fn outcome(a: &Admission) -> String {
    match a {
        Admission::Forward { .. } => "it forwarded".into(),
        Admission::Answer { .. } => "it answered".into(),
        Admission::Deny(r) => format!("it refused: {} {}", r.code, r.message),
        Admission::Drop => "it dropped the message".into(),
    }
}

/// Fills the cache: one miss, forwarded, whose answer passes back through the response phase.
async fn fill(chain: &Arc<Chain>, caller: &Arc<Caller>) {
    let Admission::Forward { trail: Some(trail), .. } = run(chain, caller).await else {
        panic!("the first call misses the cache and is forwarded with a trail");
    };
    let answer = Message::result(Id::Num(7), json!({ "content": [{ "type": "text", "text": "hello" }], "isError": false }));
    trail.settle(answer, None).await;
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (one, one_reused, four) = chains(&rt);
    let empty = Arc::new(Chain::default());
    let who = caller();
    // The load harness's chain, with a key made here in place of the one the harness makes.
    let chain4_key = idp::Key::rsa("bench");
    let chain4 = standard_chain(&rt, &chain4_key);
    let holder = bearer(&chain4_key.token());
    let mut g = c.benchmark_group("policy");
    g.bench_function("empty chain", |b| b.to_async(&rt).iter(|| admit(&empty, &who)));
    g.bench_function("no-op policy (instantiate + on-request; init ran at load)", |b| b.to_async(&rt).iter(|| admit(&one, &who)));
    g.bench_function("no-op policy, instances reused (on-request on an idle instance)", |b| b.to_async(&rt).iter(|| admit(&one_reused, &who)));
    g.bench_function("chain of four", |b| b.to_async(&rt).iter(|| admit(&four, &who)));
    g.bench_function("standard chain of four (jwt, ip-filter, rate-limit, credentials)", |b| b.to_async(&rt).iter(|| admit(&chain4, &holder)));
    g.finish();

    let (rs, es) = (idp::Key::rsa("bench-rs"), idp::Key::ec("bench-ec"));
    let jwks = idp::serve_jwks(&[&rs, &es]);
    let p = standard(&rt, &jwks);
    let (rs_caller, es_caller) = (bearer(&rs.token()), bearer(&es.token()));
    // Warm up: the first call of each fetches the JWKS, the second must find it in shared state.
    for (chain, who) in [(&p.rs256, &rs_caller), (&p.es256, &es_caller), (&p.rs256_remembered, &rs_caller)] {
        rt.block_on(admit(chain, who));
    }
    rt.block_on(fill(&p.cache, &who));
    rt.block_on(answered(&p.cache, &who));

    let mut g = c.benchmark_group("standard policy");
    // A signature check in wasm takes milliseconds: equal-sized samples keep the run short.
    g.sampling_mode(criterion::SamplingMode::Flat);
    g.bench_function("jwt RS256 (warm JWKS, signature checked)", |b| b.to_async(&rt).iter(|| admit(&p.rs256, &rs_caller)));
    g.bench_function("jwt ES256 (warm JWKS, signature checked)", |b| b.to_async(&rt).iter(|| admit(&p.es256, &es_caller)));
    g.bench_function("jwt RS256 (verified token remembered)", |b| b.to_async(&rt).iter(|| admit(&p.rs256_remembered, &rs_caller)));
    g.bench_function("rate-limit check", |b| b.to_async(&rt).iter(|| admit(&p.rate_limit, &who)));
    g.bench_function("ip-filter check", |b| b.to_async(&rt).iter(|| admit(&p.ip_filter, &who)));
    g.bench_function("cache hit", |b| b.to_async(&rt).iter(|| answered(&p.cache, &who)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
