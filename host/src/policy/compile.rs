//! Compiling components, bounded. A component (an upload, a file named by the config) is
//! compiled by a child process of this same binary, under an address-space limit and killed at
//! its deadline, so a component built to make the compiler use all memory or run without end
//! costs a failed load, never the gateway. The child hands back wasmtime's compiled artifact,
//! which the gateway loads into its own engine.
//!
//! Tests and benchmarks, which are not the `tollgate` binary, compile in process.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The argument that makes `tollgate` the compiling child.
pub const CHILD_ARG: &str = "__compile-component";

/// The longest a component may take to compile; a componentized interpreter takes seconds.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// How compiles run in this process: set once by the binary at start.
static ISOLATION: OnceLock<Isolation> = OnceLock::new();

/// A child of `program` compiles, within `memory_mb` of address space.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub program: PathBuf,
    pub memory_mb: u64,
}

/// From now on, compiles run in bounded children of `program`.
pub fn isolate(i: Isolation) {
    let _ = ISOLATION.set(i);
}

/// Compiles `bytes` for `engine`: in a bounded child when [`isolate`] was called.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    match ISOLATION.get() {
        None => Component::from_binary(engine, bytes).map_err(|e| format!("not a valid component: {e:#}")),
        Some(i) => {
            let artifact = in_child(i, bytes)?;
            // SAFETY: the artifact is what `Engine::precompile_component` of this same binary
            // wrote a moment ago, for an engine of the same settings (`engine::settings`), and is
            // checked by wasmtime against this engine before use. It is no more trusted than a
            // component compiled in this process would be.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize(engine, &artifact) };
            component.map_err(|e| format!("its compiled form does not load: {e:#}"))
        }
    }
}

fn in_child(i: &Isolation, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut cmd = std::process::Command::new(&i.program);
    // The child needs nothing of the gateway's environment, its secrets least of all.
    cmd.arg(CHILD_ARG).env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    bound(&mut cmd, i.memory_mb << 20);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the compiler process: {e}"))?;
    let (mut stdin, mut stdout, mut stderr) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let errors = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr.by_ref().take(64 << 10).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("took longer than {} s to compile", TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("lost the compiler process: {e}")),
        }
    };
    let _ = writer.join();
    let artifact = reader.join().map_err(|_| "the compiler's output was lost".to_owned())?.map_err(|e| e.to_string())?;
    let said = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(artifact);
    }
    // The child's own verdicts start with `error: `; anything else (an allocation failure, a
    // loader that cannot map, an abort) is the address-space cap.
    match said.lines().rev().map(str::trim).find(|l| !l.is_empty()).and_then(|l| l.strip_prefix("error: ")) {
        Some(reason) => Err(reason.to_owned()),
        None => Err(format!("needed more than {} MiB to compile (limits.policy_compile_memory_mb)", i.memory_mb)),
    }
}

/// The child's address space is capped, and it dies with the gateway.
#[allow(unsafe_code)]
fn bound(cmd: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and prctl are async-signal-safe and touch only the child being set up.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The child: a component on stdin, its compiled artifact on stdout, a reason on stderr.
pub fn child_main(engine: wasmtime::Result<Engine>) -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("error: cannot read the component: {e}");
        return ExitCode::FAILURE;
    }
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the compiler: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match engine.precompile_component(&bytes) {
        Ok(artifact) => match std::io::stdout().write_all(&artifact) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot hand back the compiled component: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            // One line: the gateway reads the last `error: ` line as the reason.
            let reason = format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("error: not a valid component: {reason}");
            ExitCode::FAILURE
        }
    }
}
