//! The gateway's configuration: typed, parsed in this module only, and checked once at load.
//!
//! Every problem found is reported with the place in the file (`servers[1].backend.http`, line 7),
//! so `tollgate validate` can print all of them at once.

pub mod authorization;
mod client_address;
mod client_tls;
mod compose;
mod locate;
mod log;
pub mod openapi;
mod policy;
mod products;
pub mod schema;
pub mod secret;
mod state;
mod telemetry;
pub mod tls;
mod validate;
mod versions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use client_address::{ClientAddress, ForwardedHeader, Nets};
pub use client_tls::{ClientTls, TlsMaterial};
pub use compose::ComposeMember;
pub use locate::Locator;
pub use log::{LogConfig, LogLines};
pub use openapi::{OpenApiConfig, Operations, ToolOverride};
pub use policy::{DIGEST_PREFIX, Instances, MAX_MEMORY_MB, OnStateOutage, PolicyBinding, PolicyLimits, check_chain, is_digest};
pub use products::{ProductConfig, ProductServer, SubscriptionKeyConfig, check_one as check_product};
pub use secret::{Secret, SecretRef};
pub use state::StateConfig;
pub use telemetry::{AccessLog, LogFormat, LogLevel, LogTarget, OtlpProtocol, PayloadLog, Telemetry, Traces};
pub use versions::{PreviewConfig, Routing, Served, VersionConfig, check_routing, version_key};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where MCP clients connect. Loopback by default: exposing the gateway is a deliberate choice.
    #[serde(default = "default_listen")]
    #[schemars(with = "schema::SocketAddress")]
    pub listen: SocketAddr,
    /// The public base URL clients use, when the gateway sits behind a proxy (for logs and metadata).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Serve clients over TLS instead of plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub security: Security,
    /// Who the client is behind proxies: the proxies trusted and the header they write.
    #[serde(default)]
    pub client_address: ClientAddress,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub sessions: Sessions,
    /// Traces, the access log; metrics are always on.
    #[serde(default)]
    pub telemetry: Telemetry,
    /// The gateway's own log on stderr: `format: text | json`, `level`.
    #[serde(default, skip_serializing_if = "is_default_log")]
    pub log: LogConfig,
    /// Where policies keep state; unset, in this process (`config::state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateConfig>,
    /// The management API's own listener; absent, there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<ManagementConfig>,
    /// Where clients present subscription keys.
    #[serde(default)]
    pub subscription_key: SubscriptionKeyConfig,
    /// The MCP servers the gateway serves.
    pub servers: Vec<ServerConfig>,
    /// Servers bundled for consumers to subscribe to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<ProductConfig>,
}

fn is_default_log(l: &LogConfig) -> bool {
    *l == LogConfig::default()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// The management API: a listener of its own, so it can stay on loopback (or a private
/// network) while clients reach the gateway from anywhere.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagementConfig {
    /// Where the management API listens: an IP address and port, loopback by default.
    #[serde(default = "default_management_listen")]
    #[schemars(with = "schema::SocketAddress")]
    pub listen: SocketAddr,
    /// The environment variable holding the admin token. The token itself never sits in the
    /// file, so the file can be kept in git.
    pub admin_token_env: String,
    /// Where subscriptions and everything created through the API are kept (a directory,
    /// relative to the config file). Absent, nothing can be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Management records in PostgreSQL, shared by every replica (`postgres://user@host/db`;
    /// in place or by reference, since it may carry a password). Each replica still keeps its
    /// own files (compiled components, copies of uploaded ones) in its own `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Secret>,
    /// The largest policy component `POST /api/components` takes, in MiB: a componentized
    /// Python policy is some tens of megabytes; a Rust one, hundreds of kilobytes.
    #[serde(default = "default_max_component_mb")]
    pub max_component_mb: u32,
    /// Serve the management API over TLS (PEM files), as the client listener can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// What the API may ask of this machine beyond the network: starting programs (`stdio`),
    /// loading components from local paths (`local_policies`), reading files as secrets
    /// (`file_secrets`). None by default: the admin token is not a shell. The file itself may
    /// use all three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<ManagementAllow>,
    /// The environment variable holding a second token that may read everything the admin
    /// token can (secrets stay masked) and change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_token_env: Option<String>,
}

