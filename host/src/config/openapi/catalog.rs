//! The tools of an OpenAPI backend, built once from the document and the config's selection.
//!
//! Input schemas follow one documented scheme: every path, query, header and cookie parameter is
//! a property named as the parameter; the request body is the property `body`. A parameter whose
//! name another location also uses (an `id` in the path and in the query), or that is named
//! `body` beside a body, is called `{in}_{name}` instead (`path_id`, `query_id`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::request::{Body, BodyKind, Location, Operation, Param, Style};
use super::response::is_json;
use super::schema::{Inliner, is_object};
use super::spec::{Document, RawOperation};
use super::{Place, Problem, SpecError};
use crate::config::{Operations, ToolOverride};

/// MCP tool names are at most 64 of `A-Za-z0-9_-.` in most clients.
const MAX_NAME: usize = 64;
/// Descriptions are written for a model; a whole manual in one is cut.
const MAX_DESCRIPTION: usize = 4_000;

/// One tool: its `tools/list` entry and the request it makes.
pub struct Tool {
    pub name: String,
    pub listing: Value,
    pub op: Operation,
    /// It declares an `outputSchema`, so its results must carry `structuredContent`.
    pub structured: bool,
}

/// Builds the tools chosen by `operations`, renamed by `overrides`. Header parameters named in
/// `fixed` are left out: the gateway sends the configured value, and a model must not replace it.
pub fn build(
    doc: &Document,
    operations: &Operations,
    overrides: &std::collections::BTreeMap<String, ToolOverride>,
    fixed: &HashSet<String>,
) -> Result<Vec<Tool>, Vec<Problem>> {
    let raw = doc.operations().map_err(|e| vec![Problem { place: Place::Spec, message: e.to_string() }])?;
    let keys: Vec<String> = raw.iter().map(key).collect();
    let mut problems = Vec::new();
    let chosen: Vec<usize> = match operations {
        Operations::All => (0..raw.len()).collect(),
        Operations::Only(patterns) => {
            let mut set = Vec::new();
            for (i, pattern) in patterns.iter().enumerate() {
                let hits: Vec<usize> = (0..raw.len()).filter(|n| glob(pattern, &keys[*n])).collect();
                if hits.is_empty() {
                    let message = if pattern.contains(['*', '?']) {
                        format!("'{pattern}' matches no operation of the spec")
                    } else {
                        format!("unknown operation '{pattern}'{}", suggest(pattern, &keys))
                    };
                    problems.push(Problem { place: Place::Operation(i), message });
                }
                set.extend(hits.into_iter().filter(|h| !set.contains(h)).collect::<Vec<_>>());
            }
            set.sort_unstable();
            set
        }
    };
    for k in overrides.keys() {
        match keys.iter().position(|x| x == k) {
            None => problems.push(Problem { place: Place::Tool(k.clone()), message: format!("unknown operation '{k}'{}", suggest(k, &keys)) }),
            Some(n) if !chosen.contains(&n) => {
                problems.push(Problem { place: Place::Tool(k.clone()), message: format!("operation '{k}' is not among the chosen `operations`") })
            }
            Some(_) => {}
        }
    }
    let mut tools = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for n in chosen {
        let o = overrides.get(&keys[n]);
        match tool(doc, &raw[n], &keys[n], o, fixed) {
            Ok(t) => {
                if let Some(other) = names.insert(t.name.clone(), keys[n].clone()) {
                    let place = if o.and_then(|o| o.name.as_ref()).is_some() { Place::Tool(keys[n].clone()) } else { Place::Spec };
                    problems.push(Problem {
                        place,
                        message: format!("two tools are named '{}': operations '{other}' and '{}'; rename one under `tools`", t.name, keys[n]),
                    });
                }
                tools.push(t);
            }
            Err(e) => problems.push(Problem { place: Place::Spec, message: format!("operation '{}': {e}", keys[n]) }),
        }
    }
    if problems.is_empty() { Ok(tools) } else { Err(problems) }
}

/// What config names an operation by: its operationId, else a name made from method and path.
fn key(op: &RawOperation<'_>) -> String {
    match op.op.get("operationId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            let path: Vec<&str> = op.path.split('/').filter(|s| !s.is_empty()).map(|s| s.trim_matches(['{', '}'])).collect();
            sanitize(&format!("{}_{}", op.method, path.join("_")))
        }
    }
}

/// A tool name clients accept: `A-Za-z0-9_-.`, at most 64 characters.
pub(super) fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_');
    out.chars().take(MAX_NAME).collect()
}

