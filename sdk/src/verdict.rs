//! Building verdicts: continue with changes, deny with the gateway's usual errors, or respond.

use serde_json::Value;

use crate::{MessageVerdict, Mutation, Rejection, RpcError, Verdict};

/// JSON-RPC codes the gateway uses, so clients see one vocabulary: the gateway's own list,
/// defined once in `tollgate-vocabulary`.
pub use tollgate_vocabulary::code;

impl Verdict {
    /// Go on unchanged.
    pub fn next() -> Verdict {
        Verdict::Continue(Mutation::new())
    }
    /// Stop with this error.
    pub fn deny(rejection: Rejection) -> Verdict {
        Verdict::Deny(rejection)
    }
    /// Answer with this result without calling the backend (in the response phase: replace the result).
    pub fn respond(result: &Value) -> Verdict {
        Verdict::Respond(result.to_string())
    }
}

impl MessageVerdict {
    /// Deliver this message instead: same kind, method and id as the original, or the gateway
    /// treats the policy as failed.
    pub fn replace(message: &Value) -> MessageVerdict {
        MessageVerdict::Replace(message.to_string())
    }
    /// Do not deliver the message. If it is a request of the backend's, the backend gets
    /// this error as its answer.
    pub fn drop_with(code: i32, message: &str) -> MessageVerdict {
        MessageVerdict::Drop(Some(RpcError { code, message: message.to_owned(), data: None }))
    }
}

impl From<Mutation> for Verdict {
    fn from(m: Mutation) -> Verdict {
        Verdict::Continue(m)
    }
}

impl From<Rejection> for Verdict {
    fn from(r: Rejection) -> Verdict {
        Verdict::Deny(r)
    }
}

impl Mutation {
    /// No changes yet.
    pub fn new() -> Mutation {
        Mutation { params: None, set_headers: Vec::new(), remove_headers: Vec::new(), attributes: Vec::new(), client_headers: Vec::new() }
    }
    /// Replace the params (request phase) or the result (response phase).
    pub fn params(mut self, params: &Value) -> Mutation {
        self.params = Some(params.to_string());
        self
    }
    /// Send this header to the backend with this request.
    pub fn set_header(mut self, name: &str, value: &str) -> Mutation {
        self.set_headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// Leave a configured backend header out of this request.
    pub fn remove_header(mut self, name: &str) -> Mutation {
        self.remove_headers.push(name.to_owned());
        self
    }
    /// Record a fact for later policies and the response phase.
    pub fn attribute(mut self, key: &str, value: &str) -> Mutation {
        self.attributes.push((key.to_owned(), value.to_owned()));
        self
    }
    /// Add a header to the client's HTTP response (Streamable HTTP), e.g. the calls left in a
    /// quota. Framing and session headers (`content-type`, `mcp-session-id`, ...) are refused.
    pub fn client_header(mut self, name: &str, value: &str) -> Mutation {
        self.client_headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl Default for Mutation {
    fn default() -> Self {
        Mutation::new()
    }
}

impl Rejection {
    /// A JSON-RPC error with no particular HTTP status (200 for a request).
    pub fn new(code: i32, message: &str) -> Rejection {
        Rejection { error: RpcError { code, message: message.to_owned(), data: None }, http_status: None, headers: Vec::new() }
    }
    /// 401: the caller must authenticate. Add `www-authenticate` with [`Rejection::header`].
    pub fn unauthorized(message: &str) -> Rejection {
        Rejection::new(code::UNAUTHORIZED, message).status(401)
    }
    /// 403: the caller may not do this.
    pub fn forbidden(message: &str) -> Rejection {
        Rejection::new(code::FORBIDDEN, message).status(403)
    }
    /// 429 with `Retry-After` in seconds.
    pub fn rate_limited(message: &str, retry_after_s: u64) -> Rejection {
        Rejection::new(code::RATE_LIMITED, message).status(429).header("retry-after", &retry_after_s.to_string())
    }
    /// -32602: the params are not acceptable.
    pub fn invalid_params(message: &str) -> Rejection {
        Rejection::new(code::INVALID_PARAMS, message)
    }
    /// Sets the HTTP status.
    pub fn status(mut self, status: u16) -> Rejection {
        self.http_status = Some(status);
        self
    }
    /// Adds an HTTP response header.
    pub fn header(mut self, name: &str, value: &str) -> Rejection {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// Sets the JSON-RPC error's `data`.
    pub fn data(mut self, data: &Value) -> Rejection {
        self.error.data = Some(data.to_string());
        self
    }
}
