//! `tollgate:policy/secrets`: values read at load from the environment or a file, granted by name.

use std::path::Path;

use crate::config::SecretSource;
use crate::policy::bindings::secrets;
use crate::policy::engine::Host;

impl secrets::Host for Host {
    fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.grants.secrets.get(&name).cloned())
    }
}

/// Reads one secret. The error names the source, never the value.
pub fn read(source: &SecretSource, base: &Path) -> Result<String, String> {
    match (&source.env, &source.file) {
        (Some(var), _) => std::env::var(var).map_err(|_| format!("environment variable {var} is not set")),
        (_, Some(file)) => {
            let path = base.join(file);
            std::fs::read_to_string(&path).map(|s| s.trim_end_matches(['\n', '\r']).to_owned()).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        _ => Err("no source".into()),
    }
}
