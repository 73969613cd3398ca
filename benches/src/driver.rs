//! One measurement: C workers, each with its own HTTP/1.1 keep-alive connection and MCP
//! session, calling `echo` in a closed loop through a warm-up and then a measured window.
//! A thread of its own reads every process's CPU time at the window's two edges, so the CPU
//! figures cover exactly the calls counted, warm-up and session setup excluded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;

use crate::client::{CallError, ErrorCounts, ErrorKind, ErrorSamples, Session, Target};
use crate::procstat;
use crate::tokens::Fresh;

/// One measurement at one concurrency.
pub struct RunSpec {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub payload_bytes: usize,
}

/// The bearer token each call carries.
#[derive(Clone)]
pub enum Auth {
    None,
    /// The same token on every request.
    Repeated(HeaderValue),
    /// A new token for every call; sessions are opened with `session`.
    Fresh {
        session: HeaderValue,
        tokens: Arc<Fresh>,
    },
}

impl Auth {
    fn for_session(&self) -> Option<HeaderValue> {
        match self {
            Auth::None => None,
            Auth::Repeated(token) | Auth::Fresh { session: token, .. } => Some(token.clone()),
        }
    }
}

/// The processes whose CPU time is read at the window's edges.
#[derive(Clone, Copy)]
pub struct Pids {
    pub gateway: Option<u32>,
    pub backend: u32,
    pub driver: u32,
}

/// CPU time each process used inside the measured window.
#[derive(Clone, Copy, Default, Debug)]
pub struct WindowCpu {
    pub gateway: Option<Duration>,
    pub backend: Option<Duration>,
    pub driver: Option<Duration>,
}

/// What one measurement found.
pub struct Measurement {
    /// Latency of the successful calls that started and ended inside the window, in µs.
    pub hist: Histogram<u64>,
    /// Those calls.
    pub ok: u64,
    /// Failed calls during the whole measurement (session setup, warm-up and window).
    pub errors: ErrorCounts,
    pub error_samples: ErrorSamples,
    pub window: Duration,
    pub cpu: WindowCpu,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

struct WorkerOutcome {
    hist: Histogram<u64>,
    ok: u64,
    errors: ErrorCounts,
    samples: ErrorSamples,
}

impl WorkerOutcome {
    fn fail(&mut self, err: &CallError) {
        self.errors.add(err.kind);
        self.samples.note(err.to_string());
    }
}

/// Reads the CPU time of each process now.
fn cpu_now(pids: Pids) -> [Option<Duration>; 3] {
    [pids.gateway.and_then(procstat::cpu_time), procstat::cpu_time(pids.backend), procstat::cpu_time(pids.driver)]
}

/// Opens the sessions, warms up, then measures for `spec.duration`.
pub async fn measure(target: &Target, spec: &RunSpec, auth: &Auth, pids: Pids) -> anyhow::Result<Measurement> {
    // Every session is open before the clock starts. A failed open counts as an error and
    // is tried again; a session that does not open in three tries means the target is broken.
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency {
        let mut session = Session::new(target.clone());
        session.bearer = auth.for_session();
        let timeout = spec.request_timeout * 2;
        opening.spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..3 {
                let opened = match tokio::time::timeout(timeout, session.open()).await {
                    Ok(r) => r,
                    Err(_) => Err(CallError::new(ErrorKind::Timeout, "session open timed out")),
                };
                match opened {
                    Ok(()) => return (Some(session), failures),
                    Err(err) => {
                        session.reset();
                        failures.push(err);
                    }
                }
            }
            (None, failures)
        });
    }
    let mut sessions = Vec::with_capacity(spec.concurrency);
    let (mut open_errors, mut open_samples) = (ErrorCounts::default(), ErrorSamples::default());
    while let Some(joined) = opening.join_next().await {
        let (session, failures) = joined?;
        for err in &failures {
            open_errors.add(err.kind);
            open_samples.note(format!("opening a session: {err}"));
        }
        match session {
            Some(session) => sessions.push(session),
            None => return Err(anyhow!("opening an MCP session failed three times: {}", failures.last().map(|e| e.to_string()).unwrap_or_default())),
        }
    }

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    // Off the runtime, so a busy driver cannot delay the readings.
    let sampler = std::thread::spawn(move || {
        std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
        let before = cpu_now(pids);
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        let after = cpu_now(pids);
        let delta = |i: usize| match (before[i], after[i]) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        WindowCpu { gateway: delta(0), backend: delta(1), driver: delta(2) }
    });
    let padding = "x".repeat(spec.payload_bytes);

    let mut workers = tokio::task::JoinSet::new();
    for (w, mut session) in sessions.into_iter().enumerate() {
        let padding = padding.clone();
        let timeout = spec.request_timeout;
        let auth = auth.clone();
        workers.spawn(async move {
            let mut out = WorkerOutcome { hist: new_hist(), ok: 0, errors: ErrorCounts::default(), samples: ErrorSamples::default() };
            let mut id: u64 = 0;
            let mut text = String::with_capacity(padding.len() + 32);
            while Instant::now() < end {
                id += 1;
                text.clear();
                use std::fmt::Write;
                let _ = write!(text, "w{w}-{id}-{padding}");
                // The token is in hand before the clock starts: minting is not the gateway's.
                if let Auth::Fresh { tokens, .. } = &auth {
                    session.bearer = Some(tokens.take());
                }
                let t0 = Instant::now();
                let result = match tokio::time::timeout(timeout, session.echo(id, &text)).await {
                    Ok(r) => r,
                    Err(_) => {
                        session.reset();
                        Err(CallError::new(ErrorKind::Timeout, format!("no answer after {timeout:?}")))
                    }
                };
                let t1 = Instant::now();
                match result {
                    Ok(()) if t0 >= measure_from && t1 <= end => {
                        out.hist.saturating_record((t1 - t0).as_micros().max(1) as u64);
                        out.ok += 1;
                    }
                    // Warm-up, or straddling the end of the window.
                    Ok(()) => {}
                    Err(err) => {
                        out.fail(&err);
                        // A lost session (404, e.g. after the gateway dropped it) is reopened;
                        // a broken connection reconnects on its own.
                        if err.kind == ErrorKind::Http && err.message.starts_with("HTTP 404") {
                            session.bearer = auth.for_session();
                            if let Err(err) = session.open().await {
                                out.fail(&err);
                            }
                        }
                    }
                }
            }
            session.close().await;
            out
        });
    }

    let mut m = Measurement { hist: new_hist(), ok: 0, errors: open_errors, error_samples: open_samples, window: spec.duration, cpu: WindowCpu::default() };
    while let Some(joined) = workers.join_next().await {
        let out = joined?;
        m.hist.add(&out.hist)?;
        m.ok += out.ok;
        m.errors.merge(&out.errors);
        for s in out.samples.0 {
            m.error_samples.note(s);
        }
    }
    m.cpu = tokio::task::spawn_blocking(move || sampler.join()).await?.map_err(|_| anyhow!("the CPU sampler panicked"))?;
    Ok(m)
}