/// One of `management.allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManagementAllow {
    Stdio,
    LocalPolicies,
    FileSecrets,
}

pub const DEFAULT_MAX_COMPONENT_MB: u32 = 64;

fn default_max_component_mb() -> u32 {
    DEFAULT_MAX_COMPONENT_MB
}

fn default_management_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first: a PEM file (a relative path is taken from the config file's directory).
    pub cert: PathBuf,
    /// The private key (a PEM file).
    pub key: PathBuf,
}

/// Protection against DNS rebinding and cross-site use of a local gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `Origin` values allowed besides loopback origins (`https://app.example.com`, or `*` for any).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `Host` values allowed besides loopback names and the listen address (`mcp.example.com`, or `*`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

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

/// One MCP server as clients see it: `/{name}/mcp` and `/{name}/sse`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server's name in URLs and metrics: 1-64 of a-z, 0-9, '-' and '_'.
    pub name: String,
    /// What the server offers, shown where the gateway lists its servers.
    #[serde(default)]
    pub description: Option<String>,
    /// Unset when the server has `versions`: each of them has its own.
    #[serde(default, skip_serializing_if = "BackendConfig::is_unset")]
    pub backend: BackendConfig,
    /// The policy chain every message of this server passes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyBinding>,
    /// Tool arguments and results in the access log: off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_log: Option<PayloadLog>,
    /// Versions served side by side, each with its own backend and chain, at `/{name}/{version}/mcp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionConfig>,
    /// The version `/{name}/mcp` serves new sessions; the first version when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    /// A version some new sessions try before it becomes the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewConfig>,
    /// Live sessions this server (all its versions together) may hold; unset:
    /// `sessions.max_per_server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<usize>,
    /// A virtual server: the tools, prompts and resources of other servers of this file,
    /// served as one (in place of `backend`; `docs/configuration.md`, "Virtual servers").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<Vec<ComposeMember>>,
}

/// Where a server's traffic goes. Exactly one of `http`, `sse`, `stdio`, `openapi` is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// A Streamable HTTP MCP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// A legacy HTTP+SSE endpoint (the GET URL that announces the POST endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    /// A local process speaking MCP on stdin/stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioConfig>,
    /// A REST API described by OpenAPI, served by the gateway itself as an MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiConfig>,
    /// Headers sent to an HTTP backend on every request, each a [`Secret`]. The client's own
    /// headers never are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Overrides `limits.request_timeout_ms` for this backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// The `http` backend speaks HTTP/2 over plain TCP (h2c, prior knowledge): every session's
    /// messages and GET streams share a few connections instead of holding one each. Over
    /// `https`, HTTP/2 is negotiated without this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
    /// TLS toward an `https` backend behind a private PKI (`http`, `sse`, `openapi`): its CA
    /// bundle, and a client certificate for mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
}

/// A child process the gateway supervises.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdioConfig {
    /// The program, found on `PATH` or as a path.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The child's environment besides the few variables every child gets (`PATH`, `HOME`,
    /// ...); never the gateway's own.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// The directory it starts in; unset, the gateway's own.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Processes started ahead of demand, so a new session does not wait for a cold start.
    #[serde(default = "default_warm")]
    pub warm: usize,
    /// Upper bound on processes alive at once for this server.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
}

fn default_warm() -> usize {
    1
}
fn default_max_processes() -> usize {
    256
}