/// `*` matches any run of characters, `?` any one; anything else matches itself.
pub(super) fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn suggest(wanted: &str, keys: &[String]) -> String {
    let lower = wanted.to_ascii_lowercase();
    let close = |k: &String| {
        let k = k.to_ascii_lowercase();
        k == lower || k.contains(&lower) || distance(&k, &lower) <= 2
    };
    match keys.iter().find(|k| close(k)) {
        Some(k) => format!(" (did you mean '{k}'?)"),
        None => String::new(),
    }
}

/// Edit distance, for suggesting the operation a typo meant.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

fn tool(doc: &Document, raw: &RawOperation<'_>, key: &str, o: Option<&ToolOverride>, fixed: &HashSet<String>) -> Result<Tool, SpecError> {
    let mut inliner = Inliner::new(doc);
    let mut specs = parameters(doc, raw)?;
    specs.retain(|(p, _)| !(p.location == Location::Header && fixed.contains(&p.name.to_ascii_lowercase())));
    let has_body = raw.op.get("requestBody").is_some();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for (p, _) in &specs {
        *taken.entry(p.name.clone()).or_default() += 1;
    }
    let mut props = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    for (mut p, decl) in specs {
        if taken[p.name.as_str()] > 1 || (has_body && p.name == "body") {
            p.arg = format!("{}_{}", p.location.as_str(), p.name);
        }
        let mut schema = match decl.get("schema") {
            Some(s) => inliner.schema(s)?,
            None => match decl.get("content").and_then(Value::as_object).and_then(|c| c.values().next()).and_then(|m| m.get("schema")) {
                Some(s) => inliner.schema(s)?,
                None => json!({}),
            },
        };
        if let (Value::Object(s), Some(d)) = (&mut schema, decl.get("description").and_then(Value::as_str)) {
            s.entry("description").or_insert_with(|| d.into());
        }
        if p.required {
            required.push(Value::String(p.arg.clone()));
        }
        props.insert(p.arg.clone(), schema);
        params.push(p);
    }
    let body = match raw.op.get("requestBody") {
        None => None,
        Some(rb) => {
            let rb = doc.resolve(rb)?;
            let content = rb.get("content").and_then(Value::as_object).cloned().unwrap_or_default();
            let pick = content
                .iter()
                .find(|(t, _)| is_json(t))
                .map(|(t, m)| (t, m, BodyKind::Json))
                .or_else(|| content.iter().find(|(t, _)| t.starts_with("application/x-www-form-urlencoded")).map(|(t, m)| (t, m, BodyKind::Form)))
                .or_else(|| content.iter().next().map(|(t, m)| (t, m, BodyKind::Text)));
            pick.map(|(media_type, m, kind)| -> Result<Body, SpecError> {
                let mut schema = match (kind, m.get("schema")) {
                    (BodyKind::Text, _) => json!({ "type": "string" }),
                    (_, Some(s)) => inliner.schema(s)?,
                    (_, None) => json!({}),
                };
                if let (Value::Object(s), Some(d)) = (&mut schema, rb.get("description").and_then(Value::as_str)) {
                    s.entry("description").or_insert_with(|| d.into());
                }
                let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                props.insert("body".into(), schema);
                Ok(Body { media_type: media_type.clone(), kind, required })
            })
            .transpose()?
        }
    };
    if body.as_ref().is_some_and(|b| b.required) {
        required.push("body".into());
    }
    let mut input = json!({ "type": "object", "properties": props });
    if !required.is_empty() {
        input["required"] = Value::Array(required);
    }
    let input = inliner.finish(input);
    let (output, accept) = output_schema(doc, raw)?;
    let name = o.and_then(|o| o.name.clone()).unwrap_or_else(|| sanitize(key));
    let description = o.and_then(|o| o.description.clone()).unwrap_or_else(|| describe(raw));
    let method = raw.method.to_uppercase();
    let mut listing = json!({
        "name": name,
        "description": description,
        "inputSchema": input,
        "annotations": {
            "readOnlyHint": matches!(raw.method, "get" | "head" | "options"),
            "destructiveHint": raw.method == "delete",
            "idempotentHint": matches!(raw.method, "get" | "head" | "options" | "put" | "delete"),
            "openWorldHint": true,
        },
    });
    if let Some(t) = raw.op.get("summary").and_then(Value::as_str) {
        listing["title"] = t.trim().into();
    }
    let structured = output.is_some();
    if let Some(out) = output {
        listing["outputSchema"] = out;
    }
    let op = Operation {
        method: reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method from the fixed list"),
        path: raw.path.to_owned(),
        params,
        body,
        accept,
    };
    Ok(Tool { name, listing, op, structured })
}

