//! The gateway's configuration: typed, parsed in this module only, and checked once at load.
//!
//! Every problem found is reported with the place in the file (`servers[1].backend.http`, line 7),
//! so `tollgate validate` can print all of them at once.

pub mod authorization;
mod client_address;
mod client_tls;
mod compose;
mod limits;
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

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use client_address::{ClientAddress, ForwardedHeader, Nets};
pub use client_tls::{ClientTls, TlsMaterial};
pub use compose::ComposeMember;
pub use limits::{CompileCache, Limits, Loopback, Sessions};
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
