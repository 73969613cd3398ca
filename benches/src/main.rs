//! `loadgen`: measures what the gateway adds to an MCP `tools/call`.
//!
//! It starts an in-process MCP backend with one `echo` tool, drives it
//! directly, then drives it through the real gateway binary, and prints a
//! markdown table of throughput and latency for each.

mod backend;
mod driver;
mod gateway;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use backend::BackendMode;
use driver::{RunResult, RunSpec, Target};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load harness: an MCP echo backend, driven directly and through the gateway")]
struct Args {
    /// The gateway binary, started as `PATH serve --config FILE`.
    #[arg(long, default_value = "target/release/tollgate")]
    gateway: PathBuf,

    /// Concurrency levels (workers, each with its own connection and session).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,

    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Warm-up seconds per run, before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// Only drive the backend directly; do not start the gateway.
    #[arg(long)]
    direct_only: bool,

    /// Extra gateway run from a config template, as `LABEL=FILE` (or `FILE`,
    /// labelled by its file stem). `{LISTEN}` and `{BACKEND_URL}` in the file
    /// are filled in; it must route a server named so that `--gateway-path`
    /// reaches it. Repeatable.
    #[arg(long = "gateway-config", value_name = "[LABEL=]TEMPLATE")]
    gateway_configs: Vec<String>,

    /// Skip the run with the built-in minimal gateway config (for use with
    /// `--gateway-config`).
    #[arg(long)]
    no_plain_gateway: bool,

    /// A header sent on every request to a gateway, as `NAME: VALUE` (for example
    /// `authorization: Bearer …` for a chain with `jwt`). Repeatable.
    #[arg(long = "gateway-header", value_name = "NAME: VALUE")]
    gateway_headers: Vec<String>,

    /// The MCP endpoint path on the gateway.
    #[arg(long, default_value = "/echo/mcp")]
    gateway_path: String,

    /// How the backend speaks Streamable HTTP.
    #[arg(long, value_enum, default_value_t = BackendMode::Stateful)]
    backend_mode: BackendMode,

    /// Extra bytes of padding in each echoed text.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,

    /// A request slower than this counts as an error (its connection is dropped).
    #[arg(long, default_value_t = 5.0)]
    request_timeout: f64,

    /// Seconds to wait for the gateway to become ready.
    #[arg(long, default_value_t = 15.0)]
    startup_timeout: f64,

    /// Before measuring each target, print one raw initialize + tools/call
    /// exchange with it (to stderr).
    #[arg(long)]
    show_exchange: bool,

    /// Worker threads of the loadgen runtime (driver and backend share it).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// One target to drive: the backend itself, or a gateway with a config.
struct RunPlan {
    label: String,
    /// `None` for the direct run; otherwise the config template text.
    template: Option<String>,
}

/// What one (target, concurrency) run produced.
struct Row {
    label: String,
    concurrency: usize,
    result: RunResult,
    /// CPU time of the gateway process during the run (warm-up included).
    gateway_cpu: Option<Duration>,
    /// CPU time of this process (driver + backend) during the run.
    loadgen_cpu: Option<Duration>,
    /// Wall time of the run, warm-up included.
    wall: Duration,
    /// TCP connections the backend accepted during the run.
    backend_connections: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs one or more levels above 0");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build()?;
    runtime.block_on(async {
        tokio::select! {
            result = run(&args) => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })
}

fn plans(args: &Args) -> anyhow::Result<Vec<RunPlan>> {
    let mut plans = vec![RunPlan { label: "direct".into(), template: None }];
    if args.direct_only {
        return Ok(plans);
    }
    if !args.no_plain_gateway {
        plans.push(RunPlan { label: "gateway".into(), template: Some(gateway::DEFAULT_TEMPLATE.into()) });
    }
    for spec in &args.gateway_configs {
        let (label, file) = match spec.split_once('=') {
            Some((label, file)) => (label.to_string(), PathBuf::from(file)),
            None => {
                let file = PathBuf::from(spec);
                let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| spec.clone());
                (stem, file)
            }
        };
        let template = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        if !template.contains("{BACKEND_URL}") || !template.contains("{LISTEN}") {
            eprintln!("warning: {} lacks {{LISTEN}} or {{BACKEND_URL}}", file.display());
        }
        if plans.iter().any(|p| p.label == label) {
            bail!("two runs are labelled {label:?}");
        }
        plans.push(RunPlan { label, template: Some(template) });
    }
    if plans.len() == 1 {
        bail!("nothing to compare: give --direct-only, or leave a gateway run in");
    }
    Ok(plans)
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let plans = plans(args)?;
    if !args.direct_only && !args.gateway.exists() {
        bail!(
            "no gateway binary at {} (build it with `cargo build --release -p tollgate`, \
             pass --gateway PATH, or use --direct-only)",
            args.gateway.display()
        );
    }
    let spec_for = |concurrency| RunSpec {
        concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        request_timeout: Duration::from_secs_f64(args.request_timeout),
        payload_bytes: args.payload_bytes,
    };

