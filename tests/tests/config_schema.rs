//! `tollgate config schema`: what the real binary prints is a draft 2020-12 schema that every
//! example config passes, and it refuses what `tollgate validate` refuses of a config's shape:
//! unknown keys, and secret references that are not exactly one of `{env}` or `{file}`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use jsonschema::Validator;
use serde_json::Value;
use tokio::process::Command;
use tollgate_tests::gateway::TempDir;
use tollgate_tests::process;

/// The schema as `tollgate config schema` prints it.
async fn printed_schema() -> Value {
    let mut cmd = Command::new(process::binary("tollgate"));
    cmd.args(["config", "schema"]).stdin(Stdio::null()).kill_on_drop(true);
    let out = tollgate_tests::within(15, "tollgate config schema", cmd.output()).await.expect("run tollgate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the schema is JSON")
}

async fn validator() -> Validator {
    let schema = printed_schema().await;
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("the schema compiles: {e}"))
}

/// YAML as the gateway reads it, as the JSON a validator (or an editor) sees.
fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("YAML: {e}\n{text}"))
}

/// What the schema finds wrong with `instance`, each with where it is.
fn problems(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read examples").flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn the_printed_schema_names_itself_and_is_a_valid_schema() {
    let schema = printed_schema().await;
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["$id"], "urn:tollgate:config");
    assert_eq!(schema["title"], "Tollgate configuration");
    let description = schema["description"].as_str().unwrap_or_default();
    assert!(description.contains(env!("CARGO_PKG_VERSION")), "the description names the binary's version: {description}");
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("the schema is a valid draft 2020-12 schema: {e}");
    }
}

/// Every YAML file under `examples/`, at any depth: a config must pass. An OpenAPI document (what
/// an `openapi` backend's `spec` names) is not a config and is skipped; anything else fails the
/// test, so a new kind of file there gets a decision of its own.
#[tokio::test]
async fn every_example_config_passes_the_schema() {
    let v = validator().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    let (mut checked, mut failed) = (Vec::new(), Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        let doc = yaml(&text);
        let name = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        // A config never has an `openapi` key at the top; an OpenAPI document always does.
        if doc.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with('3')) {
            eprintln!("skipped {name}: an OpenAPI document that a config's `openapi` backend reads, not a config");
            continue;
        }
        assert!(doc.get("servers").is_some(), "{name} is neither a whole config nor an OpenAPI document: say what it is here");
        let found = problems(&v, &doc);
        if !found.is_empty() {
            failed.push(format!("{name}:\n  {}", found.join("\n  ")));
        }
        checked.push(name);
    }
    assert!(failed.is_empty(), "examples the schema refuses:\n{}", failed.join("\n"));
    for expected in ["sample.yaml", "cluster.yaml", "products.yaml", "policies/credentials.yaml"] {
        assert!(checked.iter().any(|c| c == expected), "{expected} was checked: {checked:?}");
    }
    assert!(checked.len() >= 12, "every config was checked: {checked:?}");
}

