//! A run: every target measured at every concurrency, round after round. The backend and one
//! gateway per target are started once and stay up for the whole run, so rounds alternate
//! between targets without restarts, and the rows of one round (measured within a minute or
//! two of each other) can be compared pairwise: a slow spell of the machine then moves both
//! sides of a ratio instead of one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::header::HeaderValue;

use crate::backend::BackendProc;
use crate::client::{ErrorCounts, ErrorSamples, Target};
use crate::driver::{self, Auth, Pids, RunSpec, WindowCpu};
use crate::gateway::Gateway;
use crate::tokens::{Signer, Stock, TokenMode};

/// One target as declared on the command line.
pub struct Plan {
    pub label: String,
    /// The config template; `None` for the backend itself.
    pub template: Option<String>,
    /// Where the template came from (`built-in`, or a file).
    pub source: String,
    pub token: TokenMode,
    /// The built-in minimal config: the baseline policy rows are compared with.
    pub plain: bool,
    /// A byte relay in front of the backend (`relay.rs`): the floor of one hop.
    pub relay: bool,
}

impl Plan {
    pub fn direct() -> Plan {
        Plan { label: "direct".into(), template: None, source: "backend".into(), token: TokenMode::None, plain: false, relay: false }
    }

    pub fn relay() -> Plan {
        Plan { label: "relay".into(), template: None, source: "relay".into(), token: TokenMode::None, plain: false, relay: true }
    }

    /// The backend itself, driven with nothing in between.
    pub fn is_direct(&self) -> bool {
        self.template.is_none() && !self.relay
    }

    pub fn plain() -> Plan {
        Plan {
            label: "gateway".into(),
            template: Some(crate::gateway::DEFAULT_TEMPLATE.into()),
            source: "built-in".into(),
            token: TokenMode::None,
            plain: true,
            relay: false,
        }
    }

    /// `[LABEL=]FILE[:MODE]`, MODE one of `repeated`, `fresh`, `none`. Without a label the
    /// file stem is the label; without a mode a template with `{JWT_JWKS_KEY}` gets
    /// `repeated` and any other `none`.
    pub fn from_spec(spec: &str) -> anyhow::Result<Plan> {
        let (label, rest) = match spec.split_once('=') {
            Some((label, rest)) => (Some(label.to_string()), rest),
            None => (None, spec),
        };
        let (file, mode) = match rest.rsplit_once(':').and_then(|(f, m)| TokenMode::parse(m).map(|m| (f, Some(m)))) {
            Some((file, mode)) => (PathBuf::from(file), mode),
            None => (PathBuf::from(rest), None),
        };
        let label = label.unwrap_or_else(|| file.file_stem().map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned()));
        if label.is_empty() {
            bail!("--gateway-config {spec:?}: empty label");
        }
        let template = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        if !template.contains("{BACKEND_URL}") || !template.contains("{LISTEN}") {
            eprintln!("warning: {} lacks {{LISTEN}} or {{BACKEND_URL}}", file.display());
        }
        let has_key = template.contains("{JWT_JWKS_KEY}");
        let token = mode.unwrap_or(if has_key { TokenMode::Repeated } else { TokenMode::None });
        if token != TokenMode::None && !has_key {
            eprintln!("warning: {label}: tokens are sent, but {} has no {{JWT_JWKS_KEY}} for their key", file.display());
        }
        Ok(Plan { label, template: Some(template), source: file.display().to_string(), token, plain: false, relay: false })
    }
}

/// A target with its process up.
pub struct Live {
    pub plan: Plan,
    pub target: Target,
    pub gateway: Option<Gateway>,
    /// The row's repeated token (also what fresh-token rows open their sessions with).
    pub token: Option<HeaderValue>,
    pub stock: Stock,
}

/// One measurement's figures, as the report uses them.
pub struct Sample {
    pub rps: f64,
    pub p50: u64,
    pub p99: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_samples: ErrorSamples,
    pub cpu: WindowCpu,
    /// TCP connections the backend accepted during the measurement (setup and warm-up included).
    pub backend_accepted: u64,
    /// Fresh tokens minted during the measurement because the stock ran out.
    pub late_tokens: u64,
}

impl Sample {
    /// CPU µs per successful call in the window.
    pub fn per_request(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.ok > 0).then(|| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }
}

/// Every round's sample of one target at one concurrency.
pub struct Row {
    pub label: String,
    pub direct: bool,
    pub plain: bool,
    pub concurrency: usize,
    pub samples: Vec<Sample>,
}

/// The run's shape.
pub struct Schedule {
    pub rounds: usize,
    pub concurrency: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub payload_bytes: usize,
}

/// Fresh tokens to have in stock before a measurement: what the row could send at `rps`
/// through warm-up and window, with a margin (what is left over is kept for next time).
fn tokens_needed(rps: f64, schedule: &Schedule, concurrency: usize) -> usize {
    let seconds = (schedule.warmup + schedule.duration).as_secs_f64();
    (rps * seconds * 1.3).ceil() as usize + 8 * concurrency + 64
}

