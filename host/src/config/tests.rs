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

const VERSIONED: &str = "\
servers:
  - name: docs
    description: Search the docs
    versions:
      - name: v1
        backend: { http: http://127.0.0.1:1/mcp }
      - name: v2
        backend: { http: http://127.0.0.1:2/mcp }
        policies:
          - policy: rate-limit
            config: { limit: 1, window: 1m }
    preview: { version: v2, share: 10 }
";

#[test]
fn versions_serve_in_the_shape_of_plain_servers_and_the_default_is_named() {
    let c = Config::parse(VERSIONED).unwrap();
    let s = &c.servers[0];
    assert_eq!(s.default_version.as_deref(), Some("v1"), "the first version, written out");
    let served = s.served();
    assert_eq!(served.iter().map(Served::key).collect::<Vec<_>>(), ["docs@v1", "docs@v2"]);
    assert_eq!(served[1].at, ".versions[1]");
    assert_eq!(served[1].config.name, "docs");
    assert_eq!(served[1].config.description.as_deref(), Some("Search the docs"));
    assert_eq!(served[1].config.policies.len(), 1);
    assert!(matches!(served[1].config.backend.kind(), BackendKind::Http("http://127.0.0.1:2/mcp")));
    let plain = Config::parse("servers:\n  - name: a\n    backend: { http: http://127.0.0.1:1/mcp }\n").unwrap();
    assert_eq!(plain.servers[0].served().iter().map(Served::key).collect::<Vec<_>>(), ["a"]);
    assert!(Routing::of(&plain.servers[0]).is_none());
}

#[test]
fn version_problems_name_their_place() {
    let text = "\
servers:
  - name: docs
    backend: { http: http://127.0.0.1:1/mcp }
    default_version: v3
    preview: { version: v1, share: 150, subscriptions: [''] }
    versions:
      - name: v1
        backend: { http: http://127.0.0.1:1/mcp }
        retired: true
      - name: v1
        backend: {}
";
    let problems = Config::parse(text).unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for expected in [
        "line 3: servers[0].backend: a server with `versions` has no backend of its own",
        "line 4: servers[0].default_version: no version is named 'v3' (versions: v1, v1)",
        "line 5: servers[0].preview.version: version 'v1' is retired: a preview must be a version that serves",
        "line 5: servers[0].preview.share: 150 is not a percentage: use 0 to 100",
        "line 5: servers[0].preview.subscriptions[0]: a subscription id must not be empty",
        "line 10: servers[0].versions[1].name: version name 'v1' is already used",
        "line 11: servers[0].versions[1].backend: a backend needs one of",
    ] {
        assert!(shown.iter().any(|p| p.starts_with(expected)), "{expected}\n{shown:#?}");
    }
    assert_eq!(problems.len(), 7, "{shown:#?}");
}

#[test]
fn a_server_without_versions_has_no_default_or_preview_to_set() {
    let text = "servers:\n  - name: a\n    backend: { http: http://127.0.0.1:1/mcp }\n    default_version: v1\n";
    let problems = Config::parse(text).unwrap_err();
    assert_eq!(problems[0].path, "servers[0].default_version");
    let retired = "servers:\n  - name: a\n    versions:\n      - { name: v1, retired: true, backend: { http: http://127.0.0.1:1/mcp } }\n";
    let problems = Config::parse(retired).unwrap_err();
    assert!(problems[0].path == "servers[0].versions" && problems[0].message.contains("every version is retired"), "{problems:?}");
}

#[test]
fn a_routing_for_the_api_is_checked_in_the_same_words() {
    let c = Config::parse(VERSIONED).unwrap();
    let mut r = Routing::of(&c.servers[0]).unwrap();
    assert!(check_routing(&c.servers[0], &r).is_empty());
    r.default_version = "v9".into();
    r.retired.insert("v0".into());
    let shown: Vec<String> = check_routing(&c.servers[0], &r).iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        ["routing.retired[0]: no version is named 'v0' (versions: v1, v2)", "routing.default_version: no version is named 'v9' (versions: v1, v2)"]
    );
}

#[test]
fn absurd_limits_are_refused_with_their_place() {
    let text = "limits:\n  request_timeout_ms: 18446744073709551615\n  max_body_bytes: 99999999999\n  max_policy_state_mb: 0\nsessions:\n  idle_timeout_s: 999999999999\nservers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n";
    let shown: Vec<String> = Config::parse(text).unwrap_err().iter().map(|p| p.to_string()).collect();
    for place in [
        "limits.request_timeout_ms: 18446744073709551615 is out of range",
        "limits.max_body_bytes: 99999999999 is out of range",
        "limits.max_policy_state_mb: must be greater than zero",
        "sessions.idle_timeout_s: 999999999999 is out of range",
    ] {
        assert!(shown.iter().any(|p| p.contains(place)), "{place}: {shown:#?}");
    }
}

#[test]
fn a_shared_cache_before_per_caller_credentials_is_refused() {
    let chain = |cache: &str| {
        format!(
            "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n    policies:\n      - policy: cache\n        config: {cache}\n      - policy: credentials\n        config: {{ per_user: {{ secrets: {{ alice: k }} }} }}\n        secrets: {{ k: {{ env: K }} }}\n"
        )
    };
    let shown: Vec<String> = Config::parse(&chain("{ tools: [search] }")).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p.contains("servers[0].policies[0].config.per_caller: the backend credential is chosen per caller")), "{shown:#?}");
    assert!(Config::parse(&chain("{ tools: [search], per_caller: [subject] }")).is_ok());
}

#[test]
fn http2_is_for_an_http_backend_only() {
    let ok = Config::parse("servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n      http2: true\n").unwrap();
    assert!(ok.servers[0].backend.http2);
    let text = "servers:\n  - name: a\n    backend:\n      sse: http://127.0.0.1:1/sse\n      http2: true\n";
    let problems = Config::parse(text).unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].contains("servers[0].backend.http2: applies to an `http` backend only"), "{shown:#?}");
}

