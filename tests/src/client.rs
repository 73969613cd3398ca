//! MCP clients: the official Rust SDK (`rmcp`) client over Streamable HTTP, with a handler that
//! answers sampling requests and keeps every notification it gets, so a test can check that
//! each client saw its own messages and no one else's.
//!
//! Sampling and logging belong to the session-based protocol revisions the gateway carries; the
//! SDK marks them deprecated in favour of the stateless revision, hence the `allow`.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue};
use futures::stream::BoxStream;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ErrorData, LoggingMessageNotificationParam,
    ProgressNotificationParam, SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

/// What a client received besides answers.
#[derive(Default)]
pub struct Received {
    pub progress: Mutex<Vec<ProgressNotificationParam>>,
    pub logs: Mutex<Vec<LoggingMessageNotificationParam>>,
    pub sampling_questions: Mutex<Vec<String>>,
}

/// The client side: answers sampling with `answer to: {question}` and records notifications.
#[derive(Clone)]
pub struct Handler {
    received: Arc<Received>,
}

impl ClientHandler for Handler {
    async fn create_message(&self, params: CreateMessageRequestParams, _ctx: RequestContext<RoleClient>) -> Result<CreateMessageResult, ErrorData> {
        let question = params.messages.first().and_then(|m| m.content.first()).and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
        self.received.sampling_questions.lock().expect("lock").push(question.clone());
        Ok(CreateMessageResult::new(SamplingMessage::assistant_text(format!("answer to: {question}")), "test-model".into()))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        self.received.progress.lock().expect("lock").push(params);
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _ctx: NotificationContext<RoleClient>) {
        self.received.logs.lock().expect("lock").push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder().enable_sampling().build();
        ClientConfig::new(capabilities, rmcp::model::Implementation::new("tollgate-e2e", "0.1.0"))
    }
}

/// How the client's HTTP transport behaves.
pub struct Options {
    /// Re-initialize on its own when the server answers 404 for the session (the SDK's default).
    pub reinit_on_expired_session: bool,
}

/// An `rmcp` client connected through `/{name}/mcp`.
pub struct Client {
    service: RunningService<RoleClient, Handler>,
    received: Arc<Received>,
    sessions: Sessions,
    key: SubscriptionKey,
}

/// The subscription key sent on every request (`Ocp-Apim-Subscription-Key`), changeable while
/// the client runs, as a client rotating its key would.
#[derive(Clone, Default)]
struct SubscriptionKey(Arc<Mutex<Option<String>>>);

impl SubscriptionKey {
    fn add_to(&self, mut headers: HashMap<HeaderName, HeaderValue>) -> HashMap<HeaderName, HeaderValue> {
        if let Some(k) = self.0.lock().expect("lock").as_deref() {
            headers.insert(HeaderName::from_static("ocp-apim-subscription-key"), HeaderValue::from_str(k).expect("a key is a header value"));
        }
        headers
    }
}

/// Errors a client call can end in, kept whole for the test to inspect.
pub type CallError = ServiceError;

impl Client {
    /// Connects and initializes, with the SDK's default transport settings.
    pub async fn connect(url: &str) -> Client {
        Client::try_connect(url, Options { reinit_on_expired_session: true }).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    pub async fn try_connect(url: &str, options: Options) -> Result<Client, rmcp::service::ClientInitializeError> {
        Client::try_connect_with_key(url, options, None).await
    }

    /// Connects presenting a subscription key.
    pub async fn connect_with_key(url: &str, key: &str) -> Client {
        Client::try_connect_with_key(url, Options { reinit_on_expired_session: true }, Some(key)).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    pub async fn try_connect_with_key(url: &str, options: Options, key: Option<&str>) -> Result<Client, rmcp::service::ClientInitializeError> {
        let sessions = Sessions::default();
        let key = SubscriptionKey(Arc::new(Mutex::new(key.map(str::to_owned))));
        let http = Observed {
            inner: reqwest013::Client::builder().pool_max_idle_per_host(0).no_proxy().build().expect("http client"),
            sessions: sessions.clone(),
            key: key.clone(),
        };
        let config = StreamableHttpClientTransportConfig::with_uri(url).reinit_on_expired_session(options.reinit_on_expired_session);
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let received = Arc::new(Received::default());
        let handler = Handler { received: received.clone() };
        let service = crate::within(20, "initialize", handler.serve(transport)).await?;
        Ok(Client { service, received, sessions, key })
    }

    /// From the next request on, presents this subscription key instead.
    pub fn use_key(&self, key: &str) {
        *self.key.0.lock().expect("lock") = Some(key.to_owned());
    }

    /// Names of the tools the server lists.
    pub async fn list_tools(&self) -> Vec<String> {
        let tools = crate::within(20, "tools/list", self.service.peer().list_all_tools()).await.expect("tools/list");
        tools.into_iter().map(|t| t.name.to_string()).collect()
    }

    /// Calls a tool; its text answer, or the error the call ended in.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, CallError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(args) = arguments {
            params = params.with_arguments(args);
        }
        let result = crate::within(30, &format!("tools/call {name}"), self.service.peer().call_tool(params)).await?;
        let text: Vec<String> = result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect();
        if result.is_error == Some(true) {
            panic!("tool {name} reported an error: {text:?}");
        }
        Ok(text.join(""))
    }

