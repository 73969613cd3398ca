//! The `tollgate` command: `serve` runs the gateway, `validate` checks a config file,
//! `config schema` prints the file's JSON Schema, `export` and `apply` talk to a running one,
//! `policy new` starts a policy crate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::config::{Config, ConfigError};

/// Every message allocates a few small buffers; mimalloc serves those markedly cheaper than glibc's malloc.
/// The `system-alloc` feature leaves it out, for heap profilers that hook `malloc` (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--version`: the binary's and the policy contract's, the two a policy author needs to match.
fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| format!("{} (policy contract tollgate:policy@{})", env!("CARGO_PKG_VERSION"), tollgate::policy::CONTRACT_VERSION))
}

#[derive(Parser)]
#[command(name = "tollgate", version = version(), about = "An MCP gateway whose policies are WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file and print every problem with where it is.
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// About the config file itself.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Print a running gateway's configuration as YAML (products as the management API left them).
    Export {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Work on policies.
    Policy {
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Show how a config file differs from a running gateway, then apply it through the management API.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Show the difference only: exit 0 when there is none, 1 when there is one.
        #[arg(long)]
        dry_run: bool,
        /// With `--dry-run`, save what the difference was computed against here; without it,
        /// apply the difference against what was saved, refusing whatever changed since.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a JSON Schema (draft 2020-12) of the config file, for editors and CI; derived from
    /// the gateway's own config types. `validate` still checks what a schema cannot.
    Schema,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Write a new policy project (Rust, Python or JavaScript) that builds out of the box (`tollgate policy build`),
    /// with a cases file that passes (`tollgate policy test`).
    New {
        /// The crate's name: lowercase letters, digits and '-'.
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The project's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: tollgate::scaffold::Lang,
    },
    /// Build a policy project (Rust: a Cargo.toml; Python: an app.py) into a component; prints
    /// its path last.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a component against a cases file, offline, in the gateway's runtime and limits.
    /// Prints each failure and 'N passed, M failed'; exits 0 only if all pass.
    Test {
        /// The component (`.wasm`), or a standard policy by name.
        component: PathBuf,
        /// The cases file (YAML).
        #[arg(long)]
        cases: PathBuf,
    },
    /// Upload a component through the management API and bind it in a server's chain, showing
    /// the chain's difference first. Pushing the same bytes again changes nothing.
    Push {
        /// The component (`.wasm`).
        component: PathBuf,
        /// The server whose chain gets it.
        #[arg(long)]
        server: String,
        /// One version of the server, instead of its default chain.
        #[arg(long)]
        version: Option<String>,
        /// The binding's config (YAML or JSON).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Replace the binding whose `policy` is this (a path, or an older `sha256:` reference).
        #[arg(long)]
        replace: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(clap::Args)]
struct RemoteArgs {
    /// The management API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    management: String,
    /// The environment variable holding the admin token.
    #[arg(long, default_value = "TOLLGATE_ADMIN_TOKEN")]
    token_env: String,
}

impl RemoteArgs {
    fn remote(&self) -> anyhow::Result<tollgate::cli_apply::Remote> {
        let token = std::env::var(&self.token_env).map_err(|_| anyhow::anyhow!("{} is not set: it holds the admin token", self.token_env))?;
        Ok(tollgate::cli_apply::Remote::new(&self.management, token))
    }
}

/// Runs a command that talks to a running gateway; errors go to stderr with exit status 1.
fn remote_command(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // This binary is also the bounded child that compiles components (`policy::compile`).
    if std::env::args_os().nth(1).is_some_and(|a| a == tollgate::policy::compile::CHILD_ARG) {
        return tollgate::policy::compile_child();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Config { action: ConfigCommand::Schema } => {
            use std::io::Write;
            let text = serde_json::to_string_pretty(&tollgate::config::schema::schema()).expect("a JSON value always serializes");
            // A closed pipe (`| head`) ends the command quietly rather than with a panic.
            match writeln!(std::io::stdout().lock(), "{text}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Command::Export { remote } => remote_command(async move {
            print!("{}", tollgate::cli_apply::export(&remote.remote()?).await?);
            Ok(())
        }),
        Command::Apply { file, remote, dry_run, plan: saved } => {
            let cfg = match Config::load(&file) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            let base = file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
            // 0: nothing differs (or all of it applied); 1: `--dry-run` found a difference;
            // 2: it could not be read or applied.
            let done = rt.block_on(async move {
                let remote = remote.remote()?;
                let running = match (&saved, dry_run) {
                    (Some(path), false) => tollgate::cli_apply::read_seen(path)?,
                    _ => remote.config().await?,
                };
                let plan = tollgate::cli_apply::plan(&cfg, &base, running)?;
                if let (Some(path), true) = (&saved, dry_run) {
                    plan.save_seen(path)?;
                }
                if plan.changes.is_empty() {
                    println!("no difference");
                    return Ok(ExitCode::SUCCESS);
                }
                for c in &plan.changes {
                    println!("{c}");
                }
                if dry_run {
                    return Ok(ExitCode::FAILURE);
                }
                plan.apply(&remote).await?;
                println!("applied");
                anyhow::Ok(ExitCode::SUCCESS)
            });
            done.unwrap_or_else(|e| {
                eprintln!("tollgate: {e:#}");
                ExitCode::from(2)
            })
        }
        Command::Policy { action: PolicyCommand::New { name, dir, lang } } => match tollgate::scaffold::new_project(&dir, &name, lang) {
            Ok(made) => {
                println!(
                    "created {}; build it with: cd {} && {}tollgate policy build ., then try it: tollgate policy test {} --cases cases.yaml",
                    made.display(),
                    made.display(),
                    if lang == tollgate::scaffold::Lang::Js { "npm install && " } else { "" },
                    lang.component(&name)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Policy { action: PolicyCommand::Build { dir } } => match tollgate::kit_build::build(&dir) {
            Ok(component) => {
                println!("{}", component.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Policy { action: PolicyCommand::Test { component, cases } } => {
            let cases = match tollgate::cases::Cases::read(&cases) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // Compiled as the gateway compiles (bounded, in a child) and kept in the user's
            // cache, so running the cases again after an edit to them costs no compile.
            if let Ok(program) = std::env::current_exe() {
                use tollgate::policy::compile;
                let memory_mb = tollgate::config::Limits::default().policy_compile_memory_mb;
                compile::isolate(compile::Isolation { program, memory_mb, cache: compile::user_cache_dir() });
            }
            let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
            let report = rt.block_on(tollgate::cases::run(&component, &cases));
            for (name, why) in &report.failed {
                println!("FAILED {name}: {why}");
            }
            println!("{} passed, {} failed", report.passed, report.failed.len());
            if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Policy { action: PolicyCommand::Push { component, server, version, config, replace, remote } } => remote_command(async move {
            let p = tollgate::cli_push::Push {
                component: &component,
                server: &server,
                version: version.as_deref(),
                config: config.as_deref(),
                replace: replace.as_deref(),
            };
            for line in tollgate::cli_push::push(&remote.remote()?, &p).await? {
                println!("{line}");
            }
            Ok(())
        }),
        Command::Validate { config } => {
            let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
            match rt.block_on(load(&config)) {
                Ok((c, loaded)) => {
                    let policies: usize = loaded.chains.values().chain(loaded.products.values()).map(|c| c.len()).sum();
                    let products = if c.products.is_empty() { String::new() } else { format!(", {} product(s)", c.products.len()) };
                    println!("{}: ok ({} server(s){products}, {policies} policy binding(s))", config.display(), c.servers.len());
                    ExitCode::SUCCESS
                }
                Err(e) => report(e),
            }
        }
        Command::Serve { config } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            // This runtime accepts connections (they run on the listener's own threads, as
            // many as `limits.worker_threads`), and runs the management API, config reloads,
            // policy compiles and the timers of sessions and state: two workers, so a compile
            // never holds up accepting.
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
            // Logging starts before the policies load, so what their compiles say is seen.
            let _traces = {
                let _in_runtime = rt.enter();
                match tollgate::telemetry::trace::provider(&cfg.telemetry) {
                    Ok(p) => init_tracing(p, &cfg.log.with_env()),
                    Err(e) => {
                        eprintln!("tollgate: cannot set up trace export: {e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            };
            // Before the policies load: their bindings take their store from it.
            // From here on, failures go through the log, in its format.
            if let Err(e) = rt.block_on(async { tollgate::policy::state::open(&cfg) }) {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
            let loaded = match rt.block_on(load_policies(&cfg, &config)) {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(serve(cfg, loaded, config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The config, and its policies loaded: each policy has checked its own config.
async fn load(path: &std::path::Path) -> Result<(Config, tollgate::policy::Loaded), ConfigError> {
    let cfg = Config::load(path)?;
    let loaded = load_policies(&cfg, path).await?;
    Ok((cfg, loaded))
}

/// The policies of a config read from `path`, compiled in bounded children (or loaded as
/// compiled before, from `limits.policy_compile_cache`).
async fn load_policies(cfg: &Config, path: &std::path::Path) -> Result<tollgate::policy::Loaded, ConfigError> {
    use tollgate::policy::compile;
    if let Ok(program) = std::env::current_exe() {
        compile::isolate(compile::Isolation { program, memory_mb: cfg.limits.policy_compile_memory_mb, cache: compile::cache_dir(cfg) });
    }
    tollgate::policy::load(cfg, path).await
}

fn report(e: ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

/// Logs to stderr as `log:` says (text or JSON lines; which events), the environment
/// overriding it; spans for the collector go their own way, whatever the log level.
fn init_tracing(provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>, log: &tollgate::config::LogConfig) -> tollgate::telemetry::trace::TraceGuard {
    use tracing_subscriber::util::SubscriberInitExt;
    let (dispatch, guard, most) = tollgate::telemetry::subscriber::build(provider, log);
    dispatch.init();
    // `init` opens the `log` bridge to every level, so each of wasmtime's trace lines (several
    // per policy instance) would be built and offered to the filter only to be dropped. Spans
    // never come through `log`, so the filter's most verbose level is all it needs.
    log::set_max_level(match most.and_then(|l| l.into_level()) {
        None if most.is_some() => log::LevelFilter::Off,
        None => log::LevelFilter::Trace,
        Some(tracing::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
    });
    guard
}

async fn serve(cfg: Config, policies: tollgate::policy::Loaded, file: PathBuf) -> anyhow::Result<()> {
    // The admin token is read before anything listens: a gateway whose management API would
    // refuse everyone does not start.
    let admin = match &cfg.management {
        Some(m) => {
            let reader = m.read_only_token_env.as_deref().map(tollgate::management::auth::AdminToken::from_env).transpose()?;
            Some((tollgate::management::auth::AdminToken::from_env(&m.admin_token_env)?, reader))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let mut cfg = cfg;
    // Virtual servers reach their members through this listener, from this host.
    cfg.limits.loopback = Some(tollgate::config::Loopback::new(addr));
    let gw = tollgate::gateway::Gateway::new(cfg).await?;
    gw.install(&policies);
    tollgate::reload::watch(gw.clone(), file.clone(), policies.files);
    let stop = tokio_util::sync::CancellationToken::new();
    let management = match (&gw.config.management, admin) {
        (Some(m), Some((admin, reader))) => {
            let l = tokio::net::TcpListener::bind(m.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {} (management): {e}", m.listen))?;
            tracing::info!(addr = %l.local_addr()?, "management API is listening");
            let base = file.parent().map(PathBuf::from).unwrap_or_default();
            let places = tollgate::policy::Places::of(&gw.config, &base);
            {
                // A reload of the file waits until what the API kept is in place.
                let _changing = gw.changing.lock().await;
                tollgate::management::components::restore(&gw).await?;
                tollgate::management::servers::restore(&gw, &base, &places).await?;
                tollgate::management::products::restore(&gw, &base).await?;
                tollgate::management::versions::restore(&gw).await?;
                tollgate::management::policies::restore(&gw, &places).await?;
            }
            // Changes other replicas make from now on (with a shared database).
            tollgate::management::follow::start(gw.clone(), file.clone(), base.clone());
            let state = std::sync::Arc::new(tollgate::management::Management {
                gateway: gw.clone(),
                admin,
                reader,
                file: file.clone(),
                base,
                client: addr,
                catalog: Default::default(),
            });
            let grace = gw.config.limits.shutdown_grace();
            Some(tokio::spawn(tollgate::management::serve(state, l, stop.clone().cancelled_owned(), grace)))
        }
        _ => None,
    };
    for s in tollgate::management::servers::running(&gw) {
        tracing::info!(server = %s.name, streamable = %format!("http://{addr}/{}/mcp", s.name), sse = %format!("http://{addr}/{}/sse", s.name), "serving");
        for v in &s.versions {
            tracing::info!(server = %s.name, version = %v.name, retired = v.retired, streamable = %format!("http://{addr}/{}/{}/mcp", s.name, v.name), "serving version");
        }
    }
    tracing::info!(%addr, "tollgate is listening");
    let signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.cancel();
    });
    tollgate::listener::serve(gw, listener, stop.cancelled_owned()).await?;
    if let Some(m) = management {
        match m.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "management API ended with an error"),
            Err(e) => tracing::warn!(error = %e, "management API task failed"),
            Ok(Ok(())) => {}
        }
    }
    // What policies counted in the last second reaches the disk before the process ends.
    tollgate::policy::state::durable::flush();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
