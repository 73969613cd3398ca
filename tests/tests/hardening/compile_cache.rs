//! A compiled component is kept on disk (`limits.policy_compile_cache`, by default
//! `<management.data_dir>/compiled`), so the next start loads it rather than compiling again.
//! The directory holds machine code the gateway runs: a damaged file is compiled again and
//! replaced, and a directory others could write is not used at all.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{RunningGateway, TempDir};
use tollgate_tests::standard::{FORBIDDEN, policy, server};

const TOKEN: &str = "compile-cache-admin";

/// A gateway whose one server refuses loopback clients (`ip-filter`), its data in `data`.
async fn start(backend: &str, data: &Path) -> RunningGateway {
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN", "data_dir": data },
        "servers": [server("a", backend, json!([policy("ip-filter", json!({ "deny": ["127.0.0.0/8"] }))]))],
    });
    RunningGateway::from_config(config, &[("TOLLGATE_ADMIN_TOKEN", TOKEN)]).await
}

/// The policy runs: a loopback client is refused by it.
async fn refuses(gw: &RunningGateway) {
    let r = gw.caller("a").initialize().await;
    assert_eq!((r.status, r.error_code()), (403, FORBIDDEN), "the policy refuses a loopback client: {r:?}\n{}", gw.log());
}

async fn stop(gw: RunningGateway) {
    gw.terminate();
    assert!(gw.exit_within(Duration::from_secs(30)).await.is_some(), "the gateway stops on SIGTERM:\n{}", gw.log());
}

/// The compiled components in `dir`.
fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect()).unwrap_or_default();
    files.sort();
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).expect("metadata").modified().expect("mtime")
}

/// Sets a file's mtime far in the past, so a later use of it shows.
fn age(path: &Path) -> SystemTime {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(path).expect("open").set_modified(old).expect("set mtime");
    old
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_component_is_kept_reused_replaced_when_damaged_and_not_used_from_an_open_directory() {
    let backend = Backend::rmcp().start().await;
    let data = TempDir::new();
    let cache = data.0.join("compiled");

    // First start: compiled, and kept, readable and writable by its owner only.
    let gw = start(&backend.url(), &data.0).await;
    let log = gw.log();
    assert!(log.contains("policy component compiled"), "{log}");
    assert!(!log.contains("loaded from the compile cache"), "{log}");
    // The component (instrumented for pre-initialization), and the binding's initialized snapshot.
    let files = artifacts(&cache);
    assert_eq!(files.len(), 2, "the component and the binding's snapshot are kept in {}: {files:?}\n{log}", cache.display());
    assert_eq!(mode(&cache), 0o700, "the directory is its owner's only");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.len() > 64 + 1 + ".cwasm".len() && name.as_bytes()[64] == b'-', "named <sha256>-<engine>.cwasm: {name}");
        assert_eq!(mode(file), 0o600, "the file is its owner's only");
    }
    let file = files[0].clone();
    refuses(&gw).await;
    stop(gw).await;
    let size = std::fs::metadata(&file).unwrap().len();

    // Second start: loaded from the file (its mtime marks the use), and the policy works.
    let old = age(&file);
    let gw = start(&backend.url(), &data.0).await;
    let log = gw.log();
    assert!(log.contains("loaded from the compile cache"), "{log}");
    assert!(!log.contains("policy component compiled"), "nothing is compiled: {log}");
    assert!(mtime(&file) > old, "a use marks the file recently used");
    assert_eq!(artifacts(&cache), files, "no new file");
    refuses(&gw).await;
    stop(gw).await;

    // A damaged file: not used, compiled again and rewritten; the gateway starts all the same.
    std::fs::File::options().write(true).open(&file).unwrap().set_len(size / 2).unwrap();
    let gw = start(&backend.url(), &data.0).await;
    let log = gw.log();
    assert!(log.contains("WARN") && log.contains("a compiled component in the cache is not used"), "{log}");
    assert!(log.contains("policy component compiled"), "{log}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size, "the file is written whole again");
    assert_eq!(mode(&file), 0o600);
    refuses(&gw).await;
    stop(gw).await;

    // A directory its group can write is not used: a warning, a compile, the file untouched.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o770)).unwrap();
    let old = age(&file);
    let gw = start(&backend.url(), &data.0).await;
    let log = gw.log();
    assert!(log.contains("WARN") && log.contains("the compile cache is not used") && log.contains("770"), "{log}");
    assert!(log.contains("policy component compiled") && !log.contains("loaded from the compile cache"), "{log}");
    assert_eq!(mtime(&file), old, "the file in the open directory is not read");
    assert_eq!(artifacts(&cache), files, "nothing is written there");
    refuses(&gw).await;
    stop(gw).await;
}

#[tokio::test]
async fn off_keeps_nothing_and_a_directory_of_the_config_is_used() {
    let backend = Backend::rmcp().start().await;
    let dir = TempDir::new();
    let chosen = dir.0.join("elsewhere");
    for (cache, kept) in [(json!("off"), false), (json!(chosen), true)] {
        let config = json!({
            "listen": "127.0.0.1:0",
            "limits": { "policy_compile_cache": cache },
            "management": { "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN", "data_dir": dir.0.join("data") },
            "servers": [server("a", &backend.url(), json!([policy("ip-filter", json!({ "deny": ["127.0.0.0/8"] }))]))],
        });
        let gw = RunningGateway::from_config(config, &[("TOLLGATE_ADMIN_TOKEN", TOKEN)]).await;
        assert!(gw.log().contains("policy component compiled"), "{}", gw.log());
        assert!(artifacts(&dir.0.join("data/compiled")).is_empty(), "data_dir is not used when the config names the cache ({cache})");
        assert_eq!(artifacts(&chosen).len(), if kept { 2 } else { 0 }, "{cache}: {}", gw.log());
        refuses(&gw).await;
        stop(gw).await;
    }
}