    let backend = backend::start(args.backend_mode).await?;
    let backend_url = backend.url();
    eprintln!("backend: {backend_url} ({})", args.backend_mode.describe());
    let scratch = gateway::TempDir::new()?;

    // Start each gateway config once before measuring anything, so a bad
    // config fails in a second rather than after the direct runs.
    for plan in &plans {
        if let Some(template) = &plan.template {
            let listen = gateway::free_port()?;
            let config = gateway::render(template, listen, &backend_url);
            gateway::start(&args.gateway, &scratch.0, &format!("{}-preflight", plan.label), &config, listen, Duration::from_secs_f64(args.startup_timeout))
                .await
                .with_context(|| format!("starting the gateway for {:?}", plan.label))?;
        }
    }

    let gateway_headers: Vec<(String, String)> = args
        .gateway_headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            None => Err(anyhow::anyhow!("--gateway-header wants NAME: VALUE, got {h:?}")),
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rows = Vec::new();
    for plan in &plans {
        let (target, gw) = match &plan.template {
            None => (Target { addr: backend.addr, path: "/mcp".into(), headers: Vec::new() }, None),
            Some(template) => {
                let listen = gateway::free_port()?;
                let config = gateway::render(template, listen, &backend_url);
                let gw = gateway::start(&args.gateway, &scratch.0, &plan.label, &config, listen, Duration::from_secs_f64(args.startup_timeout))
                    .await
                    .with_context(|| format!("starting the gateway for {:?}", plan.label))?;
                eprintln!("{}: gateway pid {} on {}", plan.label, gw.pid(), gw.addr);
                (Target { addr: gw.addr, path: args.gateway_path.clone(), headers: gateway_headers.clone() }, Some(gw))
            }
        };
        if args.show_exchange {
            match driver::show_exchange(&target).await {
                Ok(text) => eprintln!("{}: one exchange:\n{text}", plan.label),
                Err(err) => eprintln!("{}: exchange failed: {err:#}", plan.label),
            }
        }
        for &concurrency in &args.concurrency {
            eprintln!("{}: concurrency {concurrency}, {}s warm-up + {}s ...", plan.label, args.warmup, args.duration);
            let gw_pid = gw.as_ref().map(|g| g.pid());
            let gw_cpu0 = gw_pid.and_then(|pid| gateway::cpu_time(Some(pid)));
            let own_cpu0 = gateway::cpu_time(None);
            let conns0 = backend.connections.load(Ordering::Relaxed);
            let started = std::time::Instant::now();
            let result = driver::run(&target, &spec_for(concurrency)).await.map_err(|err| match &gw {
                Some(gw) => err.context(format!("{} run; gateway output:\n{}", plan.label, gw.log_tail())),
                None => err.context(format!("{} run", plan.label)),
            })?;
            let wall = started.elapsed();
            let backend_connections = backend.connections.load(Ordering::Relaxed) - conns0;
            let gateway_cpu = match (gw_cpu0, gw_pid.and_then(|p| gateway::cpu_time(Some(p)))) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            let loadgen_cpu = match (own_cpu0, gateway::cpu_time(None)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            eprintln!(
                "  {:.0} req/s, p50 {} us, p99 {} us, {} errors, {} backend connections opened",
                result.rps(),
                result.hist.value_at_quantile(0.50),
                result.hist.value_at_quantile(0.99),
                result.errors,
                backend_connections
            );
            for sample in &result.error_samples {
                eprintln!("  error: {sample}");
            }
            rows.push(Row { label: plan.label.clone(), concurrency, result, gateway_cpu, loadgen_cpu, wall, backend_connections });
        }
        drop(gw);
    }
    drop(backend);

    print_report(args, &rows);
    Ok(())
}

fn print_report(args: &Args, rows: &[Row]) {
    println!();
    println!(
        "Load: `tools/call echo`, {}s measured after {}s warm-up per row; backend: rmcp, {}; \
         {} loadgen threads, {} CPUs.",
        args.duration,
        args.warmup,
        args.backend_mode.describe(),
        args.threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if !args.direct_only {
        println!("Gateway: `{}`.", display_path(&args.gateway));
    }
    println!();
    println!("| target | concurrency | requests/s | p50 us | p99 us | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let h = &row.result.hist;
        println!(
            "| {} | {} | {:.0} | {} | {} | {} |",
            row.label,
            row.concurrency,
            row.result.rps(),
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            row.result.errors
        );
    }

    let gateway_rows: Vec<&Row> = rows.iter().filter(|r| r.label != "direct").collect();
    if gateway_rows.is_empty() {
        println!();
        print_cpu_note(rows);
        return;
    }
    println!();
    println!("Added by the gateway, against `direct` at the same concurrency:");
    println!();
    println!("| target | concurrency | added p50 us | added p99 us | throughput vs direct | gateway CPU us/req |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in gateway_rows {
        let Some(direct) = rows.iter().find(|d| d.label == "direct" && d.concurrency == row.concurrency) else {
            continue;
        };
        let (g, d) = (&row.result.hist, &direct.result.hist);
        let added = |q: f64| g.value_at_quantile(q) as i64 - d.value_at_quantile(q) as i64;
        let ratio = if direct.result.rps() > 0.0 { format!("{:.1}%", 100.0 * row.result.rps() / direct.result.rps()) } else { "n/a".into() };
        println!("| {} | {} | {:+} | {:+} | {} | {} |", row.label, row.concurrency, added(0.50), added(0.99), ratio, cpu_per_request(row.gateway_cpu, row),);
    }
    println!();
    print_cpu_note(rows);
}

/// CPU per request over the whole run (warm-up included), from /proc.
fn cpu_per_request(cpu: Option<Duration>, row: &Row) -> String {
    let Some(cpu) = cpu else {
        return "n/a".into();
    };
    // Requests over the whole run, estimated from the measured rate.
    let requests = row.result.rps() * row.wall.as_secs_f64();
    if requests < 1.0 {
        return "n/a".into();
    }
    format!("{:.0}", cpu.as_secs_f64() * 1e6 / requests)
}

fn print_cpu_note(rows: &[Row]) {
    let parts: Vec<String> = rows.iter().map(|r| format!("{} c{}: {}", r.label, r.concurrency, cpu_per_request(r.loadgen_cpu, r))).collect();
    println!("Loadgen CPU us/req (driver + backend, one process): {}.", parts.join("; "));
    let conns: Vec<String> = rows.iter().map(|r| format!("{} c{}: {}", r.label, r.concurrency, r.backend_connections)).collect();
    println!("TCP connections the backend accepted (warm-up included): {}.", conns.join("; "));
}

fn display_path(path: &Path) -> String {
    path.display().to_string()
}
