//! The memory mode, `loadgen sessions`: opens N MCP sessions through one gateway, each with an
//! open GET stream, then reads the gateway's resident memory, the backend's connections and
//! whether the sessions still answer. It checks the aim "10,000 concurrent sessions, each
//! with an open GET stream, in at most 200 MB of gateway RSS, with no errors".
//!
//! Over HTTP/1.1 (the default) each GET stream needs a connection of its own; with
//! `--streams-over http2` they share HTTP/2 connections, [`STREAMS_PER_H2`] to each. The POSTs
//! that open sessions share a few keep-alive connections, closed once every session is open.
//! So the driver holds up to N + `--open-parallel` sockets, which must fit under its
//! open-files limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::backend::BackendProc;
use crate::client::{CallError, ErrorCounts, ErrorKind, ErrorSamples, PROTOCOL_HEADER, SESSION_HEADER, Session, Target};
use crate::procstat;
use crate::tokens::{Signer, TokenMode};

/// The gateway's defaults for `limits.max_connections` and `sessions.max_sessions`.
const GATEWAY_DEFAULT_LIMIT: usize = 10_000;

pub struct Spec {
    pub count: usize,
    pub parallel: usize,
    pub calls: usize,
    pub settle: Duration,
    pub request_timeout: Duration,
    pub streams_over: StreamsOver,
}

/// How the GET streams reach the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamsOver {
    /// A connection of its own for each stream.
    Http1,
    /// HTTP/2 without TLS (prior knowledge), [`STREAMS_PER_H2`] streams to a connection.
    Http2,
}

impl StreamsOver {
    pub fn describe(self) -> String {
        match self {
            StreamsOver::Http1 => "one HTTP/1.1 connection per GET stream".into(),
            StreamsOver::Http2 => format!("GET streams over HTTP/2, {STREAMS_PER_H2} to a connection"),
        }
    }
}

/// Streams to one HTTP/2 connection: under the 200 concurrent streams hyper's server allows.
pub const STREAMS_PER_H2: usize = 100;

/// An opener's HTTP/2 connection and the streams it carries so far.
type H2 = Option<(hyper::client::conn::http2::SendRequest<Empty<Bytes>>, usize)>;

/// Bearer tokens for the sessions mode, if the config checks them.
#[derive(Clone)]
pub struct Tokens {
    pub mode: TokenMode,
    pub signer: Arc<Signer>,
    pub repeated: HeaderValue,
}

impl Tokens {
    fn next(tokens: &Option<Tokens>) -> Option<HeaderValue> {
        let t = tokens.as_ref()?;
        Some(if t.mode == TokenMode::Fresh { t.signer.bearer() } else { t.repeated.clone() })
    }
}

/// Raises the gateway's connection and session caps when N sessions and their streams would
/// not fit the defaults, unless the template sets its own. Returns the config and a note.
pub fn fit_limits(config: &str, spec: &Spec) -> (String, Option<String>) {
    let needed = spec.count + spec.parallel + 16;
    if needed <= GATEWAY_DEFAULT_LIMIT {
        return (config.to_string(), None);
    }
    if config.lines().any(|l| l.starts_with("limits:") || l.starts_with("sessions:")) {
        return (config.to_string(), Some(format!("the config sets its own limits; {needed} connections and sessions are needed")));
    }
    let cap = needed.div_ceil(1000) * 1000;
    let config = format!("{}\nlimits:\n  max_connections: {cap}\nsessions:\n  max_sessions: {cap}\n", config.trim_end());
    (config, Some(format!("`limits.max_connections` and `sessions.max_sessions` raised from {GATEWAY_DEFAULT_LIMIT} to {cap}")))
}

