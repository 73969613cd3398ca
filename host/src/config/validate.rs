//! Checks that need more than the types: one backend per server, unique names, usable URLs.

use std::collections::HashMap;

use super::{Config, Locator, Problem, Secret};

pub(super) fn check(config: &Config, locator: &Locator) -> Vec<Problem> {
    let mut out = Problems { locator, list: Vec::new() };
    if config.servers.is_empty() {
        out.push("servers", "at least one server is required");
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, server) in config.servers.iter().enumerate() {
        let at = format!("servers[{i}]");
        if let Some(first) = seen.insert(server.name.as_str(), i) {
            out.push(&format!("{at}.name"), &format!("server name '{}' is already used by servers[{first}]", server.name));
        }
        check_server(&mut out, config, &at, server);
    }
    for (i, origin) in config.security.allowed_origins.iter().enumerate() {
        if origin != "*" && url::Url::parse(origin).is_err() {
            out.push(&format!("security.allowed_origins[{i}]"), &format!("'{origin}' is not an origin such as https://app.example.com"));
        }
    }
    let (l, s) = (&config.limits, &config.sessions);
    // Upper bounds keep every value a duration or a buffer the gateway can hold: nothing
    // overflows later, and an absurd value is a typo, said here with its place.
    const DAY_MS: u64 = 86_400_000;
    for (name, v, max) in [
        ("limits.max_body_bytes", l.max_body_bytes as u64, 1 << 30),
        ("limits.max_header_bytes", l.max_header_bytes as u64, 1 << 20),
        ("limits.connect_timeout_ms", l.connect_timeout_ms, DAY_MS),
        ("limits.request_timeout_ms", l.request_timeout_ms, DAY_MS),
        ("limits.keepalive_ms", l.keepalive_ms, DAY_MS),
        ("limits.shutdown_grace_ms", l.shutdown_grace_ms.max(1), DAY_MS),
        ("limits.max_batch_entries", l.max_batch_entries as u64, 10_000),
        ("limits.max_policy_state_mb", l.max_policy_state_mb as u64, 1 << 20),
        ("limits.max_connections", l.max_connections as u64, 1_000_000),
        ("limits.worker_threads", l.worker_threads.map_or(1, |n| n as u64), 1024),
        ("limits.policy_compile_memory_mb", l.policy_compile_memory_mb, 1 << 20),
        ("limits.header_read_timeout_ms", l.header_read_timeout_ms, DAY_MS),
        ("limits.body_read_timeout_ms", l.body_read_timeout_ms, DAY_MS),
        ("sessions.idle_timeout_s", s.idle_timeout_s, 365 * 86_400),
        ("sessions.max_sessions", s.max_sessions as u64, 10_000_000),
    ] {
        if v == 0 {
            out.push(name, "must be greater than zero");
        } else if v > max {
            out.push(name, &format!("{v} is out of range: at most {max}"));
        }
    }
    if s.replay_buffer > 1_000_000 {
        out.push("sessions.replay_buffer", &format!("{} is out of range: at most 1000000", s.replay_buffer));
    }
    if let Err(e) = config.log.check() {
        out.push("log.level", &e);
    }
    if let Some(tls) = &config.tls
        && let Err(e) = super::tls::acceptor(tls)
    {
        out.push("tls", &e);
    }
    super::telemetry::check(&mut out, &config.telemetry);
    if let Some(state) = &config.state {
        super::state::check(&mut out, state);
    }
    if let Some(m) = &config.management
        && let Some(tls) = &m.tls
        && let Err(e) = super::tls::acceptor(tls)
    {
        out.push("management.tls", &e);
    }
    if let Some(m) = &config.management {
        let plain = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain(&m.admin_token_env) {
            out.push("management.admin_token_env", &format!("'{}' is not an environment variable name", m.admin_token_env));
        }
        if let Some(ro) = m.read_only_token_env.as_deref() {
            if !plain(ro) {
                out.push("management.read_only_token_env", &format!("'{ro}' is not an environment variable name"));
            } else if ro == m.admin_token_env {
                out.push("management.read_only_token_env", "must differ from admin_token_env");
            }
        }
        if let Some(db) = &m.database {
            match db.reveal() {
                Err(e) => out.push("management.database", &e.to_string()),
                // Never repeats the URL: it may carry a password.
                Ok(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) || url.parse::<tokio_postgres::Config>().is_err() => {
                    out.push("management.database", "is not a PostgreSQL URL: use postgres://user[:password]@host[:port]/database")
                }
                Ok(_) if m.data_dir.is_none() => out.push("management.database", "needs `management.data_dir` too, for this replica's own files"),
                Ok(_) => {}
            }
        }
        if !(1..=1024).contains(&m.max_component_mb) {
            out.push("management.max_component_mb", &format!("{} is out of range: use 1 to 1024", m.max_component_mb));
        }
        if m.listen.port() != 0 && m.listen == config.listen {
            out.push("management.listen", "must differ from `listen`: the management API has a listener of its own");
        }
    }
    super::products::check(&mut out, config);
    if config.sessions.max_per_server == Some(0) {
        out.push("sessions.max_per_server", "must be greater than zero");
    }
    out.list
}

