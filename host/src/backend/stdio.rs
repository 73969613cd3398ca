//! A stdio backend: a child process per client session, drawn from a warm pool, supervised,
//! and never outliving the gateway.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, LinesCodec};

use super::Inbox;
use crate::config::StdioConfig;
use crate::mcp::error::BackendError;
use crate::mcp::jsonrpc::Message;

/// Bound on one line (one message) a child may write.
const MAX_LINE: usize = 16 << 20;

/// Every child alive, so shutdown can stop them all whatever state their sessions are in.
static CHILDREN: LazyLock<Mutex<HashSet<u32>>> = LazyLock::new(Default::default);

/// Set once shutdown begins: processes dying then are expected, not restarted.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops every child process (SIGTERM, then SIGKILL after `grace`).
pub async fn shutdown_all(grace: Duration) {
    STOPPING.store(true, std::sync::atomic::Ordering::Release);
    let pids: Vec<u32> = CHILDREN.lock().expect("children lock").iter().copied().collect();
    for pid in &pids {
        signal(*pid, libc::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in pids {
        signal(pid, libc::SIGKILL);
    }
}

fn alive(pid: u32) -> bool {
    CHILDREN.lock().expect("children lock").contains(&pid)
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started and have not yet reaped.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// A spawned process, not yet bound to a session.
struct Proc {
    pid: u32,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    permit: OwnedSemaphorePermit,
}

impl Proc {
    /// Whether the process still runs; one that exited is forgotten.
    fn running(&mut self) -> bool {
        let running = matches!(self.child.try_wait(), Ok(None));
        if !running {
            CHILDREN.lock().expect("children lock").remove(&self.pid);
        }
        running
    }
}

pub struct StdioBackend {
    server: Arc<str>,
    config: StdioConfig,
    slots: Arc<Semaphore>,
    warm: Mutex<Vec<Proc>>,
    refill: tokio::sync::Notify,
}

impl StdioBackend {
    pub fn start(server: &str, config: StdioConfig) -> Arc<StdioBackend> {
        let b = Arc::new(StdioBackend {
            server: server.into(),
            slots: Arc::new(Semaphore::new(config.max_processes)),
            config,
            warm: Mutex::new(Vec::new()),
            refill: tokio::sync::Notify::new(),
        });
        tokio::spawn(b.clone().keep_warm());
        b
    }

    /// Keeps `warm` processes ready. A process that fails to start, or dies before any session
    /// used it, doubles the wait before the next attempt (up to 30 s), so a broken command
    /// cannot spin.
    async fn keep_warm(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if Arc::strong_count(&self) == 1 || STOPPING.load(std::sync::atomic::Ordering::Acquire) {
                return; // the server was removed, or the gateway is stopping
            }
            let (have, died) = {
                let mut warm = self.warm.lock().expect("warm lock");
                let before = warm.len();
                warm.retain_mut(Proc::running);
                (warm.len(), before - warm.len())
            };
            if died > 0 {
                tracing::warn!(server = %self.server, retry_in_ms = backoff.as_millis() as u64, "stdio backend exited before use");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            if have < self.config.warm {
                if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                    match self.spawn(permit) {
                        Ok(p) => {
                            self.warm.lock().expect("warm lock").push(p);
                            // Let a process that is going to die at once show it before trusting it.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(server = %self.server, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot start stdio backend");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            continue;
                        }
                    }
                }
            } else if died == 0 {
                backoff = Duration::from_millis(200);
            }
            tokio::select! {
                _ = self.refill.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn spawn(&self, permit: OwnedSemaphorePermit) -> Result<Proc, BackendError> {
        let c = &self.config;
        let mut cmd = Command::new(&c.command);
        cmd.env_clear().envs(inherited());
        for (name, value) in &c.env {
            let value = value.reveal().map_err(|e| BackendError::Unreachable(format!("cannot start `{}`: env {name}: {e}", c.command)))?;
            cmd.env(name, value);
        }
        cmd.args(&c.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        if let Some(dir) = &c.cwd {
            cmd.current_dir(dir);
        }
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| BackendError::Unreachable(format!("cannot start `{}`: {e}", c.command)))?;
        let pid = child.id().unwrap_or_default();
        CHILDREN.lock().expect("children lock").insert(pid);
        tracing::info!(server = %self.server, pid, command = %c.command, "started stdio backend");
        if let Some(stderr) = child.stderr.take() {
            let server = self.server.clone();
            tokio::spawn(async move {
                let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(64 << 10));
                while let Some(Ok(line)) = lines.next().await {
                    tracing::info!(server = %server, pid, "{line}");
                }
            });
        }
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Proc { pid, child, stdin, stdout, permit })
    }

    pub async fn connect(self: &Arc<Self>, inbox: Inbox) -> Result<StdioUpstream, BackendError> {
        let warm = {
            let mut warm = self.warm.lock().expect("warm lock");
            warm.retain_mut(Proc::running);
            warm.pop()
        };
        self.refill.notify_one();
        let proc = match warm {
            Some(p) => p,
            None => {
                let permit = self
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| BackendError::Unreachable(format!("all {} processes are in use", self.config.max_processes)))?;
                self.spawn(permit)?
            }
        };
        let Proc { pid, child, stdin, stdout, permit } = proc;
        let reader = tokio::spawn(read(self.server.clone(), child, stdout, inbox, permit, pid));
        Ok(StdioUpstream { stdin: tokio::sync::Mutex::new(Some(stdin)), reader, pid })
    }
}

/// The gateway's own variables a child gets, as the MCP SDKs pass them to the servers they
/// start: enough to find programs and a home, never the gateway's credentials (its admin
/// token, its cloud keys).
const INHERITED: [&str; 7] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG"];

fn inherited() -> impl Iterator<Item = (&'static str, std::ffi::OsString)> {
    INHERITED.into_iter().filter_map(|k| std::env::var_os(k).map(|v| (k, v)))
}

/// Asks the kernel to kill the child if the gateway dies, even by SIGKILL.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Reads the child's stdout until it exits, then reports how it ended.
async fn read(server: Arc<str>, mut child: Child, stdout: ChildStdout, inbox: Inbox, _permit: OwnedSemaphorePermit, pid: u32) {
    let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => match Message::parse(line.as_bytes()) {
                Ok(m) => inbox.deliver(m, None).await,
                Err(e) => tracing::warn!(server = %server, pid, error = %e, "stdio backend wrote a line that is not JSON-RPC"),
            },
            Err(e) => {
                tracing::warn!(server = %server, pid, error = %e, "stdio backend output unreadable; stopping it");
                break;
            }
        }
    }
    let _ = child.start_kill();
    let status = child.wait().await;
    CHILDREN.lock().expect("children lock").remove(&pid);
    let how = match status {
        Ok(s) => format!("the process exited ({s})"),
        Err(e) => format!("the process could not be waited for: {e}"),
    };
    tracing::info!(server = %server, pid, "{how}");
    inbox.closed(BackendError::Closed(how));
}

