//! Starting the real gateway binary, waiting for it, and stopping it. Each gateway is a
//! process of its own, started once per run with an environment the harness sets (log
//! level, the bench secret) rather than one inherited by accident.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// The config used when no template is given.
pub const DEFAULT_TEMPLATE: &str = "\
listen: {LISTEN}
servers:
  - name: echo
    backend:
      http: {BACKEND_URL}
";

/// The value of the secret `configs/chain4.yaml` injects as a header (`TOLLGATE_BENCH_KEY`).
pub const BENCH_KEY: &str = "bench-key";

/// Fills `{LISTEN}`, `{BACKEND_URL}` and `{JWT_JWKS_KEY}` (a public JWK, as inline JSON) in a
/// config template.
pub fn render(template: &str, listen: SocketAddr, backend_url: &str, jwk: Option<&str>) -> String {
    let out = template.replace("{LISTEN}", &listen.to_string()).replace("{BACKEND_URL}", backend_url);
    match jwk {
        Some(jwk) => out.replace("{JWT_JWKS_KEY}", jwk),
        None => out,
    }
}

/// A scratch directory for configs and logs, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("tollgate-loadgen-{}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How every gateway process is started.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub dir: &'a Path,
    /// `TOLLGATE_LOG` and `RUST_LOG` for the gateway.
    pub log_level: &'a str,
    pub startup_timeout: Duration,
}

/// Variables left in: the secret `configs/chain4.yaml` reads, and the switch that names policy
/// code in `perf` profiles (it writes a file as code loads, and changes nothing measured).
const PASSED: [&str; 2] = ["TOLLGATE_BENCH_KEY", "TOLLGATE_WASM_PERFMAP"];

/// Variables taken out of the gateway's environment: the harness sets the ones it wants, and
/// anything else of the gateway's own (or a collector's) would change what is measured.
pub fn scrubbed_env() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| (k.starts_with("TOLLGATE_") || k.starts_with("OTEL_") || k == "RUST_LOG") && !PASSED.contains(&k.as_str()))
        .collect()
}

/// A running gateway process, killed when dropped (also while unwinding).
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Takes charge of a process started elsewhere (the relay), to kill it when dropped.
    pub fn from_child(child: Child, addr: SocketAddr, log: PathBuf) -> Gateway {
        Gateway { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the gateway's output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

/// A free loopback port (bound then released; the gateway binds it next).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Writes `config` to `dir/NAME.yaml`, starts `binary serve --config FILE` and waits until
/// `GET /healthz` answers.
pub async fn start(launch: &Launch<'_>, name: &str, config: &str, listen: SocketAddr) -> anyhow::Result<Gateway> {
    let config_path = launch.dir.join(format!("{name}.yaml"));
    fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
    let log = launch.dir.join(format!("{name}.log"));
    let out = fs::File::create(&log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(launch.binary);
    cmd.arg("serve").arg("--config").arg(&config_path).stdin(Stdio::null()).stdout(out).stderr(err);
    for var in scrubbed_env() {
        cmd.env_remove(var);
    }
    // The gateway reads `TOLLGATE_LOG`; `RUST_LOG` is set too, for any library that reads it.
    cmd.env("TOLLGATE_LOG", launch.log_level).env("RUST_LOG", launch.log_level);
    // The secret `configs/chain4.yaml` injects; harmless for configs that do not use it.
    cmd.env("TOLLGATE_BENCH_KEY", BENCH_KEY);
    let child = cmd.spawn().with_context(|| format!("starting {}", launch.binary.display()))?;
    let mut gateway = Gateway { child, addr: listen, log };
    wait_ready(&mut gateway, launch.startup_timeout).await?;
    Ok(gateway)
}

/// Polls `GET /healthz` until it answers 200. A server that answers with another status is
/// taken as up (the port accepts), with a note.
async fn wait_ready(gateway: &mut Gateway, timeout: Duration) -> anyhow::Result<()> {
    wait_up(gateway, "the gateway", timeout, |addr| async move {
        let code = healthz(addr).await?;
        if code != 200 {
            eprintln!("note: GET /healthz answered {code}; the port accepts, going on");
        }
        Ok(())
    })
    .await
}

/// Polls `ready` until it succeeds; fails when `what` exits first or `timeout` passes, with
/// the end of its output.
pub async fn wait_up<F, Fut>(process: &mut Gateway, what: &str, timeout: Duration, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.exited() {
            bail!("{what} exited during startup ({status}); its output:\n{}", process.log_tail());
        }
        match ready(process.addr).await {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => bail!("{what} was not ready on {} after {timeout:?} ({err:#}); its output:\n{}", process.addr, process.log_tail()),
        }
    }
}

async fn healthz(addr: SocketAddr) -> anyhow::Result<u16> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get("/healthz").header(hyper::header::HOST, addr.to_string()).body(Empty::<Bytes>::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(2), sender.send_request(req)).await??;
    Ok(resp.status().as_u16())
}

/// The binary's modification time and size, for the report header.
pub fn describe_binary(path: &Path) -> String {
    match fs::metadata(path) {
        Ok(meta) => {
            let built = meta.modified().map_or_else(|_| "unknown".into(), crate::procstat::utc);
            format!("`{}` (modified {built}, {:.1} MB)", path.display(), meta.len() as f64 / 1e6)
        }
        Err(_) => format!("`{}` (missing)", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let out = render(
            "listen: {LISTEN}\nkeys: [{JWT_JWKS_KEY}]\nhttp: {BACKEND_URL}\n",
            "127.0.0.1:9000".parse().unwrap(),
            "http://127.0.0.1:9001/mcp",
            Some("{\"kty\":\"RSA\"}"),
        );
        assert_eq!(out, "listen: 127.0.0.1:9000\nkeys: [{\"kty\":\"RSA\"}]\nhttp: http://127.0.0.1:9001/mcp\n");
    }
}
