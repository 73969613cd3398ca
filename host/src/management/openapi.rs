//! The OpenAPI 3.1 document of the management API, served at `/openapi.json` without a token
//! (it describes the API; it holds nothing of the gateway's).
//!
//! It is generated, once, from the route table that also builds the router ([`super::routes`]):
//! each operation's method, path, parameters and statuses from its entry, its request and
//! answer bodies from its handler's signature ([`super::route`]), and every schema from the
//! Rust types themselves (`#[derive(JsonSchema)]`, as `tollgate config schema` is), under
//! `components/schemas`. OpenAPI 3.1 speaks JSON Schema 2020-12, so the schemas are as
//! generated.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::api_error::{KINDS, ProblemDocument};
use super::route::{IfMatch, Method, Op, Shape};

/// The document, built on first use.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| build(&super::routes::table()))
}

/// The document as `/openapi.json` answers it.
pub struct Document;

impl serde::Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        document().serialize(s)
    }
}

impl JsonSchema for Document {
    fn schema_name() -> Cow<'static, str> {
        "OpenApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let open = json!({ "type": "object", "additionalProperties": true });
        json_schema!({
            "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0): this one.",
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {
                "openapi": { "type": "string" },
                "info": {
                    "type": "object",
                    "required": ["title", "version"],
                    "properties": { "title": { "type": "string" }, "version": { "type": "string" }, "description": { "type": "string" } }
                },
                "paths": { "type": "object", "additionalProperties": open.clone() },
                "components": open,
            }
        })
    }
}

pub async fn serve() -> Json<Document> {
    Json(Document)
}

/// The document of the operations in `table`.
pub fn build(table: &[Op]) -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let problem = g.subschema_for::<ProblemDocument>();
    let mut paths = Map::new();
    let mut tags: Vec<&str> = Vec::new();
    for op in table {
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        assert!(item.get(op.method.key()).is_none(), "{} {} is in the route table twice", op.method.key(), op.path);
        item[op.method.key()] = operation(op, &mut g, &problem);
        if !tags.contains(&op.tag) {
            tags.push(op.tag);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tollgate management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The management API of Tollgate, an MCP gateway: JSON over HTTP on the management listener \
                (`management.listen`). A change to what exists takes `If-Match` with the ETag last read (428 \
                without it, 412 with a stale one). Every error is an RFC 9457 problem (`application/problem+json`) whose `type` \
                names its kind. Generated from the gateway's route table and types; docs/management-api.md tells more."
        },
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "security": [{ "admin": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token in the environment variable `management.admin_token_env` names. The token \
                        `management.read_only_token_env` names may read (GET) but not change (403 `read-only`)."
                }
            },
            "schemas": g.take_definitions(true),
        }
    });
    crate::config::schema::unwrap_lines(&mut doc);
    doc
}

/// One operation object.
fn operation(op: &Op, g: &mut SchemaGenerator, problem: &Schema) -> Value {
    let mut shape = Shape::default();
    (op.shape)(&mut shape, g);
    let mut o = Map::new();
    o.insert("tags".into(), json!([op.tag]));
    o.insert("summary".into(), json!(op.summary));
    if let Some(d) = op.description {
        o.insert("description".into(), json!(d));
    }
    o.insert("operationId".into(), json!(op.handler.replace("::", "_")));
    let parameters = parameters(op, &shape);
    if !parameters.is_empty() {
        o.insert("parameters".into(), json!(parameters));
    }
    let mut json_body = false;
    if let Some((schema, required)) = shape.body.take() {
        let content = match schema {
            Some(s) => {
                json_body = required;
                json!({ "application/json": { "schema": s } })
            }
            None => {
                let media = op.media.unwrap_or_else(|| panic!("{} {} takes bytes: name their media type", op.method.key(), op.path));
                json!({ media: {} })
            }
        };
        o.insert("requestBody".into(), json!({ "required": required, "content": content }));
    }
    o.insert("responses".into(), responses(op, &shape, json_body, problem));
    if op.open {
        o.insert("security".into(), json!([]));
    }
    Value::Object(o)
}

fn parameters(op: &Op, shape: &Shape) -> Vec<Value> {
    let mut out = Vec::new();
    for name in op.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
        let (description, values) = op.params.iter().find(|p| p.0 == name).map(|p| (p.1, p.2)).unwrap_or_else(|| (default_param(op.path, name), &[]));
        let mut schema = json!({ "type": "string" });
        if !values.is_empty() {
            schema["enum"] = json!(values);
        }
        out.push(json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema }));
    }
    if let Some(query) = &shape.query {
        let required = query.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
        for (name, schema) in query.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let mut schema = schema.clone();
            // An optional field is an absent parameter, never a null one: a query holds strings.
            if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    schema["type"] = types[0].clone();
                }
            }
            let mut p = json!({ "name": name, "in": "query", "required": required.contains(&json!(name)) });
            if let Some(d) = schema.as_object_mut().and_then(|s| s.remove("description")) {
                p["description"] = d;
            }
            p["schema"] = schema;
            out.push(p);
        }
    }
    match op.if_match {
        Some(IfMatch::Required) => {
            out.push(json!({ "name": "If-Match", "in": "header", "required": true, "description": "The ETag last read.", "schema": { "type": "string" } }))
        }
        Some(IfMatch::ToReplace) => out.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The ETag last read, to replace what exists; none (or `*`) to create.", "schema": { "type": "string" }
        })),
        None => {}
    }
    out
}