    /// Calls `whoami`: which backend (or version) serves this session.
    pub async fn whoami(&self) -> String {
        self.call_tool("whoami", serde_json::json!({})).await.expect("whoami answers")
    }

    /// Which backend a new session at `url` reaches.
    pub async fn reached(url: &str) -> String {
        let c = Client::connect(url).await;
        let who = c.whoami().await;
        c.close().await;
        who
    }

    /// Calls `echo` and returns its answer.
    pub async fn echo(&self, text: &str) -> String {
        self.call_tool("echo", serde_json::json!({ "text": text })).await.unwrap_or_else(|e| panic!("echo {text}: {e}"))
    }

    /// Progress notifications this client received.
    pub fn progress(&self) -> Vec<ProgressNotificationParam> {
        self.received.progress.lock().expect("lock").clone()
    }

    /// The messages of the progress notifications this client received, once there are at least
    /// `count` of them, in the order of their progress values. The SDK hands each notification to
    /// the handler on a task of its own, so they may land out of order, and just after the answer.
    pub async fn progress_messages(&self, count: usize) -> Vec<String> {
        let enough = || self.received.progress.lock().expect("lock").len() >= count;
        crate::eventually(10, &format!("{count} progress notifications arrive"), enough).await;
        let mut progress = self.progress();
        progress.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        progress.into_iter().filter_map(|p| p.message).collect()
    }

    /// Logging notifications this client received, as their data's text.
    pub fn logs(&self) -> Vec<String> {
        self.received.logs.lock().expect("lock").iter().map(|l| l.data.as_str().map(str::to_owned).unwrap_or_else(|| l.data.to_string())).collect()
    }

    /// Questions the server asked this client's model.
    pub fn sampling_questions(&self) -> Vec<String> {
        self.received.sampling_questions.lock().expect("lock").clone()
    }

    /// Every `Mcp-Session-Id` the gateway issued to this client, oldest first.
    pub fn session_ids(&self) -> Vec<String> {
        self.sessions.0.lock().expect("lock").clone()
    }

    /// The current session id.
    pub fn session_id(&self) -> String {
        self.session_ids().last().cloned().expect("the client has a session")
    }

    /// Ends the session: the SDK sends DELETE for it.
    pub async fn close(self) {
        let _ = crate::within(20, "close the client", self.service.cancel()).await;
    }
}

/// The session ids seen in the gateway's answers.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<Vec<String>>>);

impl Sessions {
    fn note(&self, id: Option<&String>) {
        if let Some(id) = id {
            let mut ids = self.0.lock().expect("lock");
            if ids.last() != Some(id) {
                ids.push(id.clone());
            }
        }
    }
}

/// The SDK's own reqwest client, observed: every call goes to it unchanged, and the session ids
/// in its answers are noted.
#[derive(Clone)]
struct Observed {
    inner: reqwest013::Client,
    sessions: Sessions,
    key: SubscriptionKey,
}

type HttpError = StreamableHttpError<reqwest013::Error>;

impl StreamableHttpClient for Observed {
    type Error = reqwest013::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let r = self.inner.post_message(uri, message, session_id, auth_header, self.key.add_to(custom_headers)).await?;
        self.note(&r);
        Ok(r)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let r = self.inner.post_message_with_max_sse_event_size(uri, message, session_id, auth_header, self.key.add_to(custom_headers), max).await?;
        self.note(&r);
        Ok(r)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        self.inner.delete_session(uri, session_id, auth_header, self.key.add_to(custom_headers)).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<sse_stream::Sse, SseError>>, HttpError> {
        self.inner.get_stream(uri, session_id, last_event_id, auth_header, self.key.add_to(custom_headers)).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max: usize,
    ) -> Result<BoxStream<'static, Result<sse_stream::Sse, SseError>>, HttpError> {
        self.inner.get_stream_with_max_sse_event_size(uri, session_id, last_event_id, auth_header, self.key.add_to(custom_headers), max).await
    }
}

impl Observed {
    fn note(&self, r: &StreamableHttpPostResponse) {
        match r {
            StreamableHttpPostResponse::Json(_, id) | StreamableHttpPostResponse::Sse(_, id) => self.sessions.note(id.as_ref()),
            _ => {}
        }
    }
}
