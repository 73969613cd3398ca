//! The real `tollgate` binary, started on a config written by the test and stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The binary, built once per test run so it is never older than the sources.
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // The test runs from <target>/<profile>/deps/; the binary goes to <target>/<profile>/.
            let exe = std::env::current_exe().expect("the test's own path");
            let profile_dir = exe.parent().and_then(Path::parent).expect("a profile folder");
            let target_dir = profile_dir.parent().expect("a target folder");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "--package", "tollgate", "--bin", "tollgate", "--target-dir"]).arg(target_dir);
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building tollgate failed");
            profile_dir.join("tollgate")
        })
        .clone()
}

/// A config file in a fresh temporary folder, named after the test.
pub fn write_config(name: &str, yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).expect("the config is written");
    path
}

/// A running gateway.
pub struct Gateway {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts `tollgate serve` on `yaml` (which should listen on `127.0.0.1:0`) and waits until it listens.
    pub fn start(name: &str, yaml: &str) -> Gateway {
        let config = write_config(name, yaml);
        let mut child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("TOLLGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tollgate starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("addr=") {
                    let addr: String = line[at + 5..].chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
                sink.lock().expect("log lock").push_str(&(line + "\n"));
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("tollgate did not start:\n{}", log.lock().expect("log lock")));
        Gateway { child, addr, log }
    }

    /// `http://{addr}/{server}/mcp`.
    pub fn mcp_url(&self, server: &str) -> String {
        format!("http://{}/{server}/mcp", self.addr)
    }

    /// What the gateway logged so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate validate` on `yaml`; its exit status and what it printed.
pub fn validate(name: &str, yaml: &str) -> (ExitStatus, String) {
    let config = write_config(name, yaml);
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = Command::new(binary()).args(["validate", "--config"]).arg(&config).output().expect("tollgate runs");
    assert!(Instant::now() < deadline, "validate took too long");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}