/// One server's own checks, at `at` (`servers[2]` in a file, `server` in an API request).
pub(super) fn check_server(out: &mut Problems, config: &Config, at: &str, server: &super::ServerConfig) {
    check_name(out, &format!("{at}.name"), &server.name, "server");
    if server.max_sessions == Some(0) {
        out.push(&format!("{at}.max_sessions"), "must be greater than zero");
    }
    if server.compose.is_some() {
        super::compose::check(out, config, at, server);
    } else if server.versions.is_empty() {
        check_backend(out, &format!("{at}.backend"), &server.backend);
    }
    super::versions::check(out, at, server);
    super::policy::check(out, &format!("{at}.policies"), &server.policies);
    if let Some(p) = &server.payload_log {
        super::telemetry::check_payload(out, &format!("{at}.payload_log"), p);
    }
    for served in server.served() {
        super::policy::check_protects(out, config, &format!("{at}{}.policies", served.at), &served.config.policies);
    }
}

pub(super) struct Problems<'a> {
    locator: &'a Locator,
    list: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub(super) fn new(locator: &'a Locator) -> Problems<'a> {
        Problems { locator, list: Vec::new() }
    }

    pub(super) fn into_list(self) -> Vec<Problem> {
        self.list
    }

    pub(super) fn push(&mut self, path: &str, message: &str) {
        self.list.push(Problem { path: path.to_owned(), line: self.locator.line_of(path), column: None, message: message.to_owned() });
    }
}

/// Names become URL path segments and metric labels, so they are kept plain.
pub(super) fn check_name(out: &mut Problems, at: &str, name: &str, what: &str) {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_']);
    if !plain {
        out.push(at, &format!("'{name}' is not a valid {what} name: use 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit"));
    }
    if [".well-known", "healthz", "readyz"].contains(&name) {
        out.push(at, &format!("'{name}' is reserved"));
    }
}

pub(super) fn check_backend(out: &mut Problems, at: &str, b: &super::BackendConfig) {
    let set = [b.http.is_some(), b.sse.is_some(), b.stdio.is_some(), b.openapi.is_some()].iter().filter(|x| **x).count();
    match set {
        0 => out.push(at, "a backend needs one of `http`, `sse`, `stdio` or `openapi`"),
        1 => {}
        _ => out.push(at, "a backend takes only one of `http`, `sse`, `stdio` or `openapi`"),
    }
    for (key, value) in [("http", &b.http), ("sse", &b.sse)] {
        if let Some(u) = value {
            check_url(out, &format!("{at}.{key}"), u);
        }
    }
    if let Some(s) = &b.stdio {
        if s.command.trim().is_empty() {
            out.push(&format!("{at}.stdio.command"), "the command must not be empty");
        }
        if s.max_processes == 0 {
            out.push(&format!("{at}.stdio.max_processes"), "must be greater than zero");
        }
        if s.warm > s.max_processes {
            out.push(&format!("{at}.stdio.warm"), "cannot be more than max_processes");
        }
        if !b.headers.is_empty() {
            out.push(&format!("{at}.headers"), "headers apply to HTTP backends only");
        }
    }
    if let Some(s) = &b.stdio {
        for (name, value) in &s.env {
            check_secret(out, &format!("{at}.stdio.env.{name}"), value, false);
        }
    }
    for (name, value) in &b.headers {
        check_secret(out, &format!("{at}.headers.{name}"), value, true);
        let lower = name.to_ascii_lowercase();
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            out.push(&format!("{at}.headers.{name}"), &format!("'{name}' is not a valid header name"));
        } else if crate::mcp::headers::is_hop_by_hop(&lower) || lower == "host" || lower == "content-length" {
            out.push(&format!("{at}.headers.{name}"), &format!("'{name}' is set by the gateway and cannot be configured"));
        }
    }
    if b.request_timeout_ms == Some(0) {
        out.push(&format!("{at}.request_timeout_ms"), "must be greater than zero");
    }
    if b.http2 && b.http.is_none() {
        out.push(&format!("{at}.http2"), "applies to an `http` backend only");
    }
    if let Some(t) = &b.tls {
        if b.stdio.is_some() {
            out.push(&format!("{at}.tls"), "applies to HTTP backends only");
        } else if let Err((field, why)) = t.load() {
            out.push(&format!("{at}.tls.{field}"), &why);
        }
    }
}

fn check_secret(out: &mut Problems, at: &str, secret: &Secret, header: bool) {
    if let Err(e) = secret.check(header) {
        out.push(at, &e);
    }
}

fn check_url(out: &mut Problems, at: &str, u: &str) {
    match url::Url::parse(u) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {
            if url.host().is_none() {
                out.push(at, &format!("'{u}' has no host"));
            }
        }
        Ok(url) => out.push(at, &format!("'{u}' must be an http or https URL, not {}", url.scheme())),
        Err(e) => out.push(at, &format!("'{u}' is not a URL: {e}")),
    }
}
