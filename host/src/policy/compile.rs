//! Compiling components, bounded. A component (an upload, a file named by the config) is
//! compiled by a child process of this same binary, under an address-space limit and killed at
//! its deadline, so a component built to make the compiler use all memory or run without end
//! costs a failed load, never the gateway. The child hands back wasmtime's compiled artifact,
//! which the gateway loads into its own engine.
//!
//! The artifact is kept on disk (`limits.policy_compile_cache`), so a restart, a reload or
//! another replica on the same disk loads it rather than compiling again: a componentized Python
//! policy takes seconds to compile, and the standard policies would compile at every start. An
//! artifact is machine code the gateway maps and runs as is, so the directory is held to what
//! ssh asks of its keys: owned by this user and writable by no one else (nor may any directory
//! above it be, unless it is root's or this user's and sticky, as `/tmp` is). One that is not
//! is not used, with one warning. Files are named `<sha256 of the component>-<engine>.cwasm`,
//! where `<engine>` hashes what makes an artifact loadable (wasmtime's version, the compiler's
//! target and settings), so a gateway of another wasmtime never picks up this one's; a file
//! that does not load all the same (truncated, damaged) is removed and the component compiled
//! again. Files are written whole (a temporary file, then a rename). The directory keeps at most
//! [`CACHE_ENTRIES`] files and [`CACHE_BYTES`] bytes: past either, the least recently used go
//! (a file's mtime is set each time it is loaded). A failed compile is never kept.
//!
//! Tests and benchmarks, which are not the `tollgate` binary, compile in process and keep nothing.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::config::{CompileCache, Config};

/// The argument that makes `tollgate` the compiling child.
pub const CHILD_ARG: &str = "__compile-component";

/// The longest a component may take to compile; a componentized interpreter takes seconds.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The most compiled components the cache directory keeps.
pub const CACHE_ENTRIES: usize = 256;

/// The most bytes the cache directory keeps (a compiled Python policy is some hundred MiB).
pub const CACHE_BYTES: u64 = 4 << 30;

/// How compiles run in this process: set once by the binary at start.
static ISOLATION: OnceLock<Isolated> = OnceLock::new();

/// A child of `program` compiles, within `memory_mb` of address space; what it compiles is
/// kept in `cache`, if set (see [`cache_dir`]).
#[derive(Debug, Clone)]
pub struct Isolation {
    pub program: PathBuf,
    pub memory_mb: u64,
    pub cache: Option<PathBuf>,
}

struct Isolated {
    isolation: Isolation,
    /// The cache directory, checked at the first compile; `None` when there is none to use.
    cache: OnceLock<Option<Cache>>,
}

/// From now on, compiles run in bounded children of `program`.
pub fn isolate(i: Isolation) {
    let _ = ISOLATION.set(Isolated { isolation: i, cache: OnceLock::new() });
}

/// Where `config` keeps compiled components: `limits.policy_compile_cache` if set (`off`:
/// nowhere), else `<management.data_dir>/compiled`, else the user's cache directory
/// (`$XDG_CACHE_HOME/tollgate/compiled`, or `$HOME/.cache/tollgate/compiled`).
pub fn cache_dir(config: &Config) -> Option<PathBuf> {
    match &config.limits.policy_compile_cache {
        Some(CompileCache::Off) => None,
        Some(CompileCache::Dir(dir)) => Some(dir.clone()),
        None => match config.management.as_ref().and_then(|m| m.data_dir.as_deref()) {
            Some(data) => Some(data.join("compiled")),
            None => user_cache_dir(),
        },
    }
}

/// The user's cache (`$XDG_CACHE_HOME/tollgate/compiled`, else `~/.cache/tollgate/compiled`):
/// where a gateway without `data_dir`, and `tollgate policy test`, keep compiled components.
pub fn user_cache_dir() -> Option<PathBuf> {
    // XDG: a relative value is to be ignored.
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let user = std::env::var_os("XDG_CACHE_HOME").and_then(absolute).or_else(|| std::env::var_os("HOME").and_then(absolute).map(|h| h.join(".cache")));
    user.map(|c| c.join("tollgate").join("compiled"))
}

/// Whether a compiled component may be kept in the on-disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    OnDisk,
    /// Compiled for this process only: a binding's snapshot whose memory may hold a secret.
    InMemory,
}

/// Compiles `bytes` for `engine`: in a bounded child when [`isolate`] was called, or loaded
/// from the cache when it was compiled before (and may be kept there).
pub fn compile(engine: &Engine, bytes: &[u8], keep: Keep) -> Result<Component, String> {
    let Some(isolated) = ISOLATION.get() else {
        return Component::from_binary(engine, bytes).map_err(|e| format!("not a valid component: {e:#}"));
    };
    let started = Instant::now();
    let digest = hex::encode(Sha256::digest(bytes));
    let name = match super::standard::names().into_iter().find(|n| super::standard::lookup(n) == Some(bytes)) {
        Some(standard) => standard.to_owned(),
        None => format!("sha256:{digest}"),
    };
    let cache = isolated.cache.get_or_init(|| Cache::open(isolated.isolation.cache.as_deref()?, engine)).as_ref().filter(|_| keep == Keep::OnDisk);
    if let Some(cache) = cache
        && let Some(component) = cache.load(engine, &digest)
    {
        tracing::info!(component = %name, ms = started.elapsed().as_millis() as u64, "policy component loaded from the compile cache");
        return Ok(component);
    }
    let artifact = in_child(&isolated.isolation, bytes)?;
    let component = deserialize(engine, &artifact)?;
    tracing::info!(component = %name, ms = started.elapsed().as_millis() as u64, cached = cache.is_some(), "policy component compiled");
    if let Some(cache) = cache {
        cache.store(&digest, &artifact);
    }
    Ok(component)
}

