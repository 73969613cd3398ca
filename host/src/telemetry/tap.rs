//! Taps: a caller inside the gateway (the console's playground) sees what became of the
//! exchanges it sent through the client listener itself: each one's status, outcome and
//! policy steps, as the access log would record them.
//!
//! The caller opens a tap and sends its requests with [`HEADER`] naming the tap's id, a
//! random 128-bit value that lives only as long as the tap; an exchange naming an id that is
//! not open is not tapped, so no client can read another's exchanges by sending the header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;

/// The request header that names a tap.
pub const HEADER: &str = "tollgate-tap";

/// What one tapped exchange came to.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Tapped {
    /// The MCP method.
    pub method: String,
    /// The HTTP status the client got.
    pub status: u16,
    /// As the metrics name it: `ok`, `unauthorized`, `forbidden`, `rate_limited`, ...
    pub outcome: String,
    /// The JSON-RPC error code, when the answer was an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Each policy step: `{name, phase, verdict, us}`.
    pub policies: Vec<Value>,
}

type Senders = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Tapped>>>>;

/// The open taps.
#[derive(Default)]
pub struct Taps {
    open: Senders,
}

impl Taps {
    /// Opens a tap; it closes when dropped.
    pub fn open(&self) -> Tap {
        let id = format!("{:032x}", rand::random::<u128>());
        let (tx, rx) = mpsc::unbounded_channel();
        self.open.lock().expect("taps lock").insert(id.clone(), tx);
        Tap { id, rx, open: self.open.clone() }
    }

    /// The tap a request's header names, if it is open.
    pub fn find(&self, headers: &hyper::HeaderMap) -> Option<mpsc::UnboundedSender<Tapped>> {
        let id = headers.get(HEADER)?.to_str().ok()?;
        self.open.lock().expect("taps lock").get(id).cloned()
    }
}

/// An open tap: the exchanges that name it arrive on [`Tap::next`].
pub struct Tap {
    pub id: String,
    rx: mpsc::UnboundedReceiver<Tapped>,
    open: Senders,
}

impl Tap {
    /// The next tapped exchange, or `None` if none comes within `wait` (a request refused
    /// before it became an exchange, such as one the HTTP layer turned away).
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<Tapped> {
        tokio::time::timeout(wait, self.rx.recv()).await.ok().flatten()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.open.lock().expect("taps lock").remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_open_tap_is_found() {
        let taps = Taps::default();
        let tap = taps.open();
        let mut h = hyper::HeaderMap::new();
        h.insert(HEADER, tap.id.parse().unwrap());
        assert!(taps.find(&h).is_some());
        let mut other = hyper::HeaderMap::new();
        other.insert(HEADER, "0123456789abcdef0123456789abcdef".parse().unwrap());
        assert!(taps.find(&other).is_none());
        drop(tap);
        assert!(taps.find(&h).is_none());
    }
}
