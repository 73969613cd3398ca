//! `tollgate policy test COMPONENT --cases FILE`: runs a policy component (a `.wasm` file, or a
//! standard policy by name) against the exchanges
//! a cases file describes, offline, in the runtime and under the limits the gateway uses, and
//! compares each verdict with the one expected.
//!
//! ```yaml
//! config: { blocked: [delete_file] }     # the binding's config, for every case
//! secrets: { api_key: "test-value" }     # granted secrets, by name
//! cases:
//!   - name: a blocked tool is refused
//!     request: { method: tools/call, params: { name: delete_file, arguments: {} } }
//!     expect: { verdict: deny, status: 403, code: -32001 }
//!   - name: it is hidden from the list
//!     request: { method: tools/list }
//!     answer: { tools: [{ name: read_file }, { name: delete_file }] }   # the backend's result
//!     expect: { verdict: continue, tools: [read_file] }
//!   - name: state before and after
//!     request: { method: tools/call, params: { name: read_file } }
//!     state: { before: { calls: "2" }, after: { calls: "3" } }
//!     expect: { verdict: continue }
//!   - name: a progress message the backend streams is passed, a sampling request dropped
//!     request: { method: tools/call, params: { name: read_file } }
//!     messages:
//!       - { method: notifications/progress, params: { progressToken: 1, progress: 1 } }
//!       - { id: 7, method: sampling/createMessage, params: {} }
//!     expect: { verdict: continue, messages: [{ verdict: pass }, { verdict: drop, code: -32003 }] }
//! ```
//!
//! Outbound HTTP never leaves the process: `fetch:` (for every case, or per case) gives the
//! answers, and a request with none fails as a network error would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

mod expect;
mod recorded;

pub use expect::{Expect, MessageExpect, Verdict};
pub use recorded::FetchAnswer;

use crate::config::{Config, PolicyLimits};
use crate::mcp::jsonrpc::{Id, Message};
use crate::policy::{Admission, Caller, Chain, Route};
use expect::want;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    /// The binding's config for every case (a case may give its own).
    #[serde(default = "empty")]
    pub config: Value,
    /// Secrets granted to the binding, by the name the policy asks for.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Option<PolicyLimits>,
    /// The hosts the binding may fetch from (its `allow_hosts`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Answers to the binding's outbound HTTP requests, for every case.
    #[serde(default)]
    pub fetch: Vec<FetchAnswer>,
    pub cases: Vec<Case>,
}

