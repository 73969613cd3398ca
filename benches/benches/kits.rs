//! What a policy costs per call in each kit: a no-op (the request hook, going on) and the
//! template every kit ships (the blocklist, asked whether the called tool is visible), each
//! built as an author builds it (`tollgate policy new` and `tollgate policy build`), run on
//! the path requests take (`Chain::admit`), with a fresh instance per exchange (the default)
//! and with `instances: reused`. A kit whose toolchain is missing is left out, and said so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

#[path = "support/exchange.rs"]
mod exchange;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tollgate::config::Config;
use tollgate::kit_build::Tools;
use tollgate::policy::{self, Admission, Caller, Chain};
use tollgate::scaffold::Lang;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The kits' build tools where `scripts/setup.sh` puts them, unless the environment names others.
fn tools() -> Tools {
    let mut tools = Tools::from_env();
    let at = |rel: &str| Some(root().join(rel)).filter(|p| p.exists()).map(PathBuf::into_os_string);
    tools.componentize_py = tools.componentize_py.or_else(|| at("tests/interop/.venv/bin/componentize-py"));
    tools.componentize_js = tools.componentize_js.or_else(|| at("kits/js/node_modules/.bin/componentize-js"));
    tools
}

/// Builds the project in `dir` as `tollgate policy build` does; None, with why, when its tool is missing.
fn build(dir: &Path) -> Option<PathBuf> {
    tollgate::kit_build::build_with(dir, &tools()).map_err(|e| eprintln!("kits bench: {} left out: {e}", dir.display())).ok()
}

/// (kit, no-op component, blocklist component) for every kit whose toolchain is here.
fn components(scratch: &Path) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for (kit, lang, noop) in [
        ("rust", Lang::Rust, None),
        ("python", Lang::Python, Some(("app.py", "benches/kits/noop.py"))),
        ("js", Lang::Js, Some(("policy.js", "benches/kits/noop.js"))),
    ] {
        let blocklist = tollgate::scaffold::new_project(scratch, &format!("{kit}-blocklist"), lang).expect("a project is written");
        let noop = match noop {
            // Rust's no-op is the test policy `noop`, built with the SDK like the template.
            None => {
                let guests = root().join("tests/guests");
                let status = Command::new(env!("CARGO"))
                    .current_dir(&guests)
                    .args(["build", "-q", "--release", "--target", "wasm32-wasip2", "-p", "noop"])
                    .env("CARGO_TARGET_DIR", guests.join("target"))
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building the no-op policy failed");
                Some(guests.join("target/wasm32-wasip2/release/noop.wasm"))
            }
            Some((file, source)) => {
                let dir = tollgate::scaffold::new_project(scratch, &format!("{kit}-noop"), lang).expect("a project is written");
                std::fs::copy(root().join(source), dir.join(file)).expect("the no-op source");
                build(&dir)
            }
        };
        if let (Some(noop), Some(blocklist)) = (noop, build(&blocklist)) {
            out.push((kit, noop, blocklist));
        }
    }
    out
}

/// One server per (kit, policy, instances): its chain of one binding.
fn chains(rt: &tokio::runtime::Runtime, kits: &[(&'static str, PathBuf, PathBuf)], scratch: &Path) -> Vec<(String, Arc<Chain>)> {
    let mut servers = Vec::new();
    let mut names = Vec::new();
    for (kit, noop, blocklist) in kits {
        for (what, path, config) in [("no-op", noop, json!({})), ("blocklist", blocklist, json!({ "blocked": ["delete_everything"] }))] {
            for (instances, label) in [("per_exchange", "fresh"), ("reused", "reused")] {
                let name = format!("{kit}-{what}-{label}");
                // Wide limits: a bench measures cost, and an interpreter's first calls are slow.
                servers.push(json!({
                    "name": name,
                    "backend": { "http": "http://127.0.0.1:9/mcp" },
                    "policies": [{ "policy": path, "config": config, "instances": instances, "limits": { "timeout_ms": 10000, "memory_mb": 64 } }],
                }));
                names.push((format!("{kit} {what}, {label} instance"), name));
            }
        }
    }
    let file = scratch.join("kits.yaml");
    std::fs::write(&file, serde_json::to_string(&json!({ "servers": servers })).unwrap()).unwrap();
    let config = Config::load(&file).expect("the bench config is valid");
    let loaded = rt.block_on(policy::load(&config, &file)).unwrap_or_else(|e| panic!("the kits' chains load: {e}"));
    names.into_iter().map(|(label, name)| (label, loaded.chains[&tollgate::config::version_key(&name, None)].clone())).collect()
}

async fn admit(chain: &Arc<Chain>, caller: &Arc<Caller>) {
    match chain.admit(exchange::call(), exchange::route(), caller.clone(), None).await {
        Admission::Forward { .. } => {}
        Admission::Deny(r) => panic!("the bench chain forwards, but it refused: {} {}", r.code, r.message),
        _ => panic!("the bench chain forwards"),
    }
}

fn bench(c: &mut Criterion) {
    let scratch = std::env::temp_dir().join(format!("tollgate-kits-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let kits = components(&scratch);
    let chains = chains(&rt, &kits, &scratch);
    let who = Arc::new(Caller { headers: Default::default(), addr: Some("127.0.0.1:40000".parse().unwrap()), ip: Some("127.0.0.1".parse().unwrap()) });
    let mut g = c.benchmark_group("kit");
    // An interpreter's fresh instance costs milliseconds: few, equal-sized samples keep the run short.
    g.sampling_mode(criterion::SamplingMode::Flat).sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    for (label, chain) in &chains {
        rt.block_on(admit(chain, &who));
        g.bench_function(label.as_str(), |b| b.to_async(&rt).iter(|| admit(chain, &who)));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&scratch);
}

criterion_group!(benches, bench);
criterion_main!(benches);