/// What a backend is, once validated.
#[derive(Debug, Clone)]
pub enum BackendKind<'a> {
    Http(&'a str),
    Sse(&'a str),
    Stdio(&'a StdioConfig),
    OpenApi(&'a OpenApiConfig),
}

impl BackendConfig {
    /// Nothing set: the shape of a versioned server's own `backend`.
    pub fn is_unset(&self) -> bool {
        self.http.is_none()
            && self.sse.is_none()
            && self.stdio.is_none()
            && self.openapi.is_none()
            && self.headers.is_empty()
            && self.request_timeout_ms.is_none()
            && !self.http2
    }

    /// The one transport chosen; validation has made sure there is exactly one.
    pub fn kind(&self) -> BackendKind<'_> {
        match (&self.http, &self.sse, &self.stdio, &self.openapi) {
            (Some(u), _, _, _) => BackendKind::Http(u),
            (_, Some(u), _, _) => BackendKind::Sse(u),
            (_, _, Some(s), _) => BackendKind::Stdio(s),
            (_, _, _, Some(o)) => BackendKind::OpenApi(o),
            _ => unreachable!("validated config has a backend"),
        }
    }
}

/// One thing wrong with a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: ")?,
            (Some(l), None) => write!(f, "line {l}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A config that could not be loaded: every problem found, each with its place.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in {}:\n{}", problems.len(), file.display(), list(problems))]
    Invalid { file: PathBuf, problems: Vec<Problem> },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse_in(&text, path.parent()).map_err(|problems| ConfigError::Invalid { file: path.to_owned(), problems })
    }

    /// Parses and validates config text; on failure, all problems found.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::parse_in(text, None)
    }

    /// As [`Config::parse`], with relative file paths in the config taken from `dir`.
    pub fn parse_in(text: &str, dir: Option<&Path>) -> Result<Config, Vec<Problem>> {
        let locator = Locator::new(text);
        let de = serde_norway::Deserializer::from_str(text);
        let mut config: Config = match serde_path_to_error::deserialize(de) {
            Ok(c) => c,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let (line, column) = match inner.location() {
                    Some(l) => (Some(l.line()), Some(l.column())),
                    None => (locator.line_of(&path), None),
                };
                let message = strip_location(&inner.to_string());
                let path = if path == "." { String::new() } else { path };
                return Err(vec![Problem { path, line, column, message }]);
            }
        };
        openapi::resolve_paths(&mut config, dir);
        if let (Some(m), Some(dir)) = (config.management.as_mut(), dir)
            && let Some(d) = m.data_dir.as_mut().filter(|d| d.is_relative())
        {
            *d = dir.join(&*d);
        }
        // Every relative path in the file is taken from the file's directory, as everywhere else.
        if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
            let listeners = config.tls.iter_mut().chain(config.management.as_mut().and_then(|m| m.tls.as_mut()));
            for t in listeners {
                for p in [&mut t.cert, &mut t.key] {
                    if p.is_relative() {
                        *p = dir.join(&*p);
                    }
                }
            }
        }
        if let (Some(st), Some(dir)) = (config.state.as_mut(), dir) {
            st.redis.anchor(dir);
        }
        if let (Some(db), Some(dir)) = (config.management.as_mut().and_then(|m| m.database.as_mut()), dir) {
            db.anchor(dir);
        }
        if let (Some(CompileCache::Dir(d)), Some(dir)) = (config.limits.policy_compile_cache.as_mut(), dir)
            && d.is_relative()
        {
            *d = dir.join(&*d);
        }
        let mut problems = validate::check(&config, &locator);
        problems.extend(openapi::check(&config, &locator));
        if problems.is_empty() {
            problems.extend(compose::check_names(&config, &locator));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        versions::settle_defaults(&mut config);
        Ok(config)
    }
}

/// A server sent to the management API: relative spec paths taken from `base`, checked in
/// the words `tollgate validate` uses (places under `server`), every `openapi` document
/// loaded, and its default version named. Blocks while documents load.
pub fn check_server(config: &Config, server: &mut ServerConfig, base: &Path) -> Vec<Problem> {
    openapi::resolve_server_paths(server, base);
    let locator = Locator::new("");
    let mut out = validate::Problems::new(&locator);
    validate::check_server(&mut out, config, "server", server);
    let mut problems = out.into_list();
    if problems.is_empty() {
        problems = openapi::check_server(config, "server", server, &locator);
    }
    versions::settle_default(server);
    problems
}

/// serde_norway appends "at line X column Y"; the Problem carries that itself.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