fn empty() -> Value {
    json!({})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// A request from the client: `{ method, params }`.
    #[serde(default)]
    pub request: Option<Value>,
    /// A notification from the client: `{ method, params }`.
    #[serde(default)]
    pub notification: Option<Value>,
    #[serde(default)]
    pub caller: CaseCaller,
    #[serde(default = "default_server")]
    pub server: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
    /// The backend's `result`, for the response phase (a request that continues).
    #[serde(default)]
    pub answer: Option<Value>,
    /// The backend's error instead of a result: `{ code, message }`.
    #[serde(default)]
    pub answer_error: Option<Value>,
    /// Messages the backend streams while the request is open (progress, logging, its own
    /// requests), each through the message phase in turn.
    #[serde(default)]
    pub messages: Vec<Value>,
    /// Answers to outbound HTTP requests in this case, before the file's.
    #[serde(default)]
    pub fetch: Vec<FetchAnswer>,
    /// The binding's state before the case runs (nothing else is in it), and the values
    /// expected after it (`null`: absent).
    #[serde(default)]
    pub state: CaseState,
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseState {
    #[serde(default)]
    pub before: BTreeMap<String, String>,
    #[serde(default)]
    pub after: BTreeMap<String, Option<String>>,
}

fn default_server() -> String {
    "test".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseCaller {
    /// The client's address, as the trusted proxies gave it.
    #[serde(default)]
    pub ip: Option<std::net::IpAddr>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Attributes the gateway sets before the chain (`subscription`, `product`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// What running the cases found: the names that failed, with why.
pub struct Report {
    pub passed: usize,
    pub failed: Vec<(String, String)>,
}

impl Cases {
    pub fn read(file: &Path) -> Result<Cases, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let de = serde_norway::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}: {}", file.display(), e.path(), e.inner()))
    }
}

/// Runs every case; a case whose chain does not load fails with the loader's words.
pub async fn run(component: &Path, cases: &Cases) -> Report {
    let scratch = std::env::temp_dir().join(format!("tollgate-cases-{}", std::process::id()));
    let mut report = Report { passed: 0, failed: Vec::new() };
    for case in &cases.cases {
        let answers = case.fetch.iter().chain(&cases.fetch).map(FetchAnswer::recorded).collect::<Result<Vec<_>, _>>();
        let answers = match answers {
            Ok(a) => a,
            Err(why) => {
                report.failed.push((case.name.clone(), why));
                continue;
            }
        };
        crate::policy::outbound::answer_from(Some(answers));
        match one(component, cases, case, &scratch).await {
            Ok(()) => report.passed += 1,
            Err(why) => report.failed.push((case.name.clone(), why)),
        }
    }
    crate::policy::outbound::answer_from(None);
    let _ = std::fs::remove_dir_all(&scratch);
    report
}

async fn one(component: &Path, cases: &Cases, case: &Case, scratch: &Path) -> Result<(), String> {
    let (chain, namespace) = chain(component, cases, case, scratch).await?;
    // The process's store, as a gateway without `state:` has it: emptied, then seeded.
    let store = crate::policy::state::stores().local.clone();
    store.clear();
    let key = |k: &str| format!("{namespace}\u{0}{k}");
    for (k, v) in &case.state.before {
        crate::policy::StateStore::set(&*store, &key(k), v.clone().into_bytes(), None).await.map_err(|e| e.to_string())?;
    }
    verdict(chain, case).await?;
    for (k, want) in &case.state.after {
        let got = crate::policy::StateStore::get(&*store, &key(k)).await.map_err(|e| e.to_string())?.map(|b| String::from_utf8_lossy(&b).into_owned());
        if &got != want {
            return Err(format!("state {k}: expected {want:?}, got {got:?}"));
        }
    }
    Ok(())
}

async fn verdict(chain: Arc<Chain>, case: &Case) -> Result<(), String> {
    let msg = message(case)?;
    let mut headers = hyper::HeaderMap::new();
    for (k, v) in &case.caller.headers {
        let name = hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("caller.headers: '{k}' is not a header name"))?;
        headers.append(name, v.parse().map_err(|_| format!("caller.headers.{k}: not a header value"))?);
    }
    let ip = case.caller.ip.or(Some([127, 0, 0, 1].into()));
    let caller = Arc::new(Caller { headers, addr: ip.map(|ip| (ip, 40000).into()), ip });
    let route = Route {
        server: case.server.as_str().into(),
        version: case.version.as_deref().map(Into::into),
        session_id: Some("cases-session".into()),
        protocol_version: Some("2025-11-25".into()),
        resource: format!("http://127.0.0.1:8080/{}/mcp", case.server).into(),
        attributes: case.caller.attributes.clone(),
    };
    let id = msg.id.clone();
    let e = &case.expect;
    match chain.admit(msg, route, caller, None).await {
        Admission::Deny(r) => {
            want(e.verdict, Verdict::Deny, &format!("refused: {} ({})", r.message, r.code))?;
            // As the client would see it: the one mapping the gateway answers with.
            let wire = crate::mcp::error::GatewayError::Denied(Box::new(r.clone())).wire(id.is_some());
            let status = wire.status.as_u16();
            if e.status.is_some_and(|s| s != status) || e.code.is_some_and(|c| c != r.code) {
                return Err(format!(
                    "refused with status {status} and code {}, expected{}{} ({})",
                    r.code,
                    e.status.map(|s| format!(" status {s}")).unwrap_or_default(),
                    e.code.map(|c| format!(" code {c}")).unwrap_or_default(),
                    r.message
                ));
            }
            if let Some(m) = e.message.as_deref().filter(|m| !r.message.contains(m)) {
                return Err(format!("refused with the message {:?}, expected one containing {m:?}", r.message));
            }
            expect::headers_match(&e.headers, &wire.headers)
        }
        Admission::Drop => want(e.verdict, Verdict::Drop, "dropped"),
        Admission::Answer { msg, client, .. } => {
            want(e.verdict, Verdict::Respond, &format!("answered: {}", Value::Object(msg.body.clone())))?;
            expect::check_answer(e, &msg.body, &client)
        }
        Admission::Forward { msg, client, trail, .. } => {
            want(e.verdict, Verdict::Continue, &format!("forwarded: {}", Value::Object(msg.body.clone())))?;
            if let Some(p) = &e.params {
                expect::contains("params", p, msg.body.get("params").unwrap_or(&Value::Null))?;
            }
            expect::messages(e, &case.messages, trail.as_ref().and_then(crate::policy::Trail::relay)).await?;
            let id = id.unwrap_or(Id::Num(1));
            let answer = match (&case.answer, &case.answer_error) {
                (Some(result), None) => Message::result(id, result.clone()),
                (None, Some(err)) => {
                    let code = err.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()).ok_or("answer_error: an integer `code`")?;
                    Message::error(Some(id), code, err.get("message").and_then(Value::as_str).unwrap_or_default(), err.get("data").cloned())
                }
                (Some(_), Some(_)) => return Err("give at most one of `answer` and `answer_error`".into()),
                (None, None) => {
                    return match (&e.result, &e.tools) {
                        (None, None) => expect::headers_match(&e.headers, &client),
                        _ => Err("`expect` names a result, but the case gives no backend `answer`".into()),
                    };
                }
            };
            let mut client = client;
            let answer = crate::policy::Trail::settle_into(trail, answer, &mut client, None).await;
            expect::check_answer(e, &answer.body, &client)
        }
    }
}