#[test]
fn a_redis_url_is_checked_with_its_place_and_never_shown() {
    let servers = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n";
    let ok = Config::parse(&format!("state:\n  redis: redis://:s3cret@127.0.0.1:6379/0\n{servers}")).unwrap();
    let shown = serde_json::to_string(&ok.masked()).unwrap();
    assert!(!shown.contains("s3cret") && shown.contains("<redacted>"), "{shown}");
    assert_eq!(ok.state.as_ref().map(|s| (s.prefix.as_str(), s.timeout_ms)), Some(("tollgate:", 50)));
    let bad = Config::parse(&format!("state:\n  redis: http://user:s3cret@example.com/\n  timeout_ms: 0\n{servers}")).unwrap_err();
    let shown: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p.contains("state.redis: is not a Redis URL")), "{shown:#?}");
    assert!(shown.iter().any(|p| p.contains("state.timeout_ms: 0 is out of range")), "{shown:#?}");
    assert!(!shown.iter().any(|p| p.contains("s3cret")), "{shown:#?}");
    let unset = Config::parse(&format!("state:\n  redis: {{ env: TOLLGATE_TEST_SURELY_UNSET }}\n{servers}")).unwrap_err();
    assert!(unset[0].to_string().contains("state.redis: environment variable TOLLGATE_TEST_SURELY_UNSET is not set"), "{:?}", unset[0].to_string());
}

#[test]
fn a_database_needs_a_data_dir_and_is_never_shown() {
    let servers = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:1/mcp\n";
    let m = |extra: &str| format!("management:\n  admin_token_env: T\n{extra}{servers}");
    let ok = Config::parse(&m("  data_dir: d\n  database: postgres://tollgate:s3cret@db/tollgate\n")).unwrap();
    let shown = serde_json::to_string(&ok.masked()).unwrap();
    assert!(!shown.contains("s3cret"), "{shown}");
    let shown: Vec<String> = Config::parse(&m("  database: postgres://tollgate@db/tollgate\n")).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p.contains("management.database: needs `management.data_dir` too")), "{shown:#?}");
    let shown: Vec<String> = Config::parse(&m("  data_dir: d\n  database: mysql://u:s3cret@db/x\n")).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p.contains("management.database: is not a PostgreSQL URL")) && !shown.iter().any(|p| p.contains("s3cret")), "{shown:#?}");
}
