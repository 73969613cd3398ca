//! Processes: finding the binaries under test, and watching processes through `/proc`.

use std::path::PathBuf;

/// A binary of this workspace, found in the target directory the test executable runs from
/// (`target/debug/deps/<test>` -> `target/debug/<name>`).
///
/// The gateway binary is not built by `cargo test -p tollgate-tests`: run
/// `cargo build -p tollgate` first (the CI script does), or point `TOLLGATE_BIN` at one.
pub fn binary(name: &str) -> PathBuf {
    if name == "tollgate"
        && let Some(p) = std::env::var_os("TOLLGATE_BIN")
    {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no `{name}` binary next to {}: run `cargo build -p tollgate` before the tests (with the same CARGO_TARGET_DIR), or set TOLLGATE_BIN",
        exe.display()
    );
}

/// Whether a process runs (a zombie waiting to be reaped does not).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => state(&stat).is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

/// The running processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        if parent(&stat) == Some(pid) && is_running(child) {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

/// `/proc/PID/stat` is `pid (comm) state ppid ...`; `comm` may hold spaces and parentheses.
fn after_comm(stat: &str) -> Option<&str> {
    stat.rfind(')').map(|i| &stat[i + 1..])
}

fn state(stat: &str) -> Option<char> {
    after_comm(stat)?.split_whitespace().next()?.chars().next()
}

fn parent(stat: &str) -> Option<u32> {
    after_comm(stat)?.split_whitespace().nth(1)?.parse().ok()
}

/// Sends a signal by name (`TERM`, `KILL`) with the system's `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}
