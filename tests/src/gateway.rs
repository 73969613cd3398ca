//! The gateway under test: the real `tollgate` binary, started with a config the test describes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::process;

/// A gateway config, built up server by server.
#[derive(Clone)]
pub struct Gateway {
    config: Map<String, Value>,
    servers: Vec<Value>,
    env: Vec<(String, String)>,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway::new()
    }
}

impl Gateway {
    /// Listens on a free loopback port.
    pub fn new() -> Gateway {
        let mut config = Map::new();
        config.insert("listen".into(), json!("127.0.0.1:0"));
        Gateway { config, servers: Vec::new(), env: Vec::new() }
    }

    /// A server whose backend is a Streamable HTTP URL.
    pub fn server(self, name: &str, url: impl Into<String>) -> Gateway {
        self.server_with(name, json!({ "http": url.into() }))
    }

    /// A server whose backend is a Streamable HTTP URL, sent these headers on every request.
    pub fn server_with_headers(self, name: &str, url: impl Into<String>, headers: &[(&str, &str)]) -> Gateway {
        let headers: Map<String, Value> = headers.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        self.server_with(name, json!({ "http": url.into(), "headers": headers }))
    }

    /// A server whose backend is a local process speaking MCP on stdin/stdout.
    pub fn stdio_server(self, name: &str, command: &Path, args: &[&str]) -> Gateway {
        self.server_with(name, json!({ "stdio": { "command": command, "args": args } }))
    }

    /// A server with any `backend:` section.
    pub fn server_with(mut self, name: &str, backend: Value) -> Gateway {
        self.servers.push(json!({ "name": name, "backend": backend }));
        self
    }

    /// Binds a chain of policies (`[{ policy, config, ... }]`) to a server added before.
    pub fn policies(mut self, server: &str, chain: Value) -> Gateway {
        let entry = self.servers.iter_mut().find(|s| s["name"] == server).unwrap_or_else(|| panic!("no server {server} to bind policies to"));
        entry["policies"] = chain;
        self
    }

    /// A server given whole, as its `servers:` entry (one with `versions`, say).
    pub fn server_entry(mut self, server: Value) -> Gateway {
        self.servers.push(server);
        self
    }

    pub fn idle_timeout_s(self, secs: u64) -> Gateway {
        self.set("sessions", "idle_timeout_s", json!(secs))
    }

    pub fn max_body_bytes(self, bytes: usize) -> Gateway {
        self.set("limits", "max_body_bytes", json!(bytes))
    }

    pub fn shutdown_grace_ms(self, ms: u64) -> Gateway {
        self.set("limits", "shutdown_grace_ms", json!(ms))
    }

    /// Serves clients over TLS with this certificate chain and key (PEM files).
    pub fn tls(mut self, cert: &Path, key: &Path) -> Gateway {
        self.config.insert("tls".into(), json!({ "cert": cert, "key": key }));
        self
    }

    /// A management API on a free loopback port, its admin token `token` (passed through the
    /// environment variable `TOLLGATE_ADMIN_TOKEN`, as a deployment would).
    pub fn management(self, token: &str) -> Gateway {
        self.management_with(token, json!({}))
    }

    /// As [`Gateway::management`], with more keys in the `management:` section.
    pub fn management_with(mut self, token: &str, extra: Value) -> Gateway {
        let mut m = json!({ "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN" });
        if let Value::Object(extra) = extra {
            m.as_object_mut().expect("a map").extend(extra);
        }
        self.config.insert("management".into(), m);
        self.env.push(("TOLLGATE_ADMIN_TOKEN".into(), token.into()));
        self
    }

    /// Sets a top-level key of the config (`products`, ...).
    pub fn top(mut self, key: &str, value: Value) -> Gateway {
        self.config.insert(key.into(), value);
        self
    }

    /// An environment variable for the gateway process only.
    pub fn env(mut self, key: &str, value: &str) -> Gateway {
        self.env.push((key.into(), value.into()));
        self
    }

    fn set(mut self, section: &str, key: &str, value: Value) -> Gateway {
        let s = self.config.entry(section).or_insert_with(|| json!({}));
        s.as_object_mut().expect("a config section is a map").insert(key.into(), value);
        self
    }

