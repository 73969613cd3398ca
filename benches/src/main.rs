//! `loadgen`: measures what the gateway adds to an MCP `tools/call`.
//!
//! It starts an MCP backend with one `echo` tool in a process of its own, one gateway process
//! per target, and drives the backend directly and through each gateway in interleaved rounds,
//! then prints the medians (`benches/README.md` has the details). `loadgen sessions` measures
//! the gateway's memory with many open sessions instead.

mod backend;
mod client;
mod driver;
mod gateway;
mod procstat;
mod relay;
mod report;
mod rounds;
mod sessions;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use backend::{BackendMode, BackendProc};
use client::Target;
use rounds::{Live, Plan, Schedule};
use tokens::{Signer, TokenMode};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load harness: an MCP echo backend, driven directly and through the gateway", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Memory mode: open many sessions, each with a GET stream, through one gateway and report
    /// its RSS and the backend's connections.
    Sessions(SessionsArgs),
    /// The backend process (started by loadgen itself).
    #[command(hide = true)]
    Backend(BackendArgs),
    /// The relay process of `--relay` (started by loadgen itself).
    #[command(hide = true)]
    Relay(RelayArgs),
}

/// Flags of both modes.
#[derive(Args, Debug)]
struct Common {
    /// The gateway binary, started as `PATH serve --config FILE`.
    #[arg(long, default_value = "target/release/tollgate")]
    gateway: PathBuf,
    /// The gateway's log level, passed to every gateway process as `TOLLGATE_LOG` and `RUST_LOG`.
    #[arg(long, default_value = "warn", value_name = "LEVEL")]
    gateway_log: String,
    /// The MCP endpoint path on the gateway.
    #[arg(long, default_value = "/echo/mcp")]
    gateway_path: String,
    /// A header sent on every request to a gateway, as `NAME: VALUE`. Repeatable.
    #[arg(long = "gateway-header", value_name = "NAME: VALUE")]
    gateway_headers: Vec<String>,
    /// How the backend speaks Streamable HTTP.
    #[arg(long, value_enum, default_value_t = BackendMode::Stateful)]
    backend_mode: BackendMode,
    /// Worker threads of the backend process's runtime.
    #[arg(long, default_value_t = 2)]
    backend_threads: usize,
    /// Worker threads of the driver's runtime (this process).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// A request slower than this counts as a timeout error (its connection is dropped).
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    request_timeout: f64,
    /// Seconds to wait for each gateway to become ready.
    #[arg(long, default_value_t = 30.0, value_name = "S")]
    startup_timeout: f64,
    /// Exit 0 even when some row had errors.
    #[arg(long)]
    allow_errors: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Rounds; each measures every target at every concurrency.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrency levels (workers, each with its own connection and session).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Measured seconds per target, concurrency and round.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    duration: f64,
    /// Warm-up seconds before each measurement.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    warmup: f64,
    /// Only drive the backend directly; start no gateway.
    #[arg(long)]
    direct_only: bool,
    /// A gateway target from a config template, as `[LABEL=]FILE[:TOKEN]`, TOKEN being
    /// `repeated`, `fresh` or `none` (default: `repeated` if the file has `{JWT_JWKS_KEY}`).
    /// Repeatable; the same file may appear under two labels.
    #[arg(long = "gateway-config", value_name = "[LABEL=]FILE[:TOKEN]")]
    gateway_configs: Vec<String>,
    /// Leave out the plain gateway (the built-in minimal config).
    #[arg(long)]
    no_plain_gateway: bool,
    /// Also drive the backend through a relay that copies bytes and reads none of them: the
    /// floor of one hop on this machine, which any proxy pays.
    #[arg(long)]
    relay: bool,
    /// Extra bytes of padding in each echoed text.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Before measuring, print one raw initialize + tools/call exchange with each target (stderr).
    #[arg(long)]
    show_exchange: bool,
}

