//! Starting the real gateway binary, waiting for it, and stopping it.

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

/// Fills `{LISTEN}` and `{BACKEND_URL}` in a config template.
pub fn render(template: &str, listen: SocketAddr, backend_url: &str) -> String {
    template.replace("{LISTEN}", &listen.to_string()).replace("{BACKEND_URL}", backend_url)
}

/// A scratch directory removed on drop.
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
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the gateway's output, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    lines[from..].join("\n")
}

/// A free loopback port (bound then released; the gateway binds it next).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Writes `config` to `dir/NAME.yaml`, starts `binary serve --config FILE`
/// and waits until it is ready.
pub async fn start(binary: &Path, dir: &Path, name: &str, config: &str, listen: SocketAddr, startup_timeout: Duration) -> anyhow::Result<Gateway> {
    let config_path = dir.join(format!("{name}.yaml"));
    fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
    let log = dir.join(format!("{name}.log"));
    let out = fs::File::create(&log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(binary);
    cmd.arg("serve").arg("--config").arg(&config_path).stdin(Stdio::null()).stdout(out).stderr(err);
    // Per-request logging would be measured too; keep it quiet unless asked.
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    let child = cmd.spawn().with_context(|| format!("starting {}", binary.display()))?;
    let mut gateway = Gateway { child, addr: listen, log };
    wait_ready(&mut gateway, startup_timeout).await?;
    Ok(gateway)
}

/// Polls `GET /healthz` until it answers 200. A server that answers with
/// another status is taken as up (the port accepts), with a note.
async fn wait_ready(gateway: &mut Gateway, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = gateway.child.try_wait()? {
            bail!("the gateway exited during startup ({status}); its output:\n{}", gateway.log_tail());
        }
        match healthz(gateway.addr).await {
            Ok(200) => return Ok(()),
            Ok(code) => {
                eprintln!("note: GET /healthz answered {code}; the port accepts, going on");
                return Ok(());
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => bail!("the gateway was not ready on {} after {timeout:?} ({err:#}); its output:\n{}", gateway.addr, gateway.log_tail()),
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

/// CPU time (user + system) a process has used so far, from /proc.
/// `None` where /proc is not there.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let out = render(DEFAULT_TEMPLATE, "127.0.0.1:9000".parse().unwrap(), "http://127.0.0.1:9001/mcp");
        assert!(out.contains("listen: 127.0.0.1:9000\n"));
        assert!(out.contains("http: http://127.0.0.1:9001/mcp\n"));
    }

    #[test]
    fn reads_own_cpu_time() {
        if Path::new("/proc/self/stat").exists() {
            assert!(cpu_time(None).is_some());
        }
    }
}