    /// The config file text. JSON is YAML, so the config is written as JSON.
    pub fn yaml(&self) -> String {
        let mut c = self.config.clone();
        c.insert("servers".into(), Value::Array(self.servers.clone()));
        serde_json::to_string_pretty(&Value::Object(c)).expect("config serializes")
    }

    /// Starts `tollgate serve` and waits until it answers on `/healthz`.
    pub async fn start(self) -> RunningGateway {
        let file = write_temp("gateway.yaml", &self.yaml());
        let scheme = if self.config.contains_key("tls") { "https" } else { "http" };
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let Launched { child, addr, log } = launch(&file, &env, scheme, Duration::from_secs(15)).await;
        let pid = child.id().expect("tollgate has a pid");
        let management = management_addr(&log.lock().expect("log lock"));
        RunningGateway { addr, management, pid, child: tokio::sync::Mutex::new(child), log, config: file }
    }
}

/// A started `tollgate serve`: the process, where it listens, and its log as it grows.
pub struct Launched {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

/// Starts `tollgate serve --config FILE` with `env` set for its process only, waits (up to
/// `wait`) for it to say where it listens, then until it answers on `/healthz` over `scheme`.
pub async fn launch(file: &Path, env: &[(&str, &str)], scheme: &str, wait: Duration) -> Launched {
    let mut cmd = Command::new(process::binary("tollgate"));
    cmd.arg("serve").arg("--config").arg(file).env("NO_COLOR", "1").env("TOLLGATE_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().expect("start tollgate");
    let log = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut addr_tx = Some(addr_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            let line = strip_ansi(&line);
            if line.contains("tollgate is listening")
                && let Some(tx) = addr_tx.take()
            {
                let _ = tx.send(listening_addr(&line));
            }
            let mut l = sink.lock().expect("log lock");
            l.push_str(&line);
            l.push('\n');
        }
    });
    let addr = match tokio::time::timeout(wait, addr_rx).await {
        Ok(Ok(Some(addr))) => addr,
        _ => {
            let config = std::fs::read_to_string(file).unwrap_or_default();
            panic!("tollgate did not say where it listens; its config:\n{config}\nits log:\n{}", log.lock().expect("log lock"))
        }
    };
    let health = format!("{scheme}://{addr}/healthz");
    // Only readiness is checked here; the TLS tests check the certificate themselves.
    let probe = reqwest::Client::builder().danger_accept_invalid_certs(true).no_proxy().build().expect("probe client");
    crate::within(wait.as_secs().clamp(15, 30), "tollgate /healthz", async {
        loop {
            if let Ok(r) = probe.get(&health).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    Launched { child, addr, log }
}

/// A `tollgate` process that is serving. Killed when dropped.
pub struct RunningGateway {
    addr: SocketAddr,
    management: Option<SocketAddr>,
    pid: u32,
    child: tokio::sync::Mutex<Child>,
    log: Arc<Mutex<String>>,
    config: PathBuf,
}

impl RunningGateway {
    /// Starts `tollgate serve` on a whole config given as JSON (which is YAML), with `env` set
    /// for its process only. Loading standard policies compiles them: generous on a busy machine.
    pub async fn from_config(config: Value, env: &[(&str, &str)]) -> RunningGateway {
        let file = write_temp("tollgate.yaml", &serde_json::to_string_pretty(&config).expect("config serializes"));
        let Launched { child, addr, log } = launch(&file, env, "http", Duration::from_secs(60)).await;
        let pid = child.id().expect("tollgate has a pid");
        let management = management_addr(&log.lock().expect("log lock"));
        RunningGateway { addr, management, pid, child: tokio::sync::Mutex::new(child), log, config: file }
    }

    /// Starts `tollgate serve` on a config written as YAML (a `listen` on a free loopback
    /// port is put first), with `env` set for its process only.
    pub async fn from_yaml(yaml: &str, env: &[(&str, &str)]) -> RunningGateway {
        let file = write_temp("tollgate.yaml", &format!("listen: 127.0.0.1:0\n{yaml}"));
        let Launched { child, addr, log } = launch(&file, env, "http", Duration::from_secs(120)).await;
        let pid = child.id().expect("tollgate has a pid");
        let management = management_addr(&log.lock().expect("log lock"));
        RunningGateway { addr, management, pid, child: tokio::sync::Mutex::new(child), log, config: file }
    }

    /// Replaces the config file with `yaml` at once (keeping the address it listens on), as an
    /// operator would; the gateway follows it.
    pub fn rewrite(&self, yaml: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, format!("listen: {}\n{yaml}", self.addr)).expect("write the new config");
        std::fs::rename(&tmp, &self.config).expect("replace the config");
    }

    /// Where the client listener is.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A JSON-RPC caller of one server's endpoint.
    pub fn caller(&self, server: &str) -> crate::caller::Caller {
        crate::caller::Caller::new(&self.mcp_url(server))
    }

    /// The Streamable HTTP endpoint of a server.
    pub fn mcp_url(&self, server: &str) -> String {
        format!("http://{}/{server}/mcp", self.addr)
    }

    /// `path` on the client listener: `g.url("/docs/v2/mcp")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for paths of its own.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` of the management API.
    pub fn management(&self) -> String {
        format!("http://{}", self.management.expect("this gateway has a management API"))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The config file it serves, to rewrite for a reload.
    pub fn config_file(&self) -> &Path {
        &self.config
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The processes the gateway started (stdio backends) that are running now.
    pub fn children(&self) -> Vec<u32> {
        process::children_of(self.pid)
    }

    /// Sends SIGKILL: the process gets no chance to flush or clean up anything.
    pub fn kill_9(&self) {
        process::signal(self.pid, "KILL");
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        process::signal(self.pid, "TERM");
    }

    /// Waits for the process to exit; `None` if it still runs after `limit`.
    pub async fn exit_within(&self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.lock().await;
        tokio::time::timeout(limit, child.wait()).await.ok().map(|r| r.expect("wait for tollgate"))
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `tollgate ARGS --management URL` (`export`, `apply`) with the admin token in its
/// environment; whether it succeeded, its stdout and its stderr.
pub async fn run_remote(args: &[&str], management: &str, token: &str) -> (bool, String, String) {
    let (code, out, err) = run_remote_code(args, management, token).await;
    (code == 0, out, err)
}

/// As [`run_remote`], with the exit code.
pub async fn run_remote_code(args: &[&str], management: &str, token: &str) -> (i32, String, String) {
    let out = Command::new(process::binary("tollgate"))
        .args(args)
        .arg("--management")
        .arg(management)
        .env("TOLLGATE_ADMIN_TOKEN", token)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = crate::within(30, "tollgate to finish", out).await.expect("run tollgate");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs `tollgate` with arguments and a config text; returns how it exited and what it printed.
pub async fn run_tollgate(args: &[&str], config_text: &str) -> (ExitStatus, String) {
    let file = write_temp("config.yaml", config_text);
    let mut cmd = Command::new(process::binary("tollgate"));
    cmd.args(args).arg("--config").arg(&file).env("NO_COLOR", "1").stdin(Stdio::null()).kill_on_drop(true);
    let out = crate::within(15, "tollgate to finish", cmd.output()).await.expect("run tollgate");
    if let Some(dir) = file.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status, strip_ansi(&text))
}

/// A directory of its own in the temp directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = write_temp("keep", "").parent().expect("a directory").to_path_buf();
        TempDir(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file of its own in the temp directory, unique across tests and test processes.
pub fn write_temp(name: &str, text: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    // A new directory each time: a directory left by an earlier process with the same pid
    // (pids are reused) is never written into, so no test sees another's files.
    let dir = loop {
        let dir = std::env::temp_dir().join(format!("tollgate-e2e-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create temp dir {}: {e}", dir.display()),
        }
    };
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Where the management API listens: it says so before the client listener does.
pub fn management_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find(|l| l.contains("management API is listening")).and_then(listening_addr)
}

/// The `addr=` field of the log line that says where the gateway listens (its `addr` when the
/// log is JSON lines).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if let Ok(json) = serde_json::from_str::<Value>(line.trim()) {
        return json["addr"].as_str()?.parse().ok();
    }
    let rest = &line[line.find("addr=")? + 5..];
    rest.split_whitespace().next()?.parse().ok()
}

/// A log line without its terminal colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
