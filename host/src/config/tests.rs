use super::*;

#[test]
fn minimal_config_parses_with_defaults() {
    let c = Config::parse("servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert!(matches!(c.servers[0].backend.kind(), BackendKind::Http("http://127.0.0.1:1/mcp")));
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = "\
listen: 127.0.0.1:9000
servers:
  - name: ok
    backend:
      http: http://127.0.0.1:1/mcp
  - name: Bad Name
    backend:
      http: ftp://x/
  - name: ok
    backend: {}
";
    let problems = Config::parse(text).unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p.starts_with("line 6: servers[1].name: 'Bad Name' is not a valid server name")), "{shown:#?}");
    assert!(shown.iter().any(|p| p.starts_with("line 8: servers[1].backend.http: 'ftp://x/' must be an http or https URL")), "{shown:#?}");
    assert!(shown.iter().any(|p| p.starts_with("line 9: servers[2].name: server name 'ok' is already used by servers[0]")), "{shown:#?}");
    assert!(shown.iter().any(|p| p.starts_with("line 10: servers[2].backend: a backend needs one of")), "{shown:#?}");
    assert_eq!(problems.len(), 4, "{shown:#?}");
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let text = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n      htp: x\n";
    let problems = Config::parse(text).unwrap_err();
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!(p.path, "servers[0].backend.htp");
    assert_eq!(p.line, Some(5));
    assert!(p.message.contains("unknown field `htp`"), "{}", p.message);
}

#[test]
fn two_backends_for_one_server_are_refused() {
    let text = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n      stdio: { command: node }\n";
    let problems = Config::parse(text).unwrap_err();
    assert!(problems[0].message.contains("only one of"), "{problems:?}");
}

#[test]
fn authorization_needs_a_known_canonical_url() {
    let text = "listen: 127.0.0.1:0\nservers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n    policies:\n      - policy: jwt\n        config:\n          keys: []\n          authorization: { authorization_servers: [https://idp.example.com] }\n";
    let problems = Config::parse(text).unwrap_err();
    assert!(problems.iter().any(|p| p.path == "servers[0].policies[0].config.authorization" && p.message.contains("public_url")), "{problems:?}");
}

#[test]
fn products_default_to_subscriptions_without_approval_and_the_apim_key_header() {
    let text = "\
management:
  admin_token_env: TOKEN
  data_dir: /var/lib/tollgate
servers:
  - name: a
    backend:
      http: http://127.0.0.1:1/mcp
products:
  - name: free
    servers: [{ server: a, tools: [echo] }]
";
    let c = Config::parse(text).unwrap();
    let p = &c.products[0];
    assert!(p.subscription_required && !p.approval_required);
    assert_eq!(p.servers[0].tools.as_deref(), Some(&["echo".to_owned()][..]));
    assert_eq!(c.subscription_key.header, "Ocp-Apim-Subscription-Key");
    assert_eq!(c.subscription_key.query, "subscription-key");
    let m = c.management.unwrap();
    assert_eq!(m.listen.to_string(), "127.0.0.1:9090", "loopback by default");
}
