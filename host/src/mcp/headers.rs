//! Header rules shared by the transports: protocol versions, content negotiation, and the
//! Origin and Host checks that keep a local gateway safe from DNS rebinding.

use hyper::HeaderMap;

use crate::mcp::error::GatewayError;

pub const SESSION_ID: &str = "mcp-session-id";
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const LAST_EVENT_ID: &str = "last-event-id";
/// On a virtual server's request to one of its members: the virtual server's name, believed
/// only with [`VIA_KEY`].
pub const VIA: &str = "tollgate-via";
/// The key this gateway process drew at start, which vouches for [`VIA`]; taken out of the
/// headers at admission, so no policy sees it.
pub const VIA_KEY: &str = "tollgate-via-key";

/// Protocol revisions the gateway carries between clients and backends.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The stateless revision: a client speaking it first probes, then falls back to `initialize`.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Headers that describe one connection, never to be forwarded (RFC 9110 section 7.6.1).
pub fn is_hop_by_hop(lower: &str) -> bool {
    matches!(
        lower,
        "connection" | "keep-alive" | "proxy-connection" | "proxy-authenticate" | "proxy-authorization" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    )
}

pub fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The client must take both JSON and SSE answers on POST (`*/*` counts as both).
pub fn accepts_post(h: &HeaderMap) -> Result<(), GatewayError> {
    let accept = h.get_all(hyper::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let has = |t: &str| {
        accept.split(',').any(|p| {
            let m = p.split(';').next().unwrap_or("").trim();
            m == t || m == "*/*"
        })
    };
    if has("application/json") && has("text/event-stream") {
        Ok(())
    } else {
        Err(GatewayError::NotAcceptable("Client must accept both application/json and text/event-stream"))
    }
}

pub fn accepts_sse(h: &HeaderMap) -> Result<(), GatewayError> {
    let ok = h
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| matches!(p.split(';').next().unwrap_or("").trim(), "text/event-stream" | "*/*")));
    if ok { Ok(()) } else { Err(GatewayError::NotAcceptable("Client must accept text/event-stream")) }
}

pub fn is_json(h: &HeaderMap) -> Result<(), GatewayError> {
    match get(h, "content-type") {
        Some(ct) if ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(GatewayError::UnsupportedMediaType),
    }
}

/// Checks `MCP-Protocol-Version` on a request inside a session.
pub fn check_version(h: &HeaderMap) -> Result<(), GatewayError> {
    match get(h, PROTOCOL_VERSION) {
        None => Ok(()), // the specification says to assume 2025-03-26
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(GatewayError::UnsupportedVersion { requested: v.to_owned(), supported: SUPPORTED_VERSIONS.to_vec() }),
    }
}

/// Refuses requests from origins and to host names that were not allowed (DNS rebinding).
/// `allowed_origins` and `allowed_hosts` are the config's `security` lists (`*`: any).
pub fn check_origin_and_host(h: &HeaderMap, authority: Option<&str>, allowed_origins: &[String], allowed_hosts: &[String]) -> Result<(), GatewayError> {
    if let Some(origin) = h.get(hyper::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let allowed = allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
            || url::Url::parse(origin).ok().and_then(|u| u.host_str().map(is_loopback)).unwrap_or(false);
        if !allowed {
            return Err(GatewayError::ForbiddenOrigin(origin.to_owned()));
        }
    }
    if let Some(host) = get(h, "host").or(authority) {
        let name = host_name(host);
        let allowed = is_loopback(name) || allowed_hosts.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host));
        if !allowed {
            return Err(GatewayError::MisdirectedHost(host.to_owned()));
        }
    }
    Ok(())
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

fn is_loopback(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rebinding_is_refused_and_loopback_is_not() {
        let check = |h: &HeaderMap, s: &(Vec<String>, Vec<String>)| check_origin_and_host(h, None, &s.0, &s.1);
        let none = (Vec::new(), Vec::new());
        assert!(check(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://localhost:3000")]), &none).is_ok());
        assert!(check(&headers(&[("host", "[::1]:8080")]), &none).is_ok());
        assert!(matches!(check(&headers(&[("host", "evil.example:8080")]), &none), Err(GatewayError::MisdirectedHost(_))));
        assert!(matches!(check(&headers(&[("host", "localhost"), ("origin", "https://evil.example")]), &none), Err(GatewayError::ForbiddenOrigin(_))));
        let some = (vec!["https://app.example".into()], vec!["mcp.example".into()]);
        assert!(check(&headers(&[("host", "mcp.example:443"), ("origin", "https://app.example")]), &some).is_ok());
        // HTTP/2: `:authority` in place of `Host`.
        assert!(matches!(check_origin_and_host(&HeaderMap::new(), Some("evil.example:8080"), &[], &[]), Err(GatewayError::MisdirectedHost(_))));
        assert!(check_origin_and_host(&HeaderMap::new(), Some("127.0.0.1:8080"), &[], &[]).is_ok());
    }

    #[test]
    fn accept_must_name_both_types() {
        assert!(accepts_post(&headers(&[("accept", "application/json, text/event-stream")])).is_ok());
        assert!(accepts_post(&headers(&[("accept", "application/json"), ("accept", "text/event-stream;q=0.9")])).is_ok());
        assert!(accepts_post(&headers(&[("accept", "application/json")])).is_err());
        assert!(accepts_sse(&headers(&[("accept", "text/event-stream")])).is_ok());
    }
}