/// Loads an artifact of `precompile_component`.
fn deserialize(engine: &Engine, artifact: &[u8]) -> Result<Component, String> {
    // SAFETY: the artifact is what `Engine::precompile_component` of this same binary wrote, for
    // an engine of the same settings (`engine::settings`): a moment ago in the child, or before
    // that, kept in a directory only this user can write (`Cache::open`) in a file only this
    // user can write (`Cache::load`). wasmtime checks it against this engine before use. It is
    // no more trusted than a component compiled in this process would be.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) };
    component.map_err(|e| format!("its compiled form does not load: {e:#}"))
}

/// The directory compiled components are kept in, checked fit for code.
struct Cache {
    dir: PathBuf,
    /// What makes an artifact loadable by this engine, short: part of every file's name.
    engine: String,
}

impl Cache {
    /// The directory at `dir`, created if need be; `None`, said once, when it cannot be
    /// created or is not safe to load code from.
    fn open(dir: &Path, engine: &Engine) -> Option<Cache> {
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the compile cache; components are compiled at each start");
            return None;
        }
        if let Err(why) = trusted(dir) {
            tracing::warn!(dir = %dir.display(), "the compile cache is not used: {why}; components are compiled at each start");
            return None;
        }
        let mut hasher = Sha(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine = hex::encode(&hasher.0.finalize()[..8]);
        tracing::debug!(dir = %dir.display(), %engine, "compile cache in use");
        Some(Cache { dir: dir.to_owned(), engine })
    }

    fn file(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine))
    }

    /// The component compiled before from the bytes of `digest`, if it is kept and loads. A
    /// file that does not load is removed.
    fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.file(digest);
        let artifact = match read_own(&path) {
            Ok(Some(a)) => a,
            Ok(None) => return None,
            Err(why) => {
                tracing::warn!(file = %path.display(), "a compiled component in the cache is not used: {why}; compiling it again");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match deserialize(engine, &artifact) {
            Ok(component) => Some(component),
            Err(why) => {
                tracing::warn!(file = %path.display(), "a compiled component in the cache is not used: {why}; compiling it again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `artifact` as the compiled form of `digest`: a temporary file, synced, renamed
    /// into place, then the directory pruned. A failure costs a compile at the next start.
    fn store(&self, digest: &str, artifact: &[u8]) {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let target = self.file(digest);
        let temp = self.dir.join(format!(".{digest}.{}-{n}.tmp", std::process::id()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&temp)?;
            f.write_all(artifact)?;
            f.sync_all()?;
            std::fs::rename(&temp, &target)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            tracing::warn!(file = %target.display(), error = %e, "cannot keep a compiled component in the cache");
            return;
        }
        prune(&self.dir);
    }
}

/// A `std::hash::Hasher` over SHA-256, so the engine's compatibility hash is stable and wide.
struct Sha(Sha256);

impl std::hash::Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        // Never asked: the digest is read from the inner hasher.
        0
    }
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Whether code may be loaded from `dir`: it is a directory of this user that no one else can
/// write, under directories that are root's or this user's and that no one else can write
/// either (or are sticky, as `/tmp` is: there no one can move another's directory).
fn trusted(dir: &Path) -> Result<(), String> {
    let real = dir.canonicalize().map_err(|e| format!("cannot resolve it: {e}"))?;
    let me = euid();
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    if meta.uid() != me {
        return Err(format!("it is owned by uid {}, not this user (uid {me})", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("its mode is {:o}: others than its owner can write it (chmod 700 it)", meta.mode() & 0o7777));
    }
    for above in real.ancestors().skip(1) {
        let meta = std::fs::metadata(above).map_err(|e| format!("cannot check {}: {e}", above.display()))?;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!("{} above it is owned by uid {}, neither root nor this user", above.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return Err(format!("{} above it can be written by others than its owner (mode {:o})", above.display(), meta.mode() & 0o7777));
        }
    }
    Ok(())
}

/// The bytes of `path`, a file of this user that no one else can write, its mtime set to now
/// (the cache evicts the least recently used); `None` if there is no such file.
fn read_own(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let mut f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
        return Err(format!("it is not a file of this user that only its owner can write (uid {}, mode {:o})", meta.uid(), meta.mode() & 0o7777));
    }
    let mut artifact = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut artifact).map_err(|e| format!("cannot read it: {e}"))?;
    let _ = f.set_modified(SystemTime::now());
    Ok(Some(artifact))
}

/// Bounds the directory: past [`CACHE_ENTRIES`] files or [`CACHE_BYTES`] bytes, the least
/// recently used go (the newest always stays); a temporary file an hour old was left by a
/// writer that died.
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let mut kept = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = entry.metadata() else { continue };
        let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.starts_with('.') && name.ends_with(".tmp") {
            if now.duration_since(used).is_ok_and(|age| age > Duration::from_secs(3600)) {
                let _ = std::fs::remove_file(entry.path());
            }
        } else if name.ends_with(".cwasm") && meta.is_file() {
            kept.push((used, meta.len(), entry.path()));
        }
    }
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut bytes = 0u64;
    for (i, (_, len, path)) in kept.into_iter().enumerate() {
        bytes = bytes.saturating_add(len);
        if i > 0 && (i >= CACHE_ENTRIES || bytes > CACHE_BYTES) {
            let _ = std::fs::remove_file(&path);
            tracing::debug!(file = %path.display(), "compile cache: least recently used entry removed");
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