#[tokio::test]
async fn unknown_keys_are_refused_where_they_are() {
    let v = validator().await;
    let found = problems(&v, &yaml(r#"servers: [{name: a, backend: {http: "http://x"}, bogus: 1}]"#));
    assert!(found.iter().any(|p| p.starts_with("/servers/0:") && p.contains("bogus")), "{found:?}");
    let found = problems(&v, &yaml("servers: [{name: a, backend: {http: 'http://x', headerz: {}}}]"));
    assert!(found.iter().any(|p| p.starts_with("/servers/0/backend:") && p.contains("headerz")), "{found:?}");
    let found = problems(&v, &yaml("lisen: 127.0.0.1:8080\nservers: []"));
    assert!(found.iter().any(|p| p.contains("lisen")), "{found:?}");
    assert!(!problems(&v, &yaml("listen: localhost:8080\nservers: []")).is_empty(), "a host name is not a socket address");
    assert!(problems(&v, &yaml("listen: '[::1]:0'\nservers: []")).is_empty());
}

/// The variable and file that the accepted references below name.
const TOKEN_ENV: &str = "TOLLGATE_SCHEMA_TEST_TOKEN";

/// Runs `tollgate validate` on `config`, in a directory that also holds the file `token`, with
/// [`TOKEN_ENV`] set: whether it accepts the file, and what it said.
async fn validate(config: &str) -> (bool, String) {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("token"), "from-a-file\n").expect("write token");
    let file = dir.0.join("config.yaml");
    std::fs::write(&file, config).expect("write config");
    let mut cmd = Command::new(process::binary("tollgate"));
    cmd.arg("validate").arg("--config").arg(&file).env(TOKEN_ENV, "from-the-environment").env("NO_COLOR", "1").stdin(Stdio::null()).kill_on_drop(true);
    let out = tollgate_tests::within(15, "tollgate validate", cmd.output()).await.expect("run tollgate");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A secret is a string or exactly one of `{env: NAME}` and `{file: PATH}`: the schema accepts
/// the same secrets `tollgate validate` does, wherever a secret is written.
#[tokio::test]
async fn the_schema_and_validate_agree_on_secrets() {
    let v = validator().await;
    let secrets = [
        ("Bearer abc", true),
        ("{env: TOLLGATE_SCHEMA_TEST_TOKEN}", true),
        ("{file: token}", true),
        ("{env: ~, file: token}", true),
        ("{env: TOLLGATE_SCHEMA_TEST_TOKEN, file: token}", false),
        ("{}", false),
        ("{env: ~}", false),
        ("{env: ''}", false),
        ("{file: ''}", false),
        ("{envv: TOLLGATE_SCHEMA_TEST_TOKEN}", false),
        ("{env: TOLLGATE_SCHEMA_TEST_TOKEN, value: abc}", false),
        ("'<redacted>'", false),
        ("~", false),
        ("42", false),
        ("[abc]", false),
    ];
    // Each place a secret is written in a backend, SECRET standing for it.
    let places = [
        ("a backend header", "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n      headers:\n        Authorization: SECRET\n"),
        ("a stdio child's environment", "servers:\n  - name: a\n    backend:\n      stdio: {command: cat, env: {TOKEN: SECRET}}\n"),
        (
            "an openapi backend's header",
            "servers:\n  - name: a\n    backend:\n      openapi: {spec: http://127.0.0.1:9/openapi.json, headers: {X-Key: SECRET}}\n",
        ),
    ];
    let mut disagreements = Vec::new();
    for (place, template) in places {
        for (secret, accepted) in secrets {
            let text = template.replace("SECRET", secret);
            let schema_says = problems(&v, &yaml(&text));
            if schema_says.is_empty() != accepted {
                disagreements.push(format!("{place}, {secret}: the schema says {schema_says:?}, expected accepted = {accepted}"));
            }
            // The openapi backend loads its document; its secrets are judged by the schema alone.
            if !place.starts_with("an openapi") {
                let (ok, said) = validate(&text).await;
                if ok != accepted {
                    disagreements.push(format!("{place}, {secret}: validate says {said}, expected accepted = {accepted}"));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// The references that stand alone (`state.redis`, `management.database`, a policy's `secrets`).
#[tokio::test]
async fn the_schema_and_validate_agree_on_references_outside_backends() {
    let v = validator().await;
    let server = "servers: [{name: a, backend: {http: 'http://127.0.0.1:9/mcp'}}]\n";
    let cases = [
        (format!("state: {{redis: 'redis://127.0.0.1:1/0'}}\n{server}"), true),
        (format!("state: {{redis: {{file: token, env: {TOKEN_ENV}}}}}\n{server}"), false),
        (format!("state: {{redis: {{}}}}\n{server}"), false),
        (format!("management: {{admin_token_env: T, data_dir: data, database: 'postgres://u@127.0.0.1/db'}}\n{server}"), true),
        (format!("management: {{admin_token_env: T, data_dir: data, database: {{env: ~}}}}\n{server}"), false),
        // Policies load only once the config is right, so only refusals run here; the accepted
        // shape is `examples/policies/credentials.yaml`, which CI validates.
        (
            "servers: [{name: a, backend: {http: 'http://127.0.0.1:9/mcp'}, policies: [{policy: tool-filter, secrets: {k: {env: A, file: b}}}]}]".to_owned(),
            false,
        ),
        ("servers: [{name: a, backend: {http: 'http://127.0.0.1:9/mcp'}, policies: [{policy: tool-filter, secrets: {k: {}}}]}]".to_owned(), false),
        ("servers: [{name: a, backend: {http: 'http://127.0.0.1:9/mcp'}, policies: [{policy: tool-filter, secrets: {k: plain}}]}]".to_owned(), false),
    ];
    let mut disagreements = Vec::new();
    for (text, accepted) in &cases {
        let schema_says = problems(&v, &yaml(text));
        if schema_says.is_empty() != *accepted {
            disagreements.push(format!("{text}: the schema says {schema_says:?}"));
        }
        let (ok, said) = validate(text).await;
        if ok != *accepted {
            disagreements.push(format!("{text}: validate says {said}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