/// Measures every target at every concurrency, `schedule.rounds` times. Rows come back in
/// target order, then concurrency order.
pub async fn run(live: &mut [Live], backend: &mut BackendProc, signer: Option<&Arc<Signer>>, schedule: &Schedule) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for t in live.iter() {
        for &concurrency in &schedule.concurrency {
            let p = &t.plan;
            rows.push(Row { label: p.label.clone(), direct: p.is_direct(), plain: p.plain, concurrency, samples: Vec::new() });
        }
    }
    let levels = schedule.concurrency.len();
    let driver_pid = std::process::id();
    for round in 1..=schedule.rounds {
        for (ci, &concurrency) in schedule.concurrency.iter().enumerate() {
            for ti in 0..live.len() {
                let spec = RunSpec {
                    concurrency,
                    warmup: schedule.warmup,
                    duration: schedule.duration,
                    request_timeout: schedule.request_timeout,
                    payload_bytes: schedule.payload_bytes,
                };
                let auth = match (live[ti].plan.token, signer) {
                    (TokenMode::None, _) | (_, None) => Auth::None,
                    (TokenMode::Repeated, Some(_)) => Auth::Repeated(live[ti].token.clone().expect("a repeated token")),
                    (TokenMode::Fresh, Some(signer)) => {
                        let rps = estimate_rps(&rows, live, ti, ci, levels, round);
                        live[ti].stock.top_up(signer, tokens_needed(rps, schedule, concurrency)).await?;
                        Auth::Fresh { session: live[ti].token.clone().expect("a session token"), tokens: live[ti].stock.issue(signer) }
                    }
                };
                let t = &mut live[ti];
                eprintln!(
                    "round {round}/{}, concurrency {concurrency}, {}: {:?} warm-up + {:?} ...",
                    schedule.rounds, t.plan.label, schedule.warmup, schedule.duration
                );
                let pids = Pids { gateway: t.gateway.as_ref().map(Gateway::pid), backend: backend.pid(), driver: driver_pid };
                let accepted0 = backend.stats()?.accepted;
                let measured = driver::measure(&t.target, &spec, &auth, pids).await;
                let late_tokens = match auth {
                    Auth::Fresh { tokens, .. } => t.stock.restock(tokens),
                    _ => 0,
                };
                let m = match measured {
                    Ok(m) => m,
                    Err(err) => return Err(with_gateway_log(err, t)),
                };
                if let Some(gw) = t.gateway.as_mut()
                    && let Some(status) = gw.exited()
                {
                    bail!("{}: the gateway exited ({status}); its output:\n{}", t.plan.label, gw.log_tail());
                }
                let backend_accepted = backend.stats()?.accepted - accepted0;
                let sample = Sample {
                    rps: m.ok as f64 / m.window.as_secs_f64(),
                    p50: m.hist.value_at_quantile(0.50),
                    p99: m.hist.value_at_quantile(0.99),
                    ok: m.ok,
                    errors: m.errors,
                    error_samples: m.error_samples,
                    cpu: m.cpu,
                    backend_accepted,
                    late_tokens,
                };
                let fmt = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
                eprintln!(
                    "  {:.0} req/s, p50 {} µs, p99 {} µs, CPU µs/req gateway {} backend {} driver {}, {} backend connections, {} errors{}",
                    sample.rps,
                    sample.p50,
                    sample.p99,
                    fmt(sample.per_request(sample.cpu.gateway)),
                    fmt(sample.per_request(sample.cpu.backend)),
                    fmt(sample.per_request(sample.cpu.driver)),
                    sample.backend_accepted,
                    sample.errors.total(),
                    if late_tokens > 0 { format!(", {late_tokens} tokens minted late") } else { String::new() }
                );
                for message in &sample.error_samples.0 {
                    eprintln!("  error: {message}");
                }
                rows[ti * levels + ci].samples.push(sample);
            }
        }
    }
    Ok(rows)
}

/// How fast a fresh-token row may go, to mint enough tokens for it: the faster of its own
/// best so far and this round's row of the same config with a repeated token (which does
/// less work, so goes at least as fast); failing both, this round's plain gateway, else the
/// backend's rate.
fn estimate_rps(rows: &[Row], live: &[Live], ti: usize, ci: usize, levels: usize, round: usize) -> f64 {
    let this_round = |i: usize| rows[i * levels + ci].samples.get(round - 1).map(|s| s.rps);
    let own_best = rows[ti * levels + ci].samples.iter().map(|s| s.rps).reduce(f64::max);
    let same_config =
        (0..live.len()).find(|&i| i != ti && live[i].plan.source == live[ti].plan.source && live[i].plan.token == TokenMode::Repeated).and_then(this_round);
    if let Some(rps) = [own_best, same_config].into_iter().flatten().reduce(f64::max) {
        return rps.max(1.0);
    }
    let plain = (0..live.len()).find(|&i| live[i].plan.plain);
    let direct = (0..live.len()).find(|&i| live[i].plan.is_direct());
    [plain, direct].into_iter().flatten().find_map(this_round).filter(|&r| r > 0.0).unwrap_or(2000.0)
}

fn with_gateway_log(err: anyhow::Error, t: &mut Live) -> anyhow::Error {
    match t.gateway.as_mut() {
        Some(gw) => {
            let state = gw.exited().map_or_else(|| "still running".to_string(), |s| format!("exited, {s}"));
            err.context(format!("{} (gateway {state}); its output:\n{}", t.plan.label, gw.log_tail()))
        }
        None => err.context(format!("{} (the backend directly)", t.plan.label)),
    }
}