/// Opens a GET stream for a session on a connection of its own; once its 200 arrives, a task
/// reads it until it ends and counts it closed then.
/// With `h2`, on the opener's HTTP/2 connection (a new one once it carries [`STREAMS_PER_H2`]).
async fn open_stream(target: &Target, session: &Session, bearer: Option<HeaderValue>, open: Arc<AtomicU64>, h2: Option<&mut H2>) -> Result<(), CallError> {
    let conn_err = |e: &dyn std::fmt::Display| CallError::new(ErrorKind::Connection, format!("GET stream: {e}"));
    let connect = async {
        let tcp = TcpStream::connect(target.addr).await.map_err(|e| conn_err(&e))?;
        tcp.set_nodelay(true).map_err(|e| conn_err(&e))?;
        Ok::<_, CallError>(TokioIo::new(tcp))
    };
    // HTTP/2 names the host in `:authority`, from the URI.
    let uri = match h2 {
        Some(_) => format!("http://{}{}", target.addr, target.path),
        None => target.path.clone(),
    };
    let mut req = Request::get(uri).header(ACCEPT, "text/event-stream");
    if h2.is_none() {
        req = req.header(HOST, target.addr.to_string());
    }
    if let Some(id) = session.session_id() {
        req = req.header(SESSION_HEADER, id.clone());
    }
    if let Some(version) = session.protocol() {
        req = req.header(PROTOCOL_HEADER, version.clone());
    }
    if let Some(bearer) = bearer {
        req = req.header(AUTHORIZATION, bearer);
    }
    for (name, value) in &target.headers {
        req = req.header(name, value);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| CallError::new(ErrorKind::Wrong, e.to_string()))?;
    // What keeps the connection open while the stream is read.
    let (resp, held): (_, Box<dyn Send>) = match h2 {
        None => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(connect.await?).await.map_err(|e| conn_err(&e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            (sender.send_request(req).await.map_err(|e| conn_err(&e))?, Box::new(sender))
        }
        Some(slot) => {
            if slot.as_ref().is_none_or(|(_, n)| *n >= STREAMS_PER_H2) {
                let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), connect.await?).await.map_err(|e| conn_err(&e))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                *slot = Some((sender, 0));
            }
            let (sender, n) = slot.as_mut().expect("set above");
            *n += 1;
            (sender.send_request(req).await.map_err(|e| conn_err(&e))?, Box::new(sender.clone()))
        }
    };
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(CallError::new(ErrorKind::Http, format!("GET stream: HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]))));
    }
    open.fetch_add(1, Ordering::Relaxed);
    let mut body = resp.into_body();
    tokio::spawn(async move {
        // Keep-alive comments and any server-initiated message: read and dropped.
        while let Some(Ok(_)) = body.frame().await {}
        open.fetch_sub(1, Ordering::Relaxed);
        drop(held);
    });
    Ok(())
}

/// A small xorshift, enough to pick sessions at random without a dependency.
fn pick(seed: &mut u64, n: usize) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % n as u64) as usize
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Opens the sessions and streams, measures, probes, and prints the report. Returns whether
/// anything failed.
pub async fn run(target: &Target, gateway_pid: u32, backend: &mut BackendProc, spec: &Spec, tokens: Option<Tokens>) -> anyhow::Result<bool> {
    // The driver's sockets: one per stream, the openers' POST connections, and some slack.
    let needed_fds = (spec.count + spec.parallel + 64) as u64;
    let limit = procstat::nofile_soft_limit().unwrap_or(1024);
    if needed_fds > limit {
        bail!("{} sessions need about {needed_fds} open files in the driver; its limit is {limit} (lower --count, or raise `ulimit -n`)", spec.count);
    }
    let rss_before = procstat::rss_kib(gateway_pid);
    let backend_before = backend.stats()?;
    eprintln!("gateway RSS before: {}; opening {} sessions, {} at a time ...", mib(rss_before), spec.count, spec.parallel);

    let next = Arc::new(AtomicUsize::new(0));
    let streams_open = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut openers = tokio::task::JoinSet::new();
    for _ in 0..spec.parallel.max(1) {
        let (target, next, streams_open, tokens) = (target.clone(), next.clone(), streams_open.clone(), tokens.clone());
        let (count, timeout, streams_over) = (spec.count, spec.request_timeout, spec.streams_over);
        openers.spawn(async move {
            let mut opened = Vec::new();
            let (mut errors, mut samples) = (ErrorCounts::default(), ErrorSamples::default());
            let mut fail = |err: CallError| {
                errors.add(err.kind);
                samples.note(err.to_string());
            };
            // One keep-alive connection for this opener's POSTs, closed when it is done.
            let mut session = Session::new(target.clone());
            let mut h2: H2 = None;
            let over_h2 = streams_over == StreamsOver::Http2;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if i > 0 && i % 1000 == 0 {
                    eprintln!("  {i} sessions ...");
                }
                session.bearer = Tokens::next(&tokens);
                match tokio::time::timeout(timeout, session.open()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        session.reset();
                        fail(err);
                        continue;
                    }
                    Err(_) => {
                        session.reset();
                        fail(CallError::new(ErrorKind::Timeout, "session open timed out"));
                        continue;
                    }
                }
                match tokio::time::timeout(timeout, open_stream(&target, &session, Tokens::next(&tokens), streams_open.clone(), over_h2.then_some(&mut h2)))
                    .await
                {
                    Ok(Ok(())) => opened.push((session.session_id().cloned(), session.protocol().cloned())),
                    Ok(Err(err)) => fail(err),
                    Err(_) => fail(CallError::new(ErrorKind::Timeout, "GET stream: no response headers in time")),
                }
            }
            (opened, errors, samples)
        });
    }
    let mut sessions = Vec::with_capacity(spec.count);
    let (mut open_errors, mut samples) = (ErrorCounts::default(), ErrorSamples::default());
    while let Some(joined) = openers.join_next().await {
        let (opened, errors, s) = joined?;
        sessions.extend(opened);
        open_errors.merge(&errors);
        s.0.into_iter().for_each(|m| samples.note(m));
    }
    let open_time = started.elapsed();
    let streams_opened = sessions.len();
    eprintln!("{} sessions with a stream in {open_time:.1?}; settling {:?} ...", streams_opened, spec.settle);
    tokio::time::sleep(spec.settle).await;

    let rss_after = procstat::rss_kib(gateway_pid);
    let gateway_fds = procstat::fd_count(gateway_pid);
    let backend_after = backend.stats()?;
    let still_open = streams_open.load(Ordering::Relaxed);
    let (backend_rss, driver_rss) = (procstat::rss_kib(backend.pid()), procstat::rss_kib(std::process::id()));

    // Do the sessions still work? A few calls on sessions picked at random.
    let mut call_errors = ErrorCounts::default();
    let mut calls_ok = 0;
    if !sessions.is_empty() {
        let mut seed = 0x9E37_79B9_7F4A_7C15 ^ started.elapsed().as_nanos() as u64;
        let mut probe = Session::new(target.clone());
        for n in 0..spec.calls {
            let (id, protocol) = sessions[pick(&mut seed, sessions.len())].clone();
            probe.adopt(id, protocol);
            probe.bearer = Tokens::next(&tokens);
            let result = match tokio::time::timeout(spec.request_timeout, probe.echo(n as u64 + 1, &format!("probe-{n}"))).await {
                Ok(r) => r,
                Err(_) => {
                    probe.reset();
                    Err(CallError::new(ErrorKind::Timeout, "tools/call timed out"))
                }
            };
            match result {
                Ok(()) => calls_ok += 1,
                Err(err) => {
                    call_errors.add(err.kind);
                    samples.note(format!("tools/call: {err}"));
                }
            }
        }
    }
    let still_open_after_calls = streams_open.load(Ordering::Relaxed);
    let streams_lost = (streams_opened as u64).saturating_sub(still_open_after_calls);

    let per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) if streams_opened > 0 => format!("{:.1} KiB", a.saturating_sub(b) as f64 / streams_opened as f64),
        _ => "–".into(),
    };
    let errors = open_errors.total() + call_errors.total() + streams_lost;
    let cell = |c: &ErrorCounts| if c.total() == 0 { "0".to_string() } else { format!("⚠ {} ({})", c.total(), c.describe()) };
    println!("| figure | value |");
    println!("| --- | ---: |");
    println!("| sessions asked for | {} |", spec.count);
    println!("| sessions opened, each with its GET stream answered 200 | {streams_opened} |");
    println!("| time to open them ({} at a time) | {open_time:.1?} |", spec.parallel);
    println!("| streams still open after the settle | {still_open} |");
    println!("| streams still open after the calls | {still_open_after_calls} |");
    println!("| errors opening sessions and streams | {} |", cell(&open_errors));
    println!("| tools/call on random sessions: ok / asked | {calls_ok} / {} |", spec.calls);
    println!("| errors in those calls | {} |", cell(&call_errors));
    println!("| gateway RSS before → after | {} → {} |", mib(rss_before), mib(rss_after));
    println!("| gateway RSS per session (after − before) / sessions | {per_session} |");
    println!("| gateway open files | {} |", gateway_fds.map_or_else(|| "–".into(), |n| n.to_string()));
    println!("| backend TCP connections accepted during the run | {} |", backend_after.accepted - backend_before.accepted);
    println!("| backend TCP connections open (before → after) | {} → {} |", backend_before.open, backend_after.open);
    println!("| backend RSS / driver RSS | {} / {} |", mib(backend_rss), mib(driver_rss));
    if !samples.0.is_empty() || streams_lost > 0 {
        println!();
        if streams_lost > 0 {
            println!("- ⚠ {streams_lost} streams ended before the end of the run");
        }
        for message in &samples.0 {
            println!("- error: {message}");
        }
    }
    Ok(errors > 0 || streams_opened < spec.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: usize) -> Spec {
        Spec { count, parallel: 32, calls: 0, settle: Duration::ZERO, request_timeout: Duration::ZERO, streams_over: StreamsOver::Http1 }
    }

    #[test]
    fn raises_limits_only_when_needed() {
        assert_eq!(fit_limits("listen: x\n", &spec(2000)).0, "listen: x\n");
        let (config, note) = fit_limits("listen: x\n", &spec(10_000));
        assert!(config.ends_with("limits:\n  max_connections: 11000\nsessions:\n  max_sessions: 11000\n"));
        assert!(note.is_some());
    }
}