pub struct StdioUpstream {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    reader: tokio::task::JoinHandle<()>,
    pid: u32,
}

impl StdioUpstream {
    pub async fn send(&self, msg: &Message) -> Result<(), BackendError> {
        let mut line = msg.to_bytes().to_vec();
        line.push(b'\n');
        let mut guard = self.stdin.lock().await;
        let stdin = guard.as_mut().ok_or_else(|| BackendError::Closed("the process was stopped".into()))?;
        stdin.write_all(&line).await.map_err(|e| BackendError::Closed(format!("cannot write to the process: {e}")))?;
        stdin.flush().await.map_err(|e| BackendError::Closed(format!("cannot write to the process: {e}")))
    }

    /// Closing stdin asks an MCP stdio server to exit; SIGTERM then SIGKILL if it does not.
    pub async fn close(&self) {
        self.stdin.lock().await.take();
        let pid = self.pid;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if alive(pid) {
                signal(pid, libc::SIGTERM);
                tokio::time::sleep(Duration::from_secs(3)).await;
                if alive(pid) {
                    signal(pid, libc::SIGKILL);
                }
            }
        });
    }
}

impl Drop for StdioUpstream {
    fn drop(&mut self) {
        if !self.reader.is_finished() && alive(self.pid) {
            signal(self.pid, libc::SIGTERM);
        }
    }
}
