//! `limits` and `sessions`: the bounds on what clients may cost the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Bounds on what one client may cost the gateway.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest request body a client may send, in bytes.
    pub max_body_bytes: usize,
    /// The most a request's headers may take together, in bytes.
    pub max_header_bytes: usize,
    /// Time to establish a connection to an HTTP backend.
    pub connect_timeout_ms: u64,
    /// Time a backend has to answer one request before the client gets a timeout error.
    pub request_timeout_ms: u64,
    /// A server-to-client stream with no traffic for this long gets a keep-alive comment.
    pub keepalive_ms: u64,
    /// How long in-flight requests may run after SIGTERM before the gateway stops anyway.
    pub shutdown_grace_ms: u64,
    /// Entries a JSON-RPC batch (protocol 2025-03-26) may hold; a larger one is refused whole.
    pub max_batch_entries: usize,
    /// Address space a component's compile may use, in MiB; past it the load fails.
    pub policy_compile_memory_mb: u64,
    /// Where compiled components are kept, so a restart, a reload or another replica loads
    /// them rather than compiling again: a directory (relative to the config file) that only
    /// this user can write, or `off`. Unset: `<management.data_dir>/compiled`, else the user's
    /// cache directory (`$XDG_CACHE_HOME/tollgate/compiled`, `~/.cache/tollgate/compiled`).
    /// Read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_compile_cache: Option<CompileCache>,
    /// Connections open at once on a listener; past it, new ones wait for one to close.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and the longest an HTTP/1 connection
    /// may sit idle between requests.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body once its headers arrived.
    pub body_read_timeout_ms: u64,
    /// Bound on the policies' embedded state (counters, caches, fetched keys), in MiB; past
    /// it, entries are evicted.
    pub max_policy_state_mb: usize,
    /// Threads that run client connections and their requests; unset, one per CPU. Each runs
    /// its connections to the end on its own, so a request's tasks never wake another thread.
    /// Fewer leave cores to what shares the machine. Read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<usize>,
    /// Where the client listener is reached from this host, once it is bound: virtual
    /// servers reach their members there. Not part of the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub loopback: Option<Loopback>,
}

/// The client listener as virtual servers reach it: its address from this host, and a key
/// drawn at start that vouches for the gateway's own requests (`tollgate-via`).
#[derive(Clone)]
pub struct Loopback {
    pub addr: SocketAddr,
    pub key: std::sync::Arc<str>,
}

impl Loopback {
    /// For the listener bound at `bound`: an unspecified address is reached on loopback.
    pub fn new(bound: SocketAddr) -> Loopback {
        let addr = match bound.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], bound.port())),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port())),
            _ => bound,
        };
        Loopback { addr, key: format!("{:032x}", rand::random::<u128>()).into() }
    }

    /// Whether `presented` is this process's key (compared in constant time).
    pub fn vouches(&self, presented: &str) -> bool {
        let (a, b) = (presented.as_bytes(), self.key.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Loopback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loopback").field("addr", &self.addr).field("key", &"<redacted>").finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_header_bytes: 64 << 10,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 120_000,
            keepalive_ms: 15_000,
            shutdown_grace_ms: 10_000,
            max_batch_entries: 64,
            max_policy_state_mb: 256,
            max_connections: 10_000,
            policy_compile_memory_mb: 4096,
            policy_compile_cache: None,
            worker_threads: None,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 30_000,
            loopback: None,
        }
    }
}

/// `limits.policy_compile_cache`: a directory, or `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileCache {
    Off,
    Dir(PathBuf),
}

impl Serialize for CompileCache {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CompileCache::Off => s.serialize_str("off"),
            CompileCache::Dir(d) => d.serialize(s),
        }
    }
}

/// Its schema, which must say what this accepts, is in `schema.rs`.
impl<'de> Deserialize<'de> for CompileCache {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CompileCache;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a directory, or `off`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CompileCache, E> {
                match v {
                    "off" => Ok(CompileCache::Off),
                    "" => Err(E::custom("must be a directory, or `off`")),
                    dir => Ok(CompileCache::Dir(PathBuf::from(dir))),
                }
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<CompileCache, E> {
                if v { Err(E::custom("must be a directory, or `off`")) } else { Ok(CompileCache::Off) }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Limits {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn keepalive(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }
}

/// Client sessions issued by the gateway.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// A session unused for this long is closed, and its backend session with it.
    pub idle_timeout_s: u64,
    /// Upper bound on live sessions; a new client beyond it gets 503.
    pub max_sessions: usize,
    /// Upper bound on the live sessions of one server (all its versions together), so one
    /// server's callers cannot take every session; a server's own `max_sessions` overrides it.
    /// Unset: `max_sessions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_server: Option<usize>,
    /// Server-to-client messages kept per stream for `Last-Event-ID` resumption.
    pub replay_buffer: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { idle_timeout_s: 1800, max_sessions: 10_000, max_per_server: None, replay_buffer: 256 }
    }
}
