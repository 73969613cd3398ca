//! Hot reload: when the config file or a policy component changes, or on SIGHUP, the file is
//! loaded again off the request path and what differs is swapped in: servers and versions,
//! products, routings, policy chains. A file that fails to load changes nothing.
//! Listeners, limits and telemetry are read at start only.

mod products;
mod servers;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::gateway::Gateway;

/// Editors write a file in several steps: wait for quiet before reloading.
const SETTLE: Duration = Duration::from_millis(150);

/// Watches `file` and the components it names, and SIGHUP, for as long as the gateway runs.
pub fn watch(gw: Arc<Gateway>, file: PathBuf, components: Vec<PathBuf>) {
    let (tx, rx) = mpsc::channel::<()>(1);
    let watched = Arc::new(std::sync::Mutex::new(watched_set(&file, &components)));
    let (filter, events) = (watched.clone(), tx.clone());
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        // Only changes count: the reload itself opens and reads these files.
        let metadata_only = matches!(ev.kind, notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_)));
        if metadata_only || !(ev.kind.is_create() || ev.kind.is_modify() || ev.kind.is_remove()) {
            return;
        }
        let set = filter.lock().expect("watch lock");
        if ev.paths.iter().any(|p| set.contains(&normalize(p)) || set.contains(p)) {
            let _ = events.try_send(());
        }
    });
    let mut watcher = watcher.inspect_err(|e| tracing::warn!(error = %e, "cannot watch files; reload with SIGHUP")).ok();
    if let Some(w) = watcher.as_mut() {
        watch_dirs(w, &watched.lock().expect("watch lock"));
    }
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = tx.send(()).await;
                }
            });
        }
        let mut rx = rx;
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            if let Some(components) = reload(&gw, &file).await {
                let set = watched_set(&file, &components);
                if let Some(w) = watcher.as_mut() {
                    watch_dirs(w, &set);
                }
                *watched.lock().expect("watch lock") = set;
            }
        }
    });
}

/// Makes the file what runs, but for what the management API set: servers and versions
/// added, changed or removed, products, routings, and policy chains. The whole file is
/// checked and every chain loaded first; a file that fails changes nothing. The component
/// files on success, to watch.
pub async fn reload(gw: &Gateway, file: &Path) -> Option<Vec<PathBuf>> {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload failed; what runs stays:\n{e}");
            return None;
        }
    };
    let loaded = match crate::policy::load(&config, file).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("reload failed; what runs stays:\n{e}");
            return None;
        }
    };
    // Where state and records are kept is chosen once: a change needs a restart to apply.
    let database = |c: &Config| c.management.as_ref().and_then(|m| m.database.clone());
    if config.state != gw.config.state || database(&config) != database(&gw.config) {
        tracing::warn!("`state` and `management.database` are read at start: restart the gateway for the file's to apply");
    }
    let _changing = gw.changing.lock().await;
    servers::sync(gw, &config, &loaded).await;
    gw.install(&loaded);
    products::sync(gw, &config, &loaded);
    servers::prune(gw, &config).await;
    let counts: Vec<String> = loaded.chains.iter().map(|(s, c)| format!("{s}: {}", c.len())).collect();
    tracing::info!(chains = %counts.join(", "), "config reloaded");
    Some(loaded.files)
}

fn normalize(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

fn watched_set(file: &Path, components: &[PathBuf]) -> HashSet<PathBuf> {
    std::iter::once(file).chain(components.iter().map(PathBuf::as_path)).flat_map(|p| [normalize(p), p.to_owned()]).collect()
}

/// Watches directories, not files: editors and build tools replace a file by renaming over it.
fn watch_dirs(w: &mut notify::RecommendedWatcher, set: &HashSet<PathBuf>) {
    let dirs: HashSet<PathBuf> = set.iter().filter_map(|p| p.parent().map(Path::to_owned)).filter(|d| d.is_dir()).collect();
    for d in dirs {
        let _ = w.watch(&d, RecursiveMode::NonRecursive);
    }
}