/// What a path parameter of a name the table leaves undescribed is.
fn default_param(path: &str, name: &str) -> &'static str {
    match name {
        "name" if path.starts_with("/api/products/") => "The product's name.",
        "name" if path.starts_with("/api/servers/") => "The server's name.",
        "version" => "The version's name.",
        "id" if path.starts_with("/api/subscriptions/") => "The subscription's id.",
        _ => panic!("describe the path parameter `{name}` of {path} in the route table"),
    }
}

fn responses(op: &Op, shape: &Shape, json_body: bool, problem: &Schema) -> Value {
    let answer = &shape.answer;
    let success = |description: &str| {
        let mut r = json!({ "description": description });
        if let Some((media, schema)) = &answer.body {
            r["content"] = json!({ *media: { "schema": schema } });
        }
        let mut headers = Map::new();
        if answer.etag {
            headers.insert("ETag".into(), json!({ "description": "The resource's ETag: send it as If-Match to change it.", "schema": { "type": "string" } }));
        }
        if answer.location {
            headers.insert("Location".into(), json!({ "description": "Where what was created is.", "schema": { "type": "string" } }));
        }
        if !headers.is_empty() {
            r["headers"] = Value::Object(headers);
        }
        r
    };
    let mut out: BTreeMap<u16, Value> = BTreeMap::new();
    if op.statuses.is_empty() {
        let code = answer.status.unwrap_or(200);
        out.insert(code, success(if code == 204 { "done; no body" } else { "success" }));
    }
    for (code, description) in &op.statuses {
        out.insert(*code, success(description));
    }
    let mut kinds = op.problems.clone();
    if !op.open {
        kinds.push("unauthorized");
        if op.method != Method::Get {
            kinds.push("read-only");
        }
    }
    if json_body {
        kinds.push("invalid");
    }
    if op.if_match.is_some() {
        kinds.extend(["if-match-required", "stale"]);
    }
    let mut by_status: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for kind in kinds {
        let (slug, status, title) = KINDS.iter().find(|k| k.0 == kind).unwrap_or_else(|| panic!("{} {}: no problem kind '{kind}'", op.method.key(), op.path));
        let line = format!("`urn:tollgate:problem:{slug}`: {title}");
        let lines = by_status.entry(*status).or_default();
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    for (status, lines) in by_status {
        assert!(!out.contains_key(&status), "{} {}: {status} is both a success and a problem", op.method.key(), op.path);
        out.insert(status, json!({ "description": lines.join("; "), "content": { "application/problem+json": { "schema": problem } } }));
    }
    Value::Object(out.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema a body or an answer names, resolved.
    fn schemas(doc: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let bodies =
                    op.pointer("/requestBody/content").into_iter().chain(op["responses"].as_object().unwrap().values().filter_map(|r| r.get("content")));
                for content in bodies {
                    for (media, c) in content.as_object().unwrap() {
                        if media.contains("json") {
                            let schema = c.get("schema").unwrap_or_else(|| panic!("{method} {path}: {media} without a schema"));
                            out.push((format!("{method} {path} {media}"), schema.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_json_body_has_a_schema_and_every_ref_resolves() {
        let doc = document();
        let found = schemas(doc);
        assert!(found.len() > 60, "{}", found.len());
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"").skip(1).map(|s| &s[..s.find('"').unwrap()]) {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("a $ref outside the document: {r}"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let problem = &doc["components"]["schemas"]["Problem"];
        assert_eq!(problem["properties"]["type"]["enum"].as_array().map(Vec::len), Some(KINDS.len()), "{problem}");
    }

    #[test]
    fn the_document_names_the_types_the_handlers_take_and_return() {
        let doc = document();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let put = op("/api/servers/{name}", "put");
        assert_eq!(put["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ServerConfig");
        assert_eq!(put["responses"]["201"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ServerConfig");
        assert!(put["responses"]["201"]["headers"]["ETag"].is_object(), "{put}");
        assert_eq!(put["operationId"], "servers_put");
        let codes: Vec<&String> = put["responses"].as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "201", "401", "403", "412", "422", "428", "500"]);
        assert!(put["responses"]["403"]["description"].as_str().unwrap().contains("read-only"), "{put}");
        let delete = op("/api/servers/{name}", "delete");
        assert!(delete["responses"]["204"].get("content").is_none(), "{delete}");
        assert_eq!(delete["parameters"][1]["name"], "If-Match");
        assert_eq!(delete["parameters"][1]["required"], true);
        let list = op("/api/subscriptions", "get");
        assert_eq!(list["parameters"][0]["name"], "product");
        assert_eq!(list["parameters"][0]["in"], "query");
        assert_eq!(list["parameters"][0]["schema"], json!({ "type": "string" }));
        let act = op("/api/subscriptions/{id}/{action}", "post");
        assert_eq!(act["parameters"][1]["schema"]["enum"], json!(["approve", "suspend", "resume", "cancel"]));
        assert_eq!(act["requestBody"]["required"], false);
        let health = op("/healthz", "get");
        assert_eq!(health["security"], json!([]));
        assert_eq!(health["responses"]["200"]["content"]["text/plain"]["schema"]["type"], "string");
        assert!(doc["components"]["schemas"]["PolicyBinding"]["properties"]["policy"].is_object());
    }
}
