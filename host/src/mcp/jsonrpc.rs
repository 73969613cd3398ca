//! JSON-RPC 2.0 envelopes as MCP uses them: parsed once at the edge, then passed around whole.

use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::mcp::error::GatewayError;

/// A request id. MCP allows strings and integers only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Num(i64),
    Str(String),
}

impl Id {
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => n.as_i64().map(Id::Num),
            Value::String(s) => Some(Id::Str(s.clone())),
            _ => None,
        }
    }
    pub fn to_value(&self) -> Value {
        match self {
            Id::Num(n) => Value::from(*n),
            Id::Str(s) => Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// One JSON-RPC message. The object is kept as parsed so nothing the peer sent is lost.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: Kind,
    pub id: Option<Id>,
    pub body: Map<String, Value>,
}

impl Message {
    /// Classifies a parsed JSON value, refusing anything that is not a JSON-RPC 2.0 message.
    pub fn from_value(v: Value) -> Result<Message, GatewayError> {
        let Value::Object(body) = v else {
            return Err(GatewayError::InvalidRequest("a JSON-RPC message must be an object".into()));
        };
        if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(GatewayError::InvalidRequest("`jsonrpc` must be \"2.0\"".into()));
        }
        let id = match body.get("id") {
            None => None,
            Some(v) => Some(Id::from_value(v).ok_or_else(|| GatewayError::InvalidRequest("`id` must be a string or an integer".into()))?),
        };
        let kind = match (body.get("method"), &id) {
            (Some(Value::String(_)), Some(_)) => Kind::Request,
            (Some(Value::String(_)), None) => Kind::Notification,
            (Some(_), _) => return Err(GatewayError::InvalidRequest("`method` must be a string".into())),
            (None, Some(_)) if body.contains_key("result") ^ body.contains_key("error") => Kind::Response,
            (None, _) => return Err(GatewayError::InvalidRequest("a message needs `method`, or `id` with one of `result` or `error`".into())),
        };
        if let Some(p) = body.get("params")
            && !p.is_object()
            && !p.is_array()
        {
            return Err(GatewayError::InvalidRequest("`params` must be an object or an array".into()));
        }
        Ok(Message { kind, id, body })
    }

    /// Parses bytes that hold exactly one message.
    pub fn parse(bytes: &[u8]) -> Result<Message, GatewayError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| GatewayError::Parse(e.to_string()))?;
        Message::from_value(v)
    }

    pub fn method(&self) -> Option<&str> {
        self.body.get("method").and_then(Value::as_str)
    }

    pub fn params(&self) -> Option<&Value> {
        self.body.get("params")
    }

    /// `params.name` for tools and prompts, `params.uri` for resources: what the call is about.
    pub fn target(&self) -> Option<&str> {
        let p = self.params()?;
        p.get("name").or_else(|| p.get("uri")).and_then(Value::as_str)
    }

    /// `params.clientInfo` (name, version) of an `initialize` request.
    pub fn client_info(&self) -> Option<(String, String)> {
        let info = self.params()?.get("clientInfo")?;
        let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        Some((text("name"), text("version")))
    }

    /// `params._meta.progressToken`, which ties progress notifications to this request.
    pub fn progress_token(&self) -> Option<&Value> {
        self.params()?.get("_meta")?.get("progressToken")
    }

    pub fn is_error(&self) -> bool {
        self.body.contains_key("error")
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.body).expect("a JSON map always serializes"))
    }

    pub fn request(id: Id, method: &str, params: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.to_value());
        body.insert("method".into(), method.into());
        body.insert("params".into(), params);
        Message { kind: Kind::Request, id: Some(id), body }
    }

    pub fn notification(method: &str, params: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("method".into(), method.into());
        body.insert("params".into(), params);
        Message { kind: Kind::Notification, id: None, body }
    }

    pub fn result(id: Id, result: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.to_value());
        body.insert("result".into(), result);
        Message { kind: Kind::Response, id: Some(id), body }
    }

    /// An error response; `id` is `null` where the request's id could not be read.
    pub fn error(id: Option<Id>, code: i32, message: &str, data: Option<Value>) -> Message {
        let mut err = Map::new();
        err.insert("code".into(), code.into());
        err.insert("message".into(), message.into());
        if let Some(d) = data {
            err.insert("data".into(), d);
        }
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.as_ref().map(Id::to_value).unwrap_or(Value::Null));
        body.insert("error".into(), Value::Object(err));
        Message { kind: Kind::Response, id, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_three_kinds() {
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#).unwrap();
        assert_eq!((r.kind, r.id.clone(), r.target()), (Kind::Request, Some(Id::Num(1)), Some("echo")));
        let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, Kind::Notification);
        let s = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!((s.kind, s.id), (Kind::Response, Some(Id::Str("a".into()))));
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        assert!(matches!(Message::parse(b"{nope"), Err(GatewayError::Parse(_))));
        for bad in [
            r#"[]"#,
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":3}"#,
        ] {
            assert!(matches!(Message::parse(bad.as_bytes()), Err(GatewayError::InvalidRequest(_))), "{bad}");
        }
    }
}
