//! `tollgate:policy/secrets`: values read at load from the environment or a file, granted by name.

use crate::policy::bindings::secrets;
use crate::policy::engine::Host;

impl secrets::Host for Host {
    fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.reach.secrets = true;
        Ok(self.grants.secrets.get(&name).cloned())
    }
}