#[derive(Args, Debug)]
struct SessionsArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open, each with a GET stream.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Sessions opened at a time (each opener has one keep-alive connection for its POSTs).
    #[arg(long, default_value_t = 32)]
    open_parallel: usize,
    /// `tools/call`s on sessions picked at random, once all are open.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Seconds to wait after the last session opened before reading memory.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    settle: f64,
    /// The gateway's config, as `[LABEL=]FILE[:TOKEN]`, instead of the plain one.
    #[arg(long = "gateway-config", value_name = "[LABEL=]FILE[:TOKEN]")]
    gateway_config: Option<String>,
    /// How the GET streams reach the gateway: an HTTP/1.1 connection each (as most MCP
    /// clients do), or HTTP/2 with prior knowledge, many streams to a connection (as a load
    /// balancer in front of the gateway does).
    #[arg(long, value_enum, default_value_t = sessions::StreamsOver::Http1)]
    streams_over: sessions::StreamsOver,
}

#[derive(Args, Debug)]
struct RelayArgs {
    #[arg(long)]
    listen: std::net::SocketAddr,
    #[arg(long)]
    to: std::net::SocketAddr,
}

#[derive(Args, Debug)]
struct BackendArgs {
    #[arg(long, value_enum, default_value_t = BackendMode::Stateful)]
    mode: BackendMode,
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (threads, allow_errors) = match &cli.command {
        Some(Command::Backend(args)) => {
            return match backend::serve(args.mode, args.port, args.threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("backend: {err:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Relay(args)) => {
            return match relay::serve(args.listen, args.to) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("relay: {err:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Sessions(args)) => (args.common.threads, args.common.allow_errors),
        None => (cli.run.common.threads, cli.run.common.allow_errors),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Child processes are killed when their handles drop: at the end, on an error, while
    // unwinding from a panic, and when an interrupt drops the run's future here.
    let outcome = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = async {
                match &cli.command {
                    Some(Command::Sessions(args)) => run_sessions(args).await,
                    _ => run(&cli.run).await,
                }
            } => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    });
    match outcome {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) if allow_errors => {
            eprintln!("some rows had errors (allowed by --allow-errors)");
            ExitCode::SUCCESS
        }
        Ok(true) => {
            eprintln!("error: some rows had errors (see the report); --allow-errors exits 0 anyway");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn plans(args: &RunArgs) -> anyhow::Result<Vec<Plan>> {
    let mut plans = vec![Plan::direct()];
    if args.relay {
        plans.push(Plan::relay());
    }
    if args.direct_only {
        return Ok(plans);
    }
    if !args.no_plain_gateway {
        plans.push(Plan::plain());
    }
    for spec in &args.gateway_configs {
        let plan = Plan::from_spec(spec)?;
        if plans.iter().any(|p| p.label == plan.label) {
            bail!("two targets are labelled {:?}", plan.label);
        }
        plans.push(plan);
    }
    if plans.len() == 1 {
        bail!("nothing to compare: give --direct-only, or leave a gateway target in");
    }
    Ok(plans)
}

fn check_gateway(common: &Common) -> anyhow::Result<()> {
    if !common.gateway.exists() {
        bail!(
            "no gateway binary at {} (build it with `cargo build --release -p tollgate`, pass --gateway PATH, or use --direct-only)",
            common.gateway.display()
        );
    }
    Ok(())
}

fn backend_line(backend: &BackendProc) -> String {
    format!("rmcp echo server in its own process, {}, {} runtime threads, at {}", backend.mode.describe(), backend.threads, backend.url())
}

fn target_headers(common: &Common) -> anyhow::Result<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>> {
    common.gateway_headers.iter().map(|h| client::parse_header(h)).collect()
}

/// The comparison run. Returns whether any row had errors.
async fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs one or more levels above 0");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let plans = plans(args)?;
    if !args.direct_only {
        check_gateway(common)?;
    }
    let started = SystemTime::now();
    let needs_tokens = plans.iter().any(|p| p.token != TokenMode::None || p.template.as_deref().is_some_and(|t| t.contains("{JWT_JWKS_KEY}")));
    let signer = if needs_tokens {
        eprintln!("making an RSA 2048 key pair for the bench tokens ...");
        Some(Signer::generate()?)
    } else {
        None
    };
    let mut backend = BackendProc::spawn(common.backend_mode, common.backend_threads)?;
    eprintln!("backend: pid {}, {}", backend.pid(), backend.url());
    let scratch = gateway::TempDir::new()?;
    let launch = gateway::Launch {
        binary: &common.gateway,
        dir: &scratch.0,
        log_level: &common.gateway_log,
        startup_timeout: Duration::from_secs_f64(common.startup_timeout),
    };
    let headers = target_headers(common)?;

    // Every process starts now and stays up for the whole run.
    let mut live = Vec::new();
    for plan in plans {
        let token = match (&signer, plan.token) {
            (Some(signer), TokenMode::Repeated | TokenMode::Fresh) => Some(signer.bearer()),
            _ => None,
        };
        let (target, gw) = match &plan.template {
            None if plan.relay => {
                let listen = gateway::free_port()?;
                let relay = relay::start(listen, backend.addr, scratch.0.join("relay.log"), launch.startup_timeout).await?;
                eprintln!("relay: pid {} on {}", relay.pid(), relay.addr);
                (Target { addr: relay.addr, path: "/mcp".into(), headers: Vec::new() }, Some(relay))
            }
            None => (Target { addr: backend.addr, path: "/mcp".into(), headers: Vec::new() }, None),
            Some(template) => {
                let listen = gateway::free_port()?;
                let config = gateway::render(template, listen, &backend.url(), signer.as_ref().map(|s| s.jwk.as_str()));
                let gw = gateway::start(&launch, &plan.label, &config, listen).await.with_context(|| format!("starting the gateway for {:?}", plan.label))?;
                eprintln!("{}: gateway pid {} on {}", plan.label, gw.pid(), gw.addr);
                (Target { addr: gw.addr, path: common.gateway_path.clone(), headers: headers.clone() }, Some(gw))
            }
        };
        live.push(Live { plan, target, gateway: gw, token, stock: tokens::Stock::default() });
    }
    if args.show_exchange {
        for t in &live {
            match client::show_exchange(&t.target, t.token.clone()).await {
                Ok(text) => eprintln!("{}: one exchange:\n{text}", t.plan.label),
                Err(err) => eprintln!("{}: exchange failed: {err:#}", t.plan.label),
            }
        }
    }

    let schedule = Schedule {
        rounds: args.rounds,
        concurrency: args.concurrency.clone(),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        request_timeout: Duration::from_secs_f64(common.request_timeout),
        payload_bytes: args.payload_bytes,
    };
    let rows = rounds::run(&mut live, &mut backend, signer.as_ref(), &schedule).await?;

    let minted: u64 = live.iter().map(|t| t.stock.minted).sum();
    let mint_seconds: f64 = live.iter().map(|t| t.stock.mint_seconds).sum();
    let meta = report::Meta {
        command: procstat::command_line(),
        started,
        machine: procstat::machine(),
        gateway: (!args.direct_only).then(|| gateway::describe_binary(&common.gateway)),
        gateway_log: common.gateway_log.clone(),
        scrubbed: gateway::scrubbed_env(),
        backend: backend_line(&backend),
        driver_threads: common.threads,
        targets: live.iter().map(describe_target).collect(),
        tokens: signer.as_ref().map(|_| token_line(minted, mint_seconds)),
    };
    println!();
    report::print_header(&meta, &schedule);
    Ok(report::print_rows(&rows, &schedule))
}

fn describe_target(t: &Live) -> String {
    let p = &t.plan;
    let pid = t.gateway.as_ref().map_or_else(String::new, |g| format!(", pid {}", g.pid()));
    let tokens = match p.token {
        TokenMode::None => String::new(),
        TokenMode::Repeated => format!(", tokens `{}` (one for every call)", p.token.name()),
        TokenMode::Fresh => format!(", tokens `{}` (a new one for every call)", p.token.name()),
    };
    match &p.template {
        None if p.relay => format!("`{}`: a byte relay to the backend{pid} (the floor of one hop)", p.label),
        None => format!("`{}`: the backend directly", p.label),
        Some(_) => format!("`{}`: gateway with `{}`{pid}{tokens}", p.label, p.source),
    }
}

fn token_line(minted: u64, seconds: f64) -> String {
    let fresh = if minted > 0 { format!("; {minted} fresh tokens minted before their windows, in {seconds:.1} s") } else { String::new() };
    format!(
        "RS256 with an RSA 2048 key made at start (public JWK in `{{JWT_JWKS_KEY}}`), iss `{}`, aud `{}`, sub `{}`, exp {} s after minting, unique `jti`{fresh}",
        tokens::ISSUER,
        tokens::AUDIENCE,
        tokens::SUBJECT,
        tokens::LIFETIME_S
    )
}

/// The memory mode. Returns whether anything failed.
async fn run_sessions(args: &SessionsArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    check_gateway(common)?;
    let started = SystemTime::now();
    let plan = match &args.gateway_config {
        Some(spec) => Plan::from_spec(spec)?,
        None => Plan::plain(),
    };
    let template = plan.template.as_deref().expect("a gateway plan");
    let signer = if plan.token != TokenMode::None || template.contains("{JWT_JWKS_KEY}") { Some(Signer::generate()?) } else { None };
    let spec = sessions::Spec {
        count: args.count,
        parallel: args.open_parallel.max(1),
        calls: args.calls,
        settle: Duration::from_secs_f64(args.settle),
        request_timeout: Duration::from_secs_f64(common.request_timeout),
        streams_over: args.streams_over,
    };
    let mut backend = BackendProc::spawn(common.backend_mode, common.backend_threads)?;
    let scratch = gateway::TempDir::new()?;
    let launch = gateway::Launch {
        binary: &common.gateway,
        dir: &scratch.0,
        log_level: &common.gateway_log,
        startup_timeout: Duration::from_secs_f64(common.startup_timeout),
    };
    let listen = gateway::free_port()?;
    let config = gateway::render(template, listen, &backend.url(), signer.as_ref().map(|s| s.jwk.as_str()));
    let (config, limits_note) = sessions::fit_limits(&config, &spec);
    let gw = gateway::start(&launch, &plan.label, &config, listen).await.context("starting the gateway")?;
    eprintln!("gateway pid {} on {}; backend pid {}", gw.pid(), gw.addr, backend.pid());
    let target = Target { addr: gw.addr, path: common.gateway_path.clone(), headers: target_headers(common)? };
    let tokens = match (&signer, plan.token) {
        (Some(signer), TokenMode::Repeated | TokenMode::Fresh) => {
            Some(sessions::Tokens { mode: plan.token, signer: signer.clone(), repeated: signer.bearer() })
        }
        _ => None,
    };

    let m = procstat::machine();
    println!();
    println!("## Tollgate sessions report");
    println!();
    println!("- date: {}", procstat::utc(started));
    println!("- command: `{}`", procstat::command_line());
    println!("- machine: {} CPUs (nproc), {}, Linux {}", m.cpus, m.model, m.kernel);
    println!("- gateway: {}, pid {}, log level `{}`", gateway::describe_binary(&common.gateway), gw.pid(), common.gateway_log);
    println!("- config: `{}` ({}){}", plan.source, plan.label, limits_note.map_or_else(String::new, |n| format!("; {n}")));
    println!("- backend: {}", backend_line(&backend));
    println!(
        "- driver: {} runtime threads; {} sessions opened {} at a time over shared POST connections; {}",
        common.threads,
        spec.count,
        spec.parallel,
        spec.streams_over.describe()
    );
    println!();
    let failed =
        sessions::run(&target, gw.pid(), &mut backend, &spec, tokens).await.map_err(|err| err.context(format!("gateway output:\n{}", gw.log_tail())))?;
    drop(gw);
    Ok(failed)
}