/// A parameter and the declaration it came from.
type Declared<'a> = (Param, &'a Map<String, Value>);

/// Path-item and operation parameters merged (the operation's win), with their declarations.
fn parameters<'a>(doc: &'a Document, raw: &RawOperation<'a>) -> Result<Vec<Declared<'a>>, SpecError> {
    let mut out: Vec<Declared<'a>> = Vec::new();
    let lists = [raw.item.get("parameters"), raw.op.get("parameters")];
    for list in lists.into_iter().flatten() {
        for decl in list.as_array().into_iter().flatten() {
            let decl = doc.resolve(decl)?.as_object().ok_or_else(|| SpecError::Syntax("a parameter is not a mapping".into()))?;
            let name = decl.get("name").and_then(Value::as_str).ok_or_else(|| SpecError::Syntax("a parameter has no name".into()))?;
            let Some(location) = decl.get("in").and_then(Value::as_str).and_then(Location::parse) else {
                return Err(SpecError::Syntax(format!("parameter '{name}' has no valid `in`")));
            };
            // OpenAPI says the first three are ignored; the others describe the connection. The
            // gateway sets all of them, never a model.
            const GATEWAY_SET: [&str; 8] = ["accept", "content-type", "authorization", "host", "content-length", "connection", "transfer-encoding", "cookie"];
            if location == Location::Header && GATEWAY_SET.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            if location == Location::Header && hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(SpecError::Syntax(format!("header parameter '{name}' is not a valid header name")));
            }
            let style = Style::parse(decl.get("style").and_then(Value::as_str), location);
            let explode = decl.get("explode").and_then(Value::as_bool).unwrap_or(style == Style::Form);
            let required = location == Location::Path || decl.get("required").and_then(Value::as_bool).unwrap_or(false);
            let json = decl.get("schema").is_none() && decl.get("content").is_some();
            let p = Param { name: name.to_owned(), arg: name.to_owned(), location, style, explode, required, json };
            out.retain(|(q, _)| !(q.name == p.name && q.location == p.location));
            out.push((p, decl));
        }
    }
    let mut seen = HashSet::new();
    for segment in raw.path.split('{').skip(1) {
        let name = segment.split('}').next().unwrap_or_default();
        if seen.insert(name) && !out.iter().any(|(p, _)| p.location == Location::Path && p.name == name) {
            return Err(SpecError::Syntax(format!("path parameter '{name}' of {} is not declared", raw.path)));
        }
    }
    Ok(out)
}

/// The output schema, where the first 2xx answer is a JSON object; and the `Accept` to send.
fn output_schema(doc: &Document, raw: &RawOperation<'_>) -> Result<(Option<Value>, String), SpecError> {
    let Some(responses) = raw.op.get("responses").and_then(Value::as_object) else { return Ok((None, "*/*".into())) };
    let mut codes: Vec<&String> = responses.keys().filter(|c| c.starts_with('2')).collect();
    codes.sort();
    let Some(code) = codes.first() else { return Ok((None, "application/json, */*;q=0.5".into())) };
    let resp = doc.resolve(&responses[code.as_str()])?;
    let content = resp.get("content").and_then(Value::as_object);
    let Some((media, m)) = content.and_then(|c| c.iter().find(|(t, _)| is_json(t))) else {
        return Ok((None, "*/*".into()));
    };
    let accept = format!("{media}, */*;q=0.5");
    let Some(s) = m.get("schema") else { return Ok((None, accept)) };
    let mut inliner = Inliner::new(doc);
    let schema = inliner.schema(s)?;
    if !is_object(&schema) {
        return Ok((None, accept));
    }
    Ok((Some(inliner.finish(schema)), accept))
}

/// Summary, then description, as the API's authors wrote them.
fn describe(raw: &RawOperation<'_>) -> String {
    let summary = raw.op.get("summary").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let detail = raw.op.get("description").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let mut text = match (summary, detail) {
        (Some(s), Some(d)) if d.starts_with(s) => d.to_owned(),
        (Some(s), Some(d)) => format!("{s}\n\n{d}"),
        (Some(s), None) => s.to_owned(),
        (None, Some(d)) => d.to_owned(),
        (None, None) => format!("{} {}", raw.method.to_uppercase(), raw.path),
    };
    if raw.op.get("deprecated") == Some(&Value::Bool(true)) {
        text.insert_str(0, "Deprecated. ");
    }
    if text.len() > MAX_DESCRIPTION {
        let mut cut = MAX_DESCRIPTION;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
