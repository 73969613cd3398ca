//! A PostgreSQL server of the test's own: a new cluster made by `initdb` in a fresh temporary
//! directory, its `postgres` run as a child process on a free loopback port, stopped and its
//! directory removed when the handle drops. `fsync` stays on, so a write the server
//! acknowledged survives [`Postgres::kill_9`] and the crash recovery of the next start.
//!
//! PostgreSQL refuses to run as root; as root, `initdb` and `postgres` run as the `postgres`
//! system user, through `setpriv`, which execs: the child's pid is the postmaster's own, and
//! signals reach it. `setpriv --pdeathsig KILL` also kills the postmaster if the test process
//! dies without running `Drop`; the parent it watches is the *thread* that started it, so start
//! servers on the test's own thread or runtime.
//!
//! The binaries come from the directory of the `initdb` on PATH, else from the newest
//! `/usr/lib/postgresql/VERSION/bin` (Debian keeps them off PATH).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::process::{children_of, is_running};
use crate::redis::{exited, fresh_dir, on_path};

/// How long a start (crash recovery included) may take to accept connections: generous, for a
/// busy two-core machine.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The superuser `initdb` makes, and the database [`Postgres::start`] creates.
const USER: &str = "tollgate";

/// A running (or stopped) PostgreSQL cluster owned by one test.
pub struct Postgres {
    port: u16,
    /// Holds `data/` (the cluster), `socket/` (its Unix socket) and `postgres.log`.
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl Postgres {
    /// Makes a new cluster, starts it on a free loopback port, and creates the `tollgate`
    /// database, owned by the superuser `tollgate`, who connects without a password.
    pub async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = fresh_dir("postgres");
        let socket = dir.join("socket");
        std::fs::create_dir(&socket).expect("create the socket directory");
        if running_as_root() {
            // initdb creates data/ in here, and the server its socket and lock file.
            let (uid, gid) = postgres_user();
            for d in [&dir, &socket] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {} to postgres: {e}", d.display()));
            }
        }
        // From here on the handle owns the directory: a panic removes it.
        let mut pg = Postgres { port: 0, dir, bin, child: None };
        // -N: no fsync while initdb writes the cluster; the server itself keeps fsync on.
        let mut initdb = as_server_user(&pg.bin.join("initdb"));
        initdb.arg("-D").arg(pg.data_dir()).args(["-U", USER, "-A", "trust", "-N", "-E", "UTF8", "--locale=C", "--no-instructions"]).current_dir(&pg.dir);
        let out = crate::within(120, "initdb", tokio::process::Command::from(initdb).kill_on_drop(true).output())
            .await
            .unwrap_or_else(|e| panic!("run initdb through setpriv: {e}"));
        assert!(out.status.success(), "initdb failed ({}):\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

        // The port is free when picked but not reserved: another process may bind it before the
        // server does. That shows as an early exit, and a few other ports are tried.
        for _ in 0..3 {
            let port = crate::standard::free_port("127.0.0.1");
            match launch(&pg.bin, &pg.dir, port).await {
                Ok(child) => {
                    (pg.port, pg.child) = (port, Some(child));
                    pg.run_psql("postgres", &format!("CREATE DATABASE {USER}")).await;
                    return pg;
                }
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("postgres exited on start; its log:\n{log}"),
            }
        }
        panic!("postgres: the free ports picked for it were taken three times; its log:\n{}", read_log(&pg.dir));
    }

