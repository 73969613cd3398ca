//! A Redis server of the test's own: `redis-server` on a free loopback port, working in a fresh
//! temporary directory, killed when its handle drops. Nothing is persisted (`--save ""`, no
//! AOF), so a restart starts empty.
//!
//! The server runs under `setpriv --pdeathsig KILL`: if the test process dies without running
//! `Drop` (a timeout's SIGKILL, ^C), the kernel kills the server too. The parent it watches is
//! the *thread* that started it, so start servers on the test's own thread or runtime, not in a
//! thread that ends before the test does.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a fresh server may take to answer PING: generous, for a busy two-core machine.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running (or stopped) `redis-server` owned by one test.
pub struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers PING.
    pub async fn start() -> Redis {
        // The handle owns the directory from the start: a panic removes it.
        let mut redis = Redis { port: 0, dir: fresh_dir("redis"), child: None };
        // The port is free when picked but not reserved: another process may bind it before the
        // server does. That shows as an early exit, and a few other ports are tried.
        for _ in 0..3 {
            let port = crate::standard::free_port("127.0.0.1");
            match launch(port, &redis.dir).await {
                Ok(child) => {
                    (redis.port, redis.child) = (port, Some(child));
                    return redis;
                }
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("redis-server exited on start; its log:\n{log}"),
            }
        }
        panic!("redis-server: the free ports picked for it were taken three times; its log:\n{}", read_log(&redis.dir));
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's port, the same across [`Redis::stop`] and [`Redis::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, as a crash would) and waits for it to exit. The port stays
    /// this handle's, for [`Redis::restart`]; nothing listens on it meanwhile.
    pub async fn stop(&mut self) {
        // The child stays in the handle until it is gone, for `Drop` to kill should this panic.
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            crate::within(10, "redis-server exiting after SIGKILL", exited(child)).await;
            self.child = None;
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs), empty, and
    /// waits until it answers PING.
    pub async fn restart(&mut self) {
        self.stop().await;
        match launch(self.port, &self.dir).await {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!("redis-server did not restart on port {}; its log:\n{log}", self.port),
        }
    }

    /// Sends one command and returns the server's raw RESP reply, e.g. `command(&["GET", "k"])`
    /// gives `"$1\r\nv\r\n"`. An error reply (`-ERR ...`) is returned, not a panic.
    pub async fn command(&self, args: &[&str]) -> String {
        let what = format!("redis command {args:?} on port {}", self.port);
        crate::within(10, &what, async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap_or_else(|e| panic!("{what}: connect: {e}"));
            let reply = round_trip(&mut stream, args).await.unwrap_or_else(|e| panic!("{what}: {e}"));
            String::from_utf8_lossy(&reply).into_owned()
        })
        .await
    }

    /// The keys matching `pattern` (`KEYS pattern`), sorted.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = bulk_strings(&self.command(&["KEYS", pattern]).await);
        keys.sort();
        keys
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Spawns `redis-server` on `port` and waits until it answers PING. `Err` carries the server's
/// log when it exited first (a port taken meanwhile, a bad option).
async fn launch(port: u16, dir: &Path) -> Result<Child, String> {
    let bin = on_path("redis-server").unwrap_or_else(|| panic!("redis-server is not on PATH: run scripts/setup.sh"));
    let log = File::options().create(true).append(true).open(dir.join("redis.log")).expect("create redis.log");
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no", "--daemonize", "no"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log's handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn setpriv redis-server (util-linux's setpriv; run scripts/setup.sh): {e}"));
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if child.try_wait().expect("poll redis-server").is_some() {
            return Err(read_log(dir));
        }
        if ping(port).await {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server on port {port} did not answer PING within {READY_WITHIN:?}; its log:\n{}", read_log(dir));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the server on `port` answers PING with PONG now (not loading, not refusing).
async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        round_trip(&mut stream, &["PING"]).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), attempt).await, Ok(Some(reply)) if reply == b"+PONG\r\n")
}

/// Writes one command as a RESP array of bulk strings, and reads until one whole reply is in.
async fn round_trip(stream: &mut TcpStream, args: &[&str]) -> std::io::Result<Vec<u8>> {
    stream.write_all(&encode(args)).await?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = value_end(&reply, 0) {
            assert_eq!(end, reply.len(), "redis sent more than one reply: {:?}", String::from_utf8_lossy(&reply));
            return Ok(reply);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed after a partial reply {:?}", String::from_utf8_lossy(&reply)),
            ));
        }
        reply.extend_from_slice(&chunk[..n]);
    }
}

/// `*N\r\n` then `$LEN\r\nARG\r\n` per argument: the form every Redis command takes.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the RESP value starting at `at` ends, or `None` while it is incomplete. Knows RESP2
/// and the RESP3 types, nested to any depth.
fn value_end(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let line_end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
    let next = line_end + 2;
    let count = || -> i64 {
        let head = String::from_utf8_lossy(&buf[at + 1..line_end]);
        head.parse().unwrap_or_else(|_| panic!("bad RESP length {head:?} in {:?}", String::from_utf8_lossy(buf)))
    };
    match kind {
        // Simple string, error, integer; RESP3 null, double, boolean, big number.
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(next),
        // Bulk string ($-1 is nil); RESP3 bulk error and verbatim string.
        b'$' | b'!' | b'=' => match usize::try_from(count()) {
            Ok(len) => Some(next + len + 2).filter(|&end| end <= buf.len()),
            Err(_) => Some(next),
        },
        // Array (*-1 is nil); RESP3 set and push, and map and attribute (two values an entry).
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let per_entry = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            let mut pos = next;
            for _ in 0..count().max(0) * per_entry {
                pos = value_end(buf, pos)?;
            }
            Some(pos)
        }
        _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(buf)),
    }
}

