//! Builds the HTTP request for one tool call from its arguments, exactly as the operation states:
//! path parameters percent-encoded so they can never leave their segment, query arrays and
//! objects per `style`/`explode`, header and cookie parameters, and the body.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

/// Everything but RFC 3986 unreserved characters is encoded: `/`, `%`, `?` and `#` in a value
/// stay inside the value.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

impl Location {
    pub fn parse(s: &str) -> Option<Location> {
        Some(match s {
            "path" => Location::Path,
            "query" => Location::Query,
            "header" => Location::Header,
            "cookie" => Location::Cookie,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
            Location::Cookie => "cookie",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    /// The style named in the document, or the default for the location.
    pub fn parse(s: Option<&str>, at: Location) -> Style {
        match s {
            Some("label") => Style::Label,
            Some("matrix") => Style::Matrix,
            Some("form") => Style::Form,
            Some("spaceDelimited") => Style::SpaceDelimited,
            Some("pipeDelimited") => Style::PipeDelimited,
            Some("deepObject") => Style::DeepObject,
            Some("simple") => Style::Simple,
            _ => match at {
                Location::Query | Location::Cookie => Style::Form,
                Location::Path | Location::Header => Style::Simple,
            },
        }
    }
}

/// One parameter of an operation, and the argument of the tool that carries it.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    /// The property of the tool's input that holds it (the name, unless that would collide).
    pub arg: String,
    pub location: Location,
    pub style: Style,
    pub explode: bool,
    pub required: bool,
    /// Declared with `content: application/json` rather than a schema: sent as JSON text.
    pub json: bool,
}

/// How a request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    Text,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub media_type: String,
    pub kind: BodyKind,
    pub required: bool,
}

/// What a tool call turns into.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: reqwest::Method,
    /// The path template (`/pets/{petId}`).
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    /// The `Accept` header: the JSON type the operation answers with, if any.
    pub accept: String,
}

/// A call that cannot be made as asked: reported to the model, which can correct it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgumentError {
    #[error("missing required argument '{0}'")]
    Missing(String),
    #[error("argument '{0}' must be an object")]
    NotAnObject(String),
    #[error("path parameter '{0}' cannot be empty, '.' or '..'")]
    DotSegment(String),
    #[error("argument '{0}' holds a line break or control character, which a header cannot carry")]
    BadHeader(String),
    #[error("argument '{0}' must be text for this operation's body")]
    NotText(String),
}

/// The request, ready for an HTTP client.
#[derive(Debug, PartialEq)]
pub struct Built {
    /// Path and query, to append to the base URL.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, Vec<u8>)>,
}

