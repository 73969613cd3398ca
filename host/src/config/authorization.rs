//! MCP authorization as the config declares it: a server is protected when its `jwt` binding
//! has an `authorization:` section. For it the gateway serves RFC 9728 protected resource
//! metadata (the document is built here). The server's canonical URL, which tokens must name
//! as their audience (RFC 8707), reaches every binding through the contract (`resource-url`).

use serde_json::{Value, json};

use super::{Config, PolicyBinding};

/// The standard policy whose config carries the authorization settings.
const JWT: &str = "jwt";

/// The server's canonical URL: `public_url` (or `http://{listen}`) and `/{name}/mcp`, with
/// scheme and host in lowercase and no trailing slash (MCP spec, canonical server URI).
pub fn resource_url(config: &Config, server: &str) -> String {
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let base = config.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", config.listen));
    let base = base.trim_end_matches('/');
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    format!("{}://{}{path}/{server}/mcp", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

/// The `authorization` section of a binding, if it is the `jwt` policy's.
fn section(b: &PolicyBinding) -> Option<&serde_json::Map<String, Value>> {
    (b.name() == JWT).then(|| b.config.get("authorization").and_then(Value::as_object)).flatten()
}

/// The metadata document of one server, if it is protected.
pub fn metadata(config: &Config, server: &str) -> Option<Value> {
    of_server(config, config.servers.iter().find(|s| s.name == server)?)
}

/// The metadata document of `s` as it runs now (the management API may have changed it).
pub fn of_server(config: &Config, s: &super::ServerConfig) -> Option<Value> {
    let server = s.name.as_str();
    // A versioned server is protected when a version is: they share `/{name}/mcp`.
    let a = s.policies.iter().chain(s.versions.iter().flat_map(|v| v.policies.iter())).find_map(section)?;
    let resource = a.get("resource").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| resource_url(config, server));
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": a.get("authorization_servers").cloned().unwrap_or(json!([])),
        "bearer_methods_supported": ["header"],
    });
    for key in ["scopes_supported", "resource_name"] {
        if let Some(v) = a.get(key) {
            doc[key] = v.clone();
        }
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        serde_norway::from_str(yaml).unwrap()
    }

    const TWO: &str = "listen: 127.0.0.1:8080\npublic_url: HTTPS://GW.Example.com/base/\nservers:\n  - name: docs\n    backend: { http: 'http://127.0.0.1:9/mcp' }\n    policies:\n      - policy: jwt\n        config: { jwks_url: 'https://idp/jwks', authorization: { authorization_servers: ['https://idp'], scopes_supported: [mcp] } }\n  - name: open\n    backend: { http: 'http://127.0.0.1:9/mcp' }\n";

    #[test]
    fn the_canonical_url_is_lowercase_without_a_trailing_slash() {
        let c = config(TWO);
        assert_eq!(resource_url(&c, "docs"), "https://gw.example.com/base/docs/mcp");
        let local = config("listen: '[::1]:9000'\nservers: []\n");
        assert_eq!(resource_url(&local, "s"), "http://[::1]:9000/s/mcp");
    }

    #[test]
    fn protected_servers_get_metadata_and_their_binding_the_resource() {
        let c = config(TWO);
        let doc = metadata(&c, "docs").unwrap();
        assert_eq!(doc["resource"], "https://gw.example.com/base/docs/mcp");
        assert_eq!(doc["authorization_servers"], json!(["https://idp"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp"]));
        assert!(metadata(&c, "open").is_none());
        assert!(metadata(&c, "nope").is_none());
    }
}
