//! `GET /api/servers/{name}/tools`: the tools a server's backend offers, asked by the
//! gateway itself, so the console can show them (and the playground build its forms) for a
//! server whose chain would refuse an anonymous caller.
//!
//! The gateway opens an upstream session of its own, as for a client: `initialize`, then
//! `tools/list` page by page, then closes it. The backend's configured headers go with it; the
//! chain does not run (this is the operator's view of the backend, not a client's). A listing
//! is kept for [`FRESH`] so a console polling several pages does not open a session each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Shared;
use super::api_error::ApiError;
use crate::backend::{Backend, Deliver};
use crate::mcp::error::BackendError;
use crate::mcp::jsonrpc::{Id, Kind, Message};

/// How long a listing is served from memory.
const FRESH: Duration = Duration::from_secs(10);
/// Pages of `tools/list` followed at most: a backend whose cursor never ends stops here.
const MAX_PAGES: usize = 50;

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsQuery {
    /// One version of a server with versions (the default version when absent).
    version: Option<String>,
    /// `true` asks the backend again rather than answering from the last listing.
    #[serde(default)]
    refresh: bool,
}

/// The tools a backend offers, and whether it answered.
#[derive(Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Listing {
    server: String,
    version: Option<String>,
    /// Whether the backend answered `initialize` and `tools/list`.
    reachable: bool,
    /// Why it did not, when it did not.
    error: Option<String>,
    /// The tools as the backend describes them (`name`, `description`, `inputSchema`, ...).
    tools: Vec<Value>,
}

/// Listings by `server@version`, with when they were taken.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<String, (Instant, Listing)>>);

pub async fn tools(State(m): State<Shared>, Path(name): Path<String>, Query(q): Query<ToolsQuery>) -> Result<Json<Listing>, ApiError> {
    let server = super::named_server(&m, &name)?;
    let version = match (&q.version, server.routing()) {
        (Some(v), _) => server.version(v).cloned().ok_or_else(|| ApiError::NotFound(format!("server '{name}' has no version '{v}'")))?,
        (None, Some(r)) => server.version(&r.default_version).cloned().ok_or_else(|| ApiError::Internal("the default version is missing".into()))?,
        (None, None) => server.all()[0].clone(),
    };
    let key = version.key();
    if !q.refresh
        && let Some((at, listing)) = m.catalog.0.lock().expect("catalog lock").get(&key)
        && at.elapsed() < FRESH
    {
        return Ok(Json(listing.clone()));
    }
    let (reachable, error, tools) = match list(&version.backend, version.timeout).await {
        Ok(tools) => (true, None, tools),
        Err(e) => (false, Some(e.to_string()), Vec::new()),
    };
    let listing = Listing { server: name, version: version.version.clone(), reachable, error, tools };
    m.catalog.0.lock().expect("catalog lock").insert(key, (Instant::now(), listing.clone()));
    Ok(Json(listing))
}

/// Answers to the requests this listing sent, by id.
#[derive(Default)]
struct Answers(Mutex<HashMap<Id, oneshot::Sender<Message>>>);

impl Deliver for Answers {
    fn deliver(&self, msg: Message, _related: Option<Id>) -> BoxFuture<'_, ()> {
        if msg.kind == Kind::Response
            && let Some(id) = &msg.id
            && let Some(tx) = self.0.lock().expect("answers lock").remove(id)
        {
            let _ = tx.send(msg);
        }
        Box::pin(async {})
    }

    fn closed(&self, _cause: BackendError) {
        // Dropping the senders wakes every request still waiting, as a closed session.
        self.0.lock().expect("answers lock").clear();
    }
}

/// Opens a session on `backend`, lists its tools, and closes it.
async fn list(backend: &Backend, timeout: Duration) -> Result<Vec<Value>, BackendError> {
    let answers = Arc::new(Answers::default());
    let upstream = backend.connect(answers.clone()).await?;
    let ask = async |id: i64, method: &str, params: Value| -> Result<Value, BackendError> {
        let (tx, rx) = oneshot::channel();
        answers.0.lock().expect("answers lock").insert(Id::Num(id), tx);
        upstream.send(&Message::request(Id::Num(id), method, params)).await?;
        let answer = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| BackendError::Timeout(timeout))?
            .map_err(|_| BackendError::Closed("the session ended before it answered".into()))?;
        match (answer.body.get("result"), answer.body.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(e)) => Err(BackendError::Protocol(format!("{method} failed: {e}"))),
            (None, None) => Err(BackendError::Protocol(format!("{method}: an answer with neither result nor error"))),
        }
    };
    let listed = async {
        let client = json!({ "name": "tollgate-console", "version": env!("CARGO_PKG_VERSION") });
        ask(1, "initialize", json!({ "protocolVersion": crate::mcp::headers::SUPPORTED_VERSIONS[0], "capabilities": {}, "clientInfo": client })).await?;
        upstream.send(&Message::notification("notifications/initialized", json!({}))).await?;
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for page in 0..MAX_PAGES {
            let params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            let r = ask(2 + page as i64, "tools/list", params).await?;
            tools.extend(r.get("tools").and_then(Value::as_array).cloned().unwrap_or_default());
            cursor = r.get("nextCursor").filter(|c| !c.is_null()).cloned();
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }
    .await;
    upstream.close().await;
    listed
}