impl Operation {
    /// Builds the request from the call's arguments.
    pub fn build(&self, args: &Map<String, Value>) -> Result<Built, ArgumentError> {
        let mut path = self.path.clone();
        let mut query: Vec<String> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut cookies: Vec<String> = Vec::new();
        for p in &self.params {
            let value = match args.get(&p.arg) {
                None | Some(Value::Null) if p.required => return Err(ArgumentError::Missing(p.arg.clone())),
                None | Some(Value::Null) => continue,
                Some(v) if p.json => &Value::String(v.to_string()),
                Some(v) => v,
            };
            match p.location {
                Location::Path => {
                    let segment = path_value(p, value);
                    if matches!(segment.as_str(), "" | "." | "..") {
                        return Err(ArgumentError::DotSegment(p.arg.clone()));
                    }
                    path = path.replace(&format!("{{{}}}", p.name), &segment);
                }
                Location::Query => query_value(p, value, &mut query),
                Location::Header => {
                    let text = simple(value, p.explode, &|s| s.to_owned());
                    if text.chars().any(|c| c.is_control()) {
                        return Err(ArgumentError::BadHeader(p.arg.clone()));
                    }
                    headers.push((p.name.clone(), text));
                }
                Location::Cookie => {
                    cookies.push(format!("{}={}", p.name, simple(value, false, &enc)));
                }
            }
        }
        if !cookies.is_empty() {
            headers.push(("cookie".into(), cookies.join("; ")));
        }
        let body = match &self.body {
            None => None,
            Some(b) => match args.get("body") {
                None | Some(Value::Null) if b.required => return Err(ArgumentError::Missing("body".into())),
                None | Some(Value::Null) => None,
                Some(v) => Some((b.media_type.clone(), encode_body(b.kind, v)?)),
            },
        };
        let mut target = path;
        if !query.is_empty() {
            target.push('?');
            target.push_str(&query.join("&"));
        }
        Ok(Built { target, headers, body })
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

/// A scalar as text: strings as they are, numbers and booleans as JSON writes them.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `simple` style: `a,b,c` for arrays, `k,v,k2,v2` (or `k=v,k2=v2` exploded) for objects.
fn simple(v: &Value, explode: bool, e: &dyn Fn(&str) -> String) -> String {
    match v {
        Value::Array(items) => items.iter().map(|i| e(&text(i))).collect::<Vec<_>>().join(","),
        Value::Object(m) if explode => m.iter().map(|(k, v)| format!("{}={}", e(k), e(&text(v)))).collect::<Vec<_>>().join(","),
        Value::Object(m) => m.iter().flat_map(|(k, v)| [e(k), e(&text(v))]).collect::<Vec<_>>().join(","),
        scalar => e(&text(scalar)),
    }
}

/// A path parameter's value, every part percent-encoded (RFC 6570 expansion with `simple`,
/// `label` or `matrix` style).
fn path_value(p: &Param, v: &Value) -> String {
    match p.style {
        Style::Label => {
            let sep = if p.explode { "." } else { "," };
            format!(".{}", parts(v, p.explode).into_iter().map(|(k, v)| pair(k, v, p.explode)).collect::<Vec<_>>().join(sep))
        }
        Style::Matrix => {
            let name = enc(&p.name);
            match v {
                Value::Array(items) if p.explode => items.iter().map(|i| format!(";{name}={}", enc(&text(i)))).collect(),
                Value::Object(m) if p.explode => m.iter().map(|(k, v)| format!(";{}={}", enc(k), enc(&text(v)))).collect(),
                other => format!(";{name}={}", simple(other, false, &enc)),
            }
        }
        _ => simple(v, p.explode, &enc),
    }
}

fn parts(v: &Value, _explode: bool) -> Vec<(Option<String>, String)> {
    match v {
        Value::Array(items) => items.iter().map(|i| (None, enc(&text(i)))).collect(),
        Value::Object(m) => m.iter().map(|(k, v)| (Some(enc(k)), enc(&text(v)))).collect(),
        scalar => vec![(None, enc(&text(scalar)))],
    }
}

fn pair(k: Option<String>, v: String, explode: bool) -> String {
    match k {
        Some(k) if explode => format!("{k}={v}"),
        Some(k) => format!("{k},{v}"),
        None => v,
    }
}

/// Adds a query parameter's pairs (`form`, `spaceDelimited`, `pipeDelimited`, `deepObject`).
fn query_value(p: &Param, v: &Value, out: &mut Vec<String>) {
    let name = enc(&p.name);
    match (v, p.style) {
        (Value::Object(m), Style::DeepObject) => {
            for (k, v) in m {
                out.push(format!("{name}%5B{}%5D={}", enc(k), enc(&text(v))));
            }
        }
        (Value::Array(items), Style::SpaceDelimited | Style::PipeDelimited) if !p.explode => {
            let sep = if p.style == Style::SpaceDelimited { "%20" } else { "%7C" };
            out.push(format!("{name}={}", items.iter().map(|i| enc(&text(i))).collect::<Vec<_>>().join(sep)));
        }
        (Value::Array(items), _) if p.explode => {
            out.extend(items.iter().map(|i| format!("{name}={}", enc(&text(i)))));
        }
        (Value::Object(m), _) if p.explode => {
            out.extend(m.iter().map(|(k, v)| format!("{}={}", enc(k), enc(&text(v)))));
        }
        (other, _) => out.push(format!("{name}={}", simple(other, false, &enc))),
    }
}

fn encode_body(kind: BodyKind, v: &Value) -> Result<Vec<u8>, ArgumentError> {
    match kind {
        BodyKind::Json => Ok(serde_json::to_vec(v).expect("a JSON value always serializes")),
        BodyKind::Form => {
            let Value::Object(m) = v else { return Err(ArgumentError::NotAnObject("body".into())) };
            let pairs: Vec<String> = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{}={}", enc(k), enc(&text(v)))).collect();
            Ok(pairs.join("&").into_bytes())
        }
        BodyKind::Text => match v {
            Value::String(s) => Ok(s.clone().into_bytes()),
            _ => Err(ArgumentError::NotText("body".into())),
        },
    }
}
