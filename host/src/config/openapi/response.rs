//! Maps a REST answer to a tool result: 2xx JSON to text plus `structuredContent`, other
//! content to text, anything else to `isError` with the status and a bounded excerpt of the body.

use serde_json::{Value, json};

/// Bound on the body excerpt an error result carries: enough to see what the API said.
const ERROR_EXCERPT: usize = 2_000;

/// The parts of an HTTP answer that matter to a tool result.
pub struct Answer<'a> {
    pub status: reqwest::StatusCode,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

pub fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The tool result for an answer. `structured` says the tool declared an output schema, so a
/// successful result must carry an object.
pub fn result(a: &Answer<'_>, structured: bool) -> Value {
    let status = a.status;
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or("");
        let mut text = format!("The API answered HTTP {} {reason}", status.as_u16());
        let excerpt = excerpt(a.body, ERROR_EXCERPT);
        if !excerpt.is_empty() {
            text.push_str(": ");
            text.push_str(&excerpt);
        }
        return error(text);
    }
    if a.body.is_empty() {
        if structured {
            return error(format!("The API answered HTTP {} with no body, though its description promises a JSON object", status.as_u16()));
        }
        return json!({ "content": [{ "type": "text", "text": format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim_end() }] });
    }
    let ct = a.content_type.unwrap_or("");
    let looks_json = is_json(ct) || (ct.is_empty() && a.body.first().is_some_and(|b| *b == b'{' || *b == b'['));
    if looks_json && let Ok(v) = serde_json::from_slice::<Value>(a.body) {
        let text = serde_json::to_string(&v).expect("a JSON value always serializes");
        return match v {
            Value::Object(_) => json!({ "content": [{ "type": "text", "text": text }], "structuredContent": v }),
            _ if structured => {
                error(format!("The API answered with JSON that is not an object, though its description promises one: {}", excerpt(a.body, ERROR_EXCERPT)))
            }
            _ => json!({ "content": [{ "type": "text", "text": text }] }),
        };
    }
    if structured {
        return error(format!(
            "The API answered {} instead of the JSON object its description promises: {}",
            if ct.is_empty() { "without a content type" } else { ct },
            excerpt(a.body, ERROR_EXCERPT)
        ));
    }
    let textual =
        ct.is_empty() || ct.starts_with("text/") || ct.contains("xml") || ct.contains("json") || ct.contains("yaml") || ct.contains("x-www-form-urlencoded");
    let text = match std::str::from_utf8(a.body) {
        Ok(s) if textual => s.to_owned(),
        _ => format!("The API answered {} bytes of {}, which cannot be shown as text", a.body.len(), if ct.is_empty() { "binary content" } else { ct }),
    };
    json!({ "content": [{ "type": "text", "text": text }] })
}

/// A tool result that reports a failure to the model.
pub fn error(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": true })
}

/// At most `max` bytes of a body as text (a character cut in two shows as U+FFFD).
fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    let mut s = text.trim().to_owned();
    if body.len() > max {
        s.push_str(" …");
    }
    s
}