    /// `postgres://tollgate@127.0.0.1:PORT/tollgate`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{USER}", self.port)
    }

    /// The server's port, the same across stops and restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs `sql` in the `tollgate` database with `psql -At` (quiet: no command tags) and
    /// returns its output without the final newline: `"1"`, or rows as `a|b` lines.
    /// Panics with psql's error if a statement fails.
    pub async fn psql(&self, sql: &str) -> String {
        self.run_psql(USER, sql).await
    }

    async fn run_psql(&self, database: &str, sql: &str) -> String {
        let mut psql = tokio::process::Command::new(self.bin.join("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER, "-d", database, "-p"])
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = crate::within(60, &format!("psql {sql:?}"), psql.output()).await.unwrap_or_else(|e| panic!("run psql: {e}"));
        assert!(out.status.success(), "psql {sql:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        stdout
    }

    /// Stops the server cleanly ("fast" shutdown, SIGINT: sessions are ended, a checkpoint is
    /// written) and waits for it to exit. The port stays this handle's, for a restart.
    pub async fn stop(&mut self) {
        // The child stays in the handle until it is gone, for `Drop` to kill should this panic.
        if let Some(child) = self.child.as_mut() {
            send(&[child.id()], "INT");
            crate::within(60, "postgres shutting down after SIGINT", exited(child)).await;
            self.child = None;
        }
    }

    /// Starts the server again (stopping it first if it runs) on the same cluster and port,
    /// and waits until it accepts connections, after crash recovery if it crashed.
    pub async fn restart(&mut self) {
        self.stop().await;
        match launch(&self.bin, &self.dir, self.port).await {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!("postgres did not restart on port {}; its log:\n{log}", self.port),
        }
    }

    /// Crashes the server: SIGKILL to the postmaster and every process it started, at once,
    /// with nothing written on the way out. Returns once all of them are gone, so
    /// [`Postgres::restart`] can start on the same cluster (and recovers it from the WAL).
    pub async fn kill_9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let left = kill_all(child);
            crate::within(10, "postgres processes exiting after SIGKILL", async {
                exited(child).await;
                while left.iter().any(|&pid| is_running(pid)) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            self.child = None;
        }
    }
}

impl Drop for Postgres {
    /// Immediate shutdown (SIGQUIT: the postmaster ends its processes and reaps them), and
    /// SIGKILL to all of them if that takes more than a few seconds; then the cluster is deleted.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send(&[child.id()], "QUIT");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if child.try_wait().ok().flatten().is_none() {
                kill_all(&mut child);
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `postgres` on the cluster in `dir` and waits until it accepts connections. `Err`
/// carries the server's log when it exited first (a port taken meanwhile, a broken cluster).
async fn launch(bin: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let log = File::options().create(true).append(true).open(dir.join("postgres.log")).expect("create postgres.log");
    let mut postgres = as_server_user(&bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir.join("socket"))
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log's handle"))
        .stderr(log);
    let mut child = postgres.spawn().unwrap_or_else(|e| panic!("spawn postgres through setpriv (util-linux; run scripts/setup.sh): {e}"));
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if child.try_wait().expect("poll postgres").is_some() {
            return Err(read_log(dir));
        }
        if accepting(bin, port).await {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            kill_all(&mut child);
            let _ = child.wait();
            panic!("postgres on port {port} did not accept connections within {READY_WITHIN:?}; its log:\n{}", read_log(dir));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the server accepts connections now (`pg_isready`: not starting up, not recovering).
async fn accepting(bin: &Path, port: u16) -> bool {
    let mut ready = tokio::process::Command::new(bin.join("pg_isready"));
    ready.args(["-q", "-h", "127.0.0.1", "-U", USER, "-d", "postgres", "-t", "2", "-p"]).arg(port.to_string()).stdin(Stdio::null()).kill_on_drop(true);
    matches!(tokio::time::timeout(Duration::from_secs(5), ready.status()).await, Ok(Ok(status)) if status.success())
}

/// A command for `program` that PostgreSQL accepts to run: as the `postgres` user when this
/// process is root. It dies with the thread that starts it (see the module's doc).
fn as_server_user(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    if running_as_root() {
        cmd.args(["--reuid", "postgres", "--regid", "postgres", "--init-groups"]);
    }
    cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
    cmd
}

/// Stops the postmaster (so it starts nothing more), then SIGKILLs it and every process it
/// started; returns those processes' pids. The postmaster is left for the caller to reap.
fn kill_all(postmaster: &mut Child) -> Vec<u32> {
    let pid = postmaster.id();
    send(&[pid], "STOP");
    let children = children_of(pid);
    send(&[&[pid][..], &children].concat(), "KILL");
    children
}

/// Sends a signal by name with the system's `kill`, ignoring processes already gone.
fn send(pids: &[u32], signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).args(pids.iter().map(u32::to_string)).stderr(Stdio::null()).status();
}

/// The server's output so far, for a panic message.
fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// `/proc/self` belongs to this process's effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The `postgres` system user's uid and gid, which the package creates.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3).then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?))).flatten()
        })
        .unwrap_or_else(|| panic!("no `postgres` user to run PostgreSQL as (root may not): run scripts/setup.sh"))
}

/// The directory of PostgreSQL's server and client binaries.
fn bin_dir() -> PathBuf {
    let has_all = |dir: &Path| ["initdb", "postgres", "psql", "pg_isready"].iter().all(|b| dir.join(b).is_file());
    if let Some(initdb) = on_path("initdb") {
        // Resolves a symlink such as /usr/local/bin/initdb to the directory that has the rest.
        let dir = std::fs::canonicalize(&initdb).unwrap_or(initdb).parent().map(Path::to_path_buf);
        if let Some(dir) = dir.filter(|d| has_all(d)) {
            return dir;
        }
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten();
    versions
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_all(dir))
        .max()
        .map(|(_, dir)| dir)
        .unwrap_or_else(|| panic!("PostgreSQL's initdb, postgres, psql and pg_isready are not on PATH nor in /usr/lib/postgresql/*/bin: run scripts/setup.sh"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running processes of the `postgres` binary in this cluster's data directory.
    fn processes_of(pg: &Postgres) -> Vec<u32> {
        let Some(pid) = pg.child.as_ref().map(Child::id) else { return Vec::new() };
        [&[pid][..], &children_of(pid)].concat().into_iter().filter(|&p| is_running(p)).collect()
    }

    #[tokio::test]
    async fn a_cluster_of_its_own_keeps_acknowledged_rows_across_restarts_and_crashes() {
        let began = std::time::Instant::now();
        let mut pg = Postgres::start().await;
        eprintln!("postgres started in {:?}", began.elapsed());
        let port = pg.port();
        assert_eq!(pg.url(), format!("postgres://tollgate@127.0.0.1:{port}/tollgate"));
        assert_eq!(pg.psql("SELECT current_user || '@' || current_database()").await, "tollgate@tollgate");
        assert_eq!(pg.psql("SHOW fsync").await, "on");
        let pid = pg.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the postmaster's status");
        assert!(status.lines().any(|l| l.starts_with("Name:") && l.contains("postgres")), "the child is the postmaster itself:\n{status}");

        pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text)").await;
        pg.psql("INSERT INTO t VALUES (1, 'one')").await;
        let began = std::time::Instant::now();
        pg.restart().await;
        eprintln!("postgres restarted in {:?}", began.elapsed());
        assert_eq!(pg.port(), port);
        assert_eq!(pg.psql("SELECT id, v FROM t").await, "1|one");

        pg.psql("INSERT INTO t VALUES (2, 'two')").await;
        let before = processes_of(&pg);
        assert!(before.len() > 1, "a postmaster and its processes: {before:?}");
        pg.kill_9().await;
        assert!(before.iter().all(|&p| !is_running(p)), "every process of the cluster is gone after kill_9");
        let began = std::time::Instant::now();
        pg.restart().await;
        eprintln!("postgres recovered from kill -9 in {:?}", began.elapsed());
        assert!(read_log(&pg.dir).contains("automatic recovery in progress"), "a crash, recovered from the WAL:\n{}", read_log(&pg.dir));
        assert_eq!(pg.psql("SELECT id || ':' || v FROM t ORDER BY id").await, "1:one\n2:two");
    }

    #[tokio::test]
    async fn drop_leaves_no_process_and_no_directory() {
        let pg = Postgres::start().await;
        let processes = processes_of(&pg);
        let dir = pg.dir.clone();
        assert!(processes.len() > 1, "a postmaster and its processes: {processes:?}");
        drop(pg);
        assert!(processes.iter().all(|&p| !is_running(p)), "a dropped cluster's processes are gone");
        assert!(!dir.exists(), "its directory is removed on drop");
    }
}