/// The bulk strings of a flat RESP array reply (`KEYS`, `LRANGE`, `SMEMBERS`); nil elements
/// are left out. Panics on anything else, such as an error reply.
pub fn bulk_strings(reply: &str) -> Vec<String> {
    let bad = || -> ! { panic!("not a RESP array of bulk strings: {reply:?}") };
    let mut lines = reply.split("\r\n");
    let n: usize = lines.next().and_then(|l| l.strip_prefix('*')).and_then(|n| n.parse().ok()).unwrap_or_else(|| bad());
    let mut out = Vec::with_capacity(n);
    let mut rest = &reply[reply.find("\r\n").unwrap_or_else(|| bad()) + 2..];
    for _ in 0..n {
        let (head, tail) = rest.split_once("\r\n").unwrap_or_else(|| bad());
        let len: i64 = head.strip_prefix('$').and_then(|l| l.parse().ok()).unwrap_or_else(|| bad());
        match usize::try_from(len) {
            Ok(len) => {
                out.push(tail.get(..len).unwrap_or_else(|| bad()).to_owned());
                rest = tail.get(len + 2..).unwrap_or_else(|| bad());
            }
            Err(_) => rest = tail,
        }
    }
    out
}

/// Polls a killed child until it is reaped.
pub(crate) async fn exited(child: &mut Child) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("poll a child process") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server's output so far, for a panic message.
fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("redis.log")).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// A new, empty directory under the system's temporary directory, named for `what` and this
/// process; a name left behind by an earlier process with the same id is skipped.
///
/// Directories of test processes that were killed (and so never ran `Drop`) are removed on the
/// way: a PostgreSQL cluster is some 40 MB.
pub(crate) fn fresh_dir(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let prefix = format!("tollgate-{what}-");
    for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let owner = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|rest| rest.split_once('-')).and_then(|(pid, _)| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    loop {
        let dir = std::env::temp_dir().join(format!("{prefix}{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", dir.display()),
        }
    }
}

/// The first executable file `name` on PATH.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_complete_only_when_whole() {
        let whole: &[&[u8]] = &[b"+OK\r\n", b"-ERR no\r\n", b":42\r\n", b"$-1\r\n", b"$0\r\n\r\n", b"$3\r\na\r\n\r\n", b"*-1\r\n", b"*0\r\n"];
        for reply in whole {
            assert_eq!(value_end(reply, 0), Some(reply.len()), "{:?}", String::from_utf8_lossy(reply));
            for cut in 0..reply.len() {
                assert_eq!(value_end(&reply[..cut], 0), None, "{:?} cut at {cut}", String::from_utf8_lossy(reply));
            }
        }
        let nested = b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n%1\r\n+k\r\n$1\r\nv\r\n";
        assert_eq!(value_end(nested, 0), Some(nested.len()));
        assert_eq!(value_end(&nested[..nested.len() - 1], 0), None);
        assert_eq!(bulk_strings("*3\r\n$1\r\na\r\n$-1\r\n$4\r\nb\r\nc\r\n"), ["a", "b\r\nc"]);
    }

    #[tokio::test]
    async fn a_server_of_its_own_stops_and_restarts_on_its_port() {
        let began = std::time::Instant::now();
        let mut redis = Redis::start().await;
        eprintln!("redis started in {:?}", began.elapsed());
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/0"));
        assert_eq!(redis.command(&["PING"]).await, "+PONG\r\n");
        assert_eq!(redis.command(&["SET", "greeting", "hello world"]).await, "+OK\r\n");
        assert_eq!(redis.command(&["GET", "greeting"]).await, "$11\r\nhello world\r\n");
        assert_eq!(redis.command(&["GET", "absent"]).await, "$-1\r\n");
        assert!(redis.command(&["NOSUCHCOMMAND"]).await.starts_with("-ERR"));
        assert_eq!(redis.keys("*").await, ["greeting"]);

        redis.stop().await;
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "nothing listens on the port of a stopped server");

        let began = std::time::Instant::now();
        redis.restart().await;
        eprintln!("redis restarted in {:?}", began.elapsed());
        assert_eq!(redis.port(), port);
        assert_eq!(redis.command(&["GET", "greeting"]).await, "$-1\r\n", "nothing is persisted");
        assert_eq!(redis.command(&["RPUSH", "l", "a", "b"]).await, ":2\r\n");
        assert_eq!(redis.command(&["LRANGE", "l", "0", "-1"]).await, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");

        let pid = redis.child.as_ref().expect("running").id();
        let dir = redis.dir.clone();
        drop(redis);
        assert!(!crate::process::is_running(pid), "the server is killed on drop");
        assert!(!dir.exists(), "its directory is removed on drop");
    }
}
