//! The management API's OpenAPI document (`/openapi.json`), generated from the route table that
//! builds the router: it is a valid OpenAPI 3.1 document (openapi-spec-validator, from the
//! interop venv), every JSON body it describes has a schema, every route it lists is served
//! with exactly the methods it lists, and what the GET routes answer matches their schemas.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, RunningGateway, write_temp};

const TOKEN: &str = "openapi-admin-token";
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// The interop venv's python (scripts/setup.sh), or `TOLLGATE_TEST_PYTHON`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TOLLGATE_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/.venv/bin/python");
    assert!(venv.exists(), "{} is missing: run scripts/setup.sh (it installs tests/interop/requirements.txt)", venv.display());
    venv
}

/// What openapi-spec-validator says of `doc`: `Ok` if it is a valid OpenAPI document.
fn spec_validator(doc: &Value) -> Result<(), String> {
    let file = write_temp("openapi.json", &doc.to_string());
    let script = "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\n";
    let out = Command::new(python()).arg("-c").arg(script).arg(&file).output().expect("python runs");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// A gateway with something behind every path parameter: server `plain`, server `docs` in
/// versions `v1` and `v2`, product `team`, and a subscription to it (its id returned).
async fn gateway() -> (RunningGateway, String, tollgate_tests::backend::RunningBackend) {
    let backend = Backend::rmcp().start().await;
    let data = write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let gateway = Gateway::new()
        .server("plain", backend.url())
        .server_entry(json!({
            "name": "docs",
            "default_version": "v1",
            "versions": [{ "name": "v1", "backend": { "http": backend.url() } }, { "name": "v2", "backend": { "http": backend.url() } }]
        }))
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", json!([{ "name": "team", "servers": [{ "server": "plain" }] }]))
        .start()
        .await;
    let sub = Admin::new(&gateway.management(), TOKEN).subscribe("team", "alice").await;
    (gateway, sub.id, backend)
}

async fn document(g: &RunningGateway) -> Value {
    let r = http().get(format!("{}/openapi.json", g.management())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Every concrete path a documented one stands for: its parameters filled with real names,
/// one path per value of a parameter that takes only a few.
fn concrete(path: &str, op: &Value, sub: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for segment in path.split('/').skip(1) {
        let values: Vec<String> = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            None => vec![segment.to_owned()],
            Some(name) => {
                let param = op["parameters"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == "path"));
                let param = param.unwrap_or_else(|| panic!("{path}: the parameter `{name}` is not described"));
                match param["schema"]["enum"].as_array() {
                    Some(values) => values.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
                    None => vec![match name {
                        "name" if path.starts_with("/api/products/") => "team".to_owned(),
                        // The server without versions, whose chain is its own.
                        "name" if path == "/api/servers/{name}/policies" => "plain".to_owned(),
                        "name" => "docs".to_owned(),
                        "version" => "v1".to_owned(),
                        "id" => sub.to_owned(),
                        other => panic!("{path}: no value for the parameter `{other}`"),
                    }],
                }
            }
        };
        out = out.iter().flat_map(|prefix| values.iter().map(move |v| format!("{prefix}/{v}"))).collect();
    }
    out
}

/// The schema at `pointer` in `doc`, as a JSON Schema whose `$ref`s resolve in the document.
fn schema_at(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#{pointer}"));
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

/// A path as a JSON pointer token, in a URI fragment.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1").replace('{', "%7B").replace('}', "%7D")
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_every_json_body_has_a_schema() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management(TOKEN).start().await;
    let doc = document(&gateway).await;
    assert_eq!(doc["openapi"], "3.1.0");
    spec_validator(&doc).unwrap_or_else(|e| panic!("openapi-spec-validator refuses the document:\n{e}"));
    // The validator does refuse what is wrong: a response without its description.
    let mut broken = doc.clone();
    broken["paths"]["/api/servers"]["get"]["responses"]["200"].as_object_mut().unwrap().remove("description");
    assert!(spec_validator(&broken).is_err(), "openapi-spec-validator let a broken document through");

    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let request = op.pointer("/requestBody/content").map(|c| ("request".to_owned(), c));
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{at}: no responses"));
            for (status, r) in responses {
                assert!(r["description"].is_string(), "{at} {status}: no description");
                if status.starts_with('2') && status != "204" {
                    assert!(r["content"].is_object(), "{at} {status}: no body described");
                }
            }
            let answers = responses.iter().filter_map(|(s, r)| r.get("content").map(|c| (s.clone(), c)));
            for (what, content) in request.into_iter().chain(answers) {
                for (media, c) in content.as_object().unwrap() {
                    if media.contains("json") {
                        bodies += 1;
                        let schema = c.get("schema").unwrap_or_else(|| panic!("{at} {what} {media}: no schema"));
                        assert!(schema.get("$ref").is_some() || schema.get("type").is_some(), "{at} {what} {media}: {schema}");
                    }
                }
            }
            if responses.contains_key("401") {
                assert!(op.get("security").is_none(), "{at}: an admin route takes the admin token");
            } else {
                assert_eq!(op["security"], json!([]), "{at}: an open route says it needs no token");
            }
        }
    }
    assert!(bodies > 60, "{bodies} JSON bodies");
    // No object left undescribed anywhere in the schemas.
    fn bare(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                let object = m.get("type").is_some_and(|t| t == "object" || t.as_array().is_some_and(|a| a.contains(&json!("object"))));
                let described =
                    ["properties", "additionalProperties", "patternProperties", "$ref", "oneOf", "anyOf", "allOf"].iter().any(|k| m.contains_key(*k));
                if object && !described {
                    found.push(at.to_owned());
                }
                m.iter().for_each(|(k, x)| bare(x, &format!("{at}/{k}"), found));
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| bare(x, &format!("{at}/{i}"), found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    bare(&doc["paths"], "#/paths", &mut found);
    bare(&doc["components"]["schemas"], "#/components/schemas", &mut found);
    assert!(found.is_empty(), "objects without properties: {found:?}");
    // The bodies are the gateway's own types, by name.
    for name in ["ServerConfig", "VersionConfig", "PolicyBinding", "ProductConfig", "Routing", "PreviewConfig", "Subscription", "Problem", "Config"] {
        assert!(doc["components"]["schemas"][name]["properties"].is_object(), "{name}: {}", doc["components"]["schemas"][name]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_with_the_methods_it_serves() {
    let (gateway, sub, _backend) = gateway().await;
    let doc = document(&gateway).await;
    let base = gateway.management();
    let admin = Admin::new(&base, TOKEN);
    let before = (admin.get("/api/config").await.body, admin.get("/api/subscriptions").await.body);
    let http = http();
    let mut probed = 0;
    let mut read = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
        let any_op = item.as_object().unwrap().values().next().unwrap();
        for concrete in concrete(path, any_op, &sub) {
            for method in METHODS {
                // No body and no If-Match: a change is refused (422, 428) before it changes anything.
                let r = http.request(method.parse().unwrap(), format!("{base}{concrete}")).bearer_auth(TOKEN).send().await.unwrap();
                let status = r.status().as_u16();
                let served = status != 405;
                assert_eq!(served, documented.contains(method), "{method} {concrete} answers {status}; the document lists {documented:?} for {path}");
                if status == 405 {
                    assert_eq!(r.headers()["content-type"], "application/problem+json", "{method} {concrete}");
                }
                if method == "GET" && served {
                    assert_eq!(status, 200, "GET {concrete}");
                    let media = r.headers()["content-type"].to_str().unwrap().to_owned();
                    if media.starts_with("application/json") {
                        let body: Value = r.json().await.unwrap();
                        let pointer = format!("/paths/{}/get/responses/200/content/application~1json/schema", escape(path));
                        let validator = schema_at(&doc, &pointer);
                        let errors: Vec<String> = validator.iter_errors(&body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
                        assert!(errors.is_empty(), "GET {concrete} answers what its schema refuses: {errors:?}\n{body}");
                        read.insert(path.clone());
                    }
                }
                probed += 1;
            }
        }
    }
    assert!(probed >= 5 * 27, "{probed} requests");
    assert!(read.len() >= 12, "{read:?}");
    let after = (admin.get("/api/config").await.body, admin.get("/api/subscriptions").await.body);
    assert_eq!(before, after, "probing changed nothing");
    // The schemas do refuse what does not fit them.
    let list = schema_at(&doc, "/paths/~1api~1servers/get/responses/200/content/application~1json/schema");
    assert!(!list.is_valid(&json!({ "servers": [{ "name": 1 }] })));

    // What no route serves is a 404 problem, with any method.
    for method in METHODS {
        let r = http.request(method.parse().unwrap(), format!("{base}/api/nothing/here")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 404, "{method}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["type"], "urn:tollgate:problem:not-found", "{problem}");
        let errors: Vec<String> = schema_at(&doc, "/components/schemas/Problem").iter_errors(&problem).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
