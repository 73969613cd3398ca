//! The exchange a policy reads: the client's message, where it came from, the attributes
//! earlier policies set, and in the response phase the answer. Shared by `Arc` between the
//! steps of a chain, so a step costs no copy; accessors copy only what the guest asks for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::HeaderMap;
use serde_json::Value;
use wasmtime::component::Resource;

use super::bindings::{ExchangeHost, HostExchange, Phase, RequestId, RpcError, TypesHost, request_id, rpc_error};
use super::engine::Host;
use crate::mcp::jsonrpc::Message;

/// The guest's handle on the exchange. A store holds exactly one exchange, so the handle
/// carries no data: the accessors read [`View`] from the store.
pub struct ExchangeRep;

/// Who sent a message: the parts of the HTTP request a policy may read.
#[derive(Debug, Default)]
pub struct Caller {
    pub headers: HeaderMap,
    /// The TCP peer.
    pub addr: Option<SocketAddr>,
    /// The client, through the trusted proxies (`client_address`).
    pub ip: Option<std::net::IpAddr>,
}

/// The client's message and its context, after the changes of the policies so far.
#[derive(Debug, Clone)]
pub struct Call {
    pub msg: Message,
    pub server: Arc<str>,
    /// The server version serving the exchange, when the server has versions.
    pub version: Option<Arc<str>>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    /// The server's canonical URL.
    pub resource: Arc<str>,
    pub caller: Arc<Caller>,
}

pub type Attributes = BTreeMap<String, String>;

/// What one policy invocation sees.
#[derive(Debug, Clone)]
pub struct View {
    pub phase: Phase,
    pub call: Arc<Call>,
    pub attributes: Arc<Attributes>,
    pub outcome: Option<Arc<Message>>,
}

impl View {
    /// What an idle instance holds in place of the exchange it last saw: none.
    pub fn blank() -> View {
        static BLANK: std::sync::OnceLock<Arc<Call>> = std::sync::OnceLock::new();
        let call = BLANK.get_or_init(|| {
            Arc::new(Call {
                msg: Message::notification("tollgate/idle", Value::Object(Default::default())),
                server: "".into(),
                version: None,
                session_id: None,
                protocol_version: None,
                resource: "".into(),
                caller: Arc::new(Caller::default()),
            })
        });
        View { phase: Phase::Request, call: call.clone(), attributes: Default::default(), outcome: None }
    }
}

impl TypesHost for Host {}
impl ExchangeHost for Host {}

type R<T> = wasmtime::Result<T>;

impl HostExchange for Host {
    fn phase(&mut self, _: Resource<ExchangeRep>) -> R<Phase> {
        Ok(self.view.phase)
    }
    fn method(&mut self, _: Resource<ExchangeRep>) -> R<String> {
        Ok(self.view.call.msg.method().unwrap_or_default().to_owned())
    }
    fn id(&mut self, _: Resource<ExchangeRep>) -> R<Option<RequestId>> {
        Ok(self.view.call.msg.id.as_ref().map(request_id))
    }
    fn target(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.msg.target().map(str::to_owned))
    }
    fn params(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.msg.params().map(Value::to_string))
    }
    fn protocol_version(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.protocol_version.clone())
    }
    fn session_id(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.session_id.clone())
    }
    fn server(&mut self, _: Resource<ExchangeRep>) -> R<String> {
        Ok(self.view.call.server.to_string())
    }
    fn resource_url(&mut self, _: Resource<ExchangeRep>) -> R<String> {
        Ok(self.view.call.resource.to_string())
    }
    fn server_version(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.version.as_deref().map(str::to_owned))
    }
    fn client_addr(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.caller.addr.map(|a| a.to_string()))
    }
    fn client_ip(&mut self, _: Resource<ExchangeRep>) -> R<Option<String>> {
        Ok(self.view.call.caller.ip.map(|a| a.to_string()))
    }
    /// Every line of a repeated header, joined with `, ` as HTTP combines them, so a policy
    /// never reads the first line alone.
    fn header(&mut self, _: Resource<ExchangeRep>, name: String) -> R<Option<String>> {
        let mut lines = self.view.call.caller.headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok());
        let first = lines.next();
        Ok(first.map(|f| lines.fold(f.to_owned(), |all, l| all + ", " + l)))
    }
    fn attribute(&mut self, _: Resource<ExchangeRep>, key: String) -> R<Option<String>> {
        Ok(self.view.attributes.get(&key).cloned())
    }
    fn outcome(&mut self, _: Resource<ExchangeRep>) -> R<Option<Result<String, RpcError>>> {
        let Some(m) = &self.view.outcome else { return Ok(None) };
        Ok(match (m.body.get("result"), m.body.get("error")) {
            (Some(r), _) => Some(Ok(r.to_string())),
            (None, Some(e)) => Some(Err(rpc_error(e))),
            _ => None,
        })
    }
    fn drop(&mut self, _: Resource<ExchangeRep>) -> R<()> {
        Ok(())
    }
}
