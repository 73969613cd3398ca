//! Policy components uploaded through the management API, kept content-addressed in
//! `management.data_dir/components/<sha256>.wasm` and named by bindings as `sha256:<hex>`.
//!
//! The name is the content: the same bytes uploaded to a test and a production gateway get the
//! same name, so one config file serves both, and a stored file can be checked against its name.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::DIGEST_PREFIX;

/// The directory uploaded components live in, under `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("components")
}

/// The hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>`: what a binding's `policy` says to use this component.
pub fn reference(hex: &str) -> String {
    format!("{DIGEST_PREFIX}{hex}")
}

fn file(dir: &Path, hex: &str) -> PathBuf {
    dir.join(format!("{hex}.wasm"))
}

/// Keeps `bytes` under their digest: written to a temporary file, fsynced, renamed into place
/// and the directory fsynced, so a crash leaves either the whole component or none. `true` if
/// it was not there before.
pub fn save(dir: &Path, hex: &str, bytes: &[u8]) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let target = file(dir, hex);
    if target.exists() {
        return Ok(false);
    }
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{hex}.{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map(|()| true)
}

/// The bytes of the component `hex`, checked against their name.
pub fn read(dir: &Path, hex: &str) -> Result<Vec<u8>, String> {
    let path = file(dir, hex);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no component {} has been uploaded (POST /api/components; looked for {})", reference(hex), path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    })?;
    if digest(&bytes) != hex {
        return Err(format!("{} does not hold the component its name says: upload it again", path.display()));
    }
    Ok(bytes)
}

/// One stored component.
#[derive(Debug, serde::Serialize)]
pub struct Stored {
    pub policy: String,
    pub sha256: String,
    pub size: u64,
}

/// Every stored component, by digest.
pub fn list(dir: &Path) -> std::io::Result<Vec<Stored>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".wasm")).filter(|h| crate::config::is_digest(h)) else { continue };
        out.push(Stored { policy: reference(hex), sha256: hex.to_owned(), size: entry.metadata()?.len() });
    }
    out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_component_is_read_back_by_its_digest_and_a_changed_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("tollgate-uploads-{}", std::process::id()));
        let hex = digest(b"component");
        assert!(save(&dir, &hex, b"component").unwrap());
        assert!(!save(&dir, &hex, b"component").unwrap(), "kept once");
        assert_eq!(read(&dir, &hex).unwrap(), b"component");
        assert_eq!(list(&dir).unwrap().iter().map(|s| s.policy.clone()).collect::<Vec<_>>(), [reference(&hex)]);
        std::fs::write(file(&dir, &hex), b"changed").unwrap();
        assert!(read(&dir, &hex).unwrap_err().contains("upload it again"));
        assert!(read(&dir, &digest(b"other")).unwrap_err().contains("has been uploaded"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
