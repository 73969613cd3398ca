//! The exchange as a policy reads it: each accessor asks the host, so only what is read is copied.

use serde::de::DeserializeOwned;

use crate::bindings::tollgate::policy::exchange::Exchange as Raw;
use crate::{Phase, RequestId, RpcError};

/// One MCP exchange: the client's message, its context, and in the response phase the answer.
pub struct Exchange<'a> {
    raw: &'a Raw,
}

impl<'a> Exchange<'a> {
    pub(crate) fn new(raw: &'a Raw) -> Self {
        Exchange { raw }
    }

    /// Request, response or message phase.
    pub fn phase(&self) -> Phase {
        self.raw.phase()
    }
    /// The client's JSON-RPC method, such as `tools/call`.
    pub fn method(&self) -> String {
        self.raw.method()
    }
    /// The request id; `None` for a notification.
    pub fn id(&self) -> Option<RequestId> {
        self.raw.id()
    }
    /// The tool or prompt name, or the resource URI, the message is about.
    pub fn target(&self) -> Option<String> {
        self.raw.target()
    }
    /// The params as JSON text, after earlier policies changed them.
    pub fn params_json(&self) -> Option<String> {
        self.raw.params()
    }
    /// The params parsed into `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<Option<T>, String> {
        match self.raw.params() {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| e.to_string()),
        }
    }
    /// The MCP protocol version of the session, once known.
    pub fn protocol_version(&self) -> Option<String> {
        self.raw.protocol_version()
    }
    /// The gateway's session id.
    pub fn session_id(&self) -> Option<String> {
        self.raw.session_id()
    }
    /// The configured name of the server.
    pub fn server(&self) -> String {
        self.raw.server()
    }
    /// The version of the server serving this exchange, when the server has versions (for
    /// limits or rules that differ between `v1` and `v2`).
    pub fn server_version(&self) -> Option<String> {
        self.raw.server_version()
    }
    /// The server's canonical URL (`https://gw.example/docs/mcp`), as the gateway serves it:
    /// what tokens name as their audience (RFC 8707) and protected resource metadata describes.
    pub fn resource_url(&self) -> String {
        self.raw.resource_url()
    }
    /// The TCP peer's address, `ip:port`: a proxy's, when the gateway sits behind one.
    pub fn client_addr(&self) -> Option<String> {
        self.raw.client_addr()
    }
    /// The client's IP through the proxies the gateway trusts: what to filter or count by.
    pub fn client_ip(&self) -> Option<String> {
        self.raw.client_ip()
    }
    /// A header of the client's HTTP request (case-insensitive); the lines of a repeated
    /// header joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.header(name)
    }
    /// An attribute an earlier policy set in this exchange.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.raw.attribute(key)
    }
    /// Response phase: the result (JSON text) or the error.
    pub fn outcome(&self) -> Option<Result<String, RpcError>> {
        self.raw.outcome()
    }
}
