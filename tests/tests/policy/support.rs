//! What this suite adds to the shared harness (`tollgate_tests`): its test policies, built
//! from `tests/guests` (Rust) and `tests/guests-py` (Python), and its backend's tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_tests::recorder::Recorder;

/// A compiled test policy.
pub fn guest(name: &str) -> String {
    format!("{}/{name}.wasm", env!("TOLLGATE_GUESTS"))
}

/// componentize-py: `COMPONENTIZE_PY`, else the interop venv's (scripts/setup.sh), else on PATH.
pub fn componentize_py() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/.venv/bin/componentize-py");
    std::env::var_os("COMPONENTIZE_PY").map(PathBuf::from).unwrap_or(if venv.exists() { venv } else { PathBuf::from("componentize-py") })
}

/// componentize-js: `COMPONENTIZE_JS`, else the JavaScript kit's (scripts/setup.sh), else on PATH.
pub fn componentize_js() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kits/js/node_modules/.bin/componentize-js");
    std::env::var_os("COMPONENTIZE_JS").map(PathBuf::from).unwrap_or(if kit.exists() { kit } else { PathBuf::from("componentize-js") })
}

/// A test policy written in Python, built with componentize-py (`tests/guests-py/<name>/app.py`).
pub fn python_guest(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("guests-py").join(name);
    let out = root.join("guests-py/target").join(format!("{name}.wasm"));
    let stale = |o: &Path| match (std::fs::metadata(o).and_then(|m| m.modified()), std::fs::metadata(src.join("app.py")).and_then(|m| m.modified())) {
        (Ok(built), Ok(edited)) => built < edited,
        _ => true,
    };
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap();
    if stale(&out) {
        let tool = componentize_py();
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let status = Command::new(&tool)
            .current_dir(&src)
            .args(["-d", root.join("../wit").to_str().unwrap(), "-w", "gateway-policy", "componentize", "app", "-o", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{} not found ({e}): scripts/setup.sh installs it", tool.display()));
        assert!(status.success(), "componentize-py failed");
    }
    out.display().to_string()
}

/// `tollgate validate` on a config: its exit code and what it printed.
pub async fn validate(yaml: &str) -> (i32, String) {
    let (status, out) = tollgate_tests::gateway::run_tollgate(&["validate"], yaml).await;
    (status.code().unwrap_or(-1), out)
}

/// A recording MCP backend with five tools; `tools/call` answers with the arguments and the
/// `authorization` header it received, except `chatty`, which streams a log line before its
/// answer.
pub async fn upstream() -> Recorder {
    Recorder::start_with(answer).await
}

fn answer(h: &HeaderMap, msg: &Value) -> Response {
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    let Some(id) = msg.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
    let result = match method.as_str() {
        "initialize" => json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": {} }, "serverInfo": { "name": "upstream", "version": "1" } }),
        "tools/list" => {
            let tools: Vec<Value> =
                ["echo", "secret-tool", "cached-tool", "boom", "chatty"].iter().map(|n| json!({ "name": n, "inputSchema": { "type": "object" } })).collect();
            json!({ "tools": tools })
        }
        "tools/call" if msg["params"]["name"] == "chatty" => {
            // Answers as SSE: a logging notification first, then the result.
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/message", "params": { "level": "info", "data": "the key is swordfish" } });
            let done = json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "said it" }] } });
            let body = format!("event: message\ndata: {note}\n\nevent: message\ndata: {done}\n\n");
            return ([("content-type", "text/event-stream")], body).into_response();
        }
        "tools/call" => {
            let auth = h.get("authorization").and_then(|v| v.to_str().ok());
            json!({ "content": [{ "type": "text", "text": "ok" }], "structuredContent": { "arguments": msg["params"]["arguments"], "authorization": auth } })
        }
        _ => return Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "no such method" } })).into_response(),
    };
    let mut r = Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response();
    if method == "initialize" {
        r.headers_mut().insert("mcp-session-id", "upstream-1".parse().unwrap());
    }
    r
}
