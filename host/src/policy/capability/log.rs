//! `tollgate:policy/log` and `clock`: the gateway's tracing, under the policy's name.

use crate::policy::bindings::{clock, log};
use crate::policy::engine::Host;

/// A policy's log line is bounded, so a chatty policy cannot flood the log.
const MAX_LINE: usize = 2048;

impl log::Host for Host {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let (policy, server) = (&*self.grants.policy, &*self.grants.server);
        match level {
            log::Level::Trace => tracing::trace!(policy, server, "{message}"),
            log::Level::Debug => tracing::debug!(policy, server, "{message}"),
            log::Level::Info => tracing::info!(policy, server, "{message}"),
            log::Level::Warn => tracing::warn!(policy, server, "{message}"),
            log::Level::Error => tracing::error!(policy, server, "{message}"),
        }
        Ok(())
    }
}

impl clock::Host for Host {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.reach.changing("the clock");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(now.as_millis() as u64)
    }
}