fn message(case: &Case) -> Result<Message, String> {
    let (body, request) = match (&case.request, &case.notification) {
        (Some(r), None) => (r, true),
        (None, Some(n)) => (n, false),
        _ => return Err("give exactly one of `request` and `notification`".into()),
    };
    let method = body.get("method").and_then(Value::as_str).ok_or("the message has no `method`")?;
    let params = body.get("params").cloned().unwrap_or_else(empty);
    Ok(if request { Message::request(Id::Num(1), method, params) } else { Message::notification(method, params) })
}

/// The chain of one binding of `component`, as a gateway with this config would load it, and
/// the binding's state namespace.
async fn chain(component: &Path, cases: &Cases, case: &Case, scratch: &Path) -> Result<(Arc<Chain>, String), String> {
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let mut secrets = serde_json::Map::new();
    for (name, value) in &cases.secrets {
        let file = scratch.join(format!("secret-{name}"));
        std::fs::write(&file, value).map_err(|e| e.to_string())?;
        secrets.insert(name.clone(), json!({ "file": file }));
    }
    // A file is a component; a bare name, one of the standard policies the binary carries.
    let policy: PathBuf = match std::fs::canonicalize(component) {
        Ok(path) => path,
        Err(_) if component.components().count() == 1 && component.extension().is_none() => component.to_owned(),
        Err(e) => return Err(format!("{}: {e}", component.display())),
    };
    let mut binding = json!({
        "policy": policy,
        "config": case.config.clone().unwrap_or_else(|| cases.config.clone()),
        "secrets": secrets,
        "allow_hosts": cases.allow_hosts,
    });
    if let Some(l) = &cases.limits {
        binding["limits"] = serde_json::to_value(l).expect("limits serialize");
    }
    let mut server = json!({ "name": case.server, "backend": { "http": "http://127.0.0.1:9/mcp" } });
    match &case.version {
        Some(v) => server["versions"] = json!([{ "name": v, "backend": { "http": "http://127.0.0.1:9/mcp" }, "policies": [binding] }]),
        None => server["policies"] = json!([binding]),
    }
    let text = serde_json::to_string(&json!({ "servers": [server] })).expect("a config serializes");
    let file = scratch.join("cases-config.yaml");
    std::fs::write(&file, &text).map_err(|e| e.to_string())?;
    let config = Config::load(&file).map_err(|e| e.to_string())?;
    let loaded = crate::policy::load(&config, &file).await.map_err(|e| e.to_string())?;
    let key = crate::config::version_key(&case.server, case.version.as_deref());
    let chain = loaded.chains.get(&key).cloned().ok_or_else(|| format!("no chain was loaded for '{key}'"))?;
    let name = chain.declared.first().map(|b| b.name().to_owned()).unwrap_or_default();
    Ok((chain, format!("{key}/{name}")))
}
