//! The OpenAPI 3.1 document of the management API, served at `/openapi.json` without a token
//! (it describes the API; it holds nothing of the gateway's).

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, tag: &str, ok: &str, extra: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok: { "description": "success" },
            "401": { "$ref": "#/components/responses/Error" },
        }
    });
    if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
        for (k, v) in extra {
            if k == "responses" {
                if let (Some(r), Value::Object(more)) = (o.get_mut("responses").and_then(Value::as_object_mut), v) {
                    r.extend(more);
                }
            } else {
                o.insert(k, v);
            }
        }
    }
    o
}

/// A change: If-Match required, 412 on a stale ETag, 428 without one.
fn change(summary: &str, tag: &str, params: Value) -> Value {
    op(
        summary,
        tag,
        "200",
        json!({
            "parameters": params,
            "responses": {
                "404": { "$ref": "#/components/responses/Error" },
                "409": { "$ref": "#/components/responses/Error" },
                "412": { "$ref": "#/components/responses/Error" },
                "428": { "$ref": "#/components/responses/Error" },
            }
        }),
    )
}

/// A read of one thing a path names: 404 when it does not exist.
fn read(summary: &str, tag: &str, params: Value) -> Value {
    op(summary, tag, "200", json!({ "parameters": params, "responses": { "404": { "$ref": "#/components/responses/Error" } } }))
}

/// A create-or-replace: If-Match only to replace; 201 when created.
fn create(summary: &str, tag: &str, params: Value) -> Value {
    let mut o = change(summary, tag, params);
    o["responses"]["201"] = json!({ "description": "created" });
    o
}

pub fn document() -> Value {
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let name = json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } });
    let if_match = json!({ "name": "If-Match", "in": "header", "required": true, "schema": { "type": "string" }, "description": "the ETag last read" });
    let if_match_optional = json!({ "name": "If-Match", "in": "header", "required": false, "schema": { "type": "string" }, "description": "the ETag last read, to replace; none or `*` to create" });
    let version = json!({ "name": "version", "in": "path", "required": true, "schema": { "type": "string" } });
    let body =
        |schema: &str| json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    let with_body = |mut o: Value, schema: &str| {
        o["requestBody"] = body(schema);
        o["responses"]["422"] = json!({ "$ref": "#/components/responses/Error" });
        o
    };
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Tollgate management API", "version": env!("CARGO_PKG_VERSION") },
        "security": [{ "admin": [] }],
        "paths": {
            "/api/servers": { "get": op("List the MCP servers", "servers", "200", json!({})) },
            "/api/servers/{name}": {
                "get": read("A server as it runs, in the config file's shape, with its routing and chains (ETag header)", "servers", json!([name.clone()])),
                "put": with_body(create("Create a server (no If-Match, or `*`), or replace it (If-Match). Checked as `tollgate validate` checks a file, its OpenAPI documents and chains loaded, then kept and in force at once. A version unchanged but for its chain keeps running; a replaced backend serves new sessions while live ones finish where they began", "servers", json!([name.clone(), if_match_optional.clone()])), "Server"),
                "delete": change("Delete a server; its live sessions end. Refused (409) while a product includes it", "servers", json!([name.clone(), if_match.clone()])),
            },
            "/api/servers/{name}/versions/{version}": {
                "get": read("One version, in the shape the config file writes under `versions` (ETag header)", "versions", json!([name.clone(), version.clone()])),
                "put": with_body(create("Add a version (no If-Match, or `*`) or replace one (If-Match), checked and loaded as for a server; other versions and their sessions are untouched", "versions", json!([name.clone(), version.clone(), if_match_optional.clone()])), "Version"),
                "delete": change("Delete a version; its live sessions end. The default, the preview and the last version cannot go (409)", "versions", json!([name.clone(), version.clone(), if_match.clone()])),
            },
            "/api/servers/{name}/versions": {
                "get": read("A server's versions and which serves whom (ETag header: the routing's)", "versions", json!([name.clone()])),
            },
            "/api/servers/{name}/versions/{version}/promote": { "post": change("Make the version the default for new sessions; live sessions stay where they are. A preview of it ends", "versions", json!([name.clone(), version.clone(), if_match.clone()])) },
            "/api/servers/{name}/versions/{version}/retire": { "post": change("Retire a version: its requests, live sessions included, get 410 naming the version to use (not the default or the preview: 409)", "versions", json!([name.clone(), version.clone(), if_match.clone()])) },
            "/api/servers/{name}/versions/{version}/reinstate": { "post": change("Serve a retired version again", "versions", json!([name.clone(), version.clone(), if_match.clone()])) },
            "/api/servers/{name}/routing": {
                "get": read("The routing alone, in the shape PUT takes (ETag header)", "versions", json!([name.clone()])),
                "put": with_body(change("Replace the routing whole (what `tollgate apply` does)", "versions", json!([name.clone(), if_match.clone()])), "Routing"),
            },
            "/api/servers/{name}/preview": {
                "put": with_body(change("Route a share of new sessions, and chosen subscriptions, to a preview version", "versions", json!([name.clone(), if_match.clone()])), "Preview"),
                "delete": change("End the preview: new sessions all reach the default", "versions", json!([name.clone(), if_match.clone()])),
            },
            "/api/servers/{name}/policies": {
                "get": read("The chain a server without versions runs, in the config file's shape (ETag header)", "policies", json!([name.clone()])),
                "put": with_body(change("Replace the chain: checked as `tollgate validate` checks a file and by each policy's own init (422 with the problems), kept, then in force for every next request; requests in flight finish on the old chain", "policies", json!([name.clone(), if_match.clone()])), "Chain"),
                "delete": change("Hand the chain back to the config file: the chain set through the API is forgotten, and the file's chain as it is now is in force (409 if the file does not load or has no such server)", "policies", json!([name.clone(), if_match.clone()])),
            },
            "/api/servers/{name}/versions/{version}/policies": {
                "get": read("The chain one version runs (ETag header)", "policies", json!([name.clone(), version.clone()])),
                "put": with_body(change("Replace one version's chain, as for a server without versions", "policies", json!([name.clone(), version.clone(), if_match.clone()])), "Chain"),
                "delete": change("Hand one version's chain back to the config file", "policies", json!([name.clone(), version.clone(), if_match.clone()])),
            },
            "/api/components": {
                "get": op("The uploaded policy components, and which chains use each", "policies", "200", json!({})),
                "post": op("Upload a policy component; it is compiled and checked to be a policy component, then kept under its SHA-256. The answer's `policy` (`sha256:<hex>`) is what a binding names", "policies", "201", json!({
                    "requestBody": { "required": true, "content": { "application/wasm": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": {
                        "200": { "description": "the same component was kept already" },
                        "409": { "$ref": "#/components/responses/Error" },
                        "413": { "$ref": "#/components/responses/Error" },
                        "415": { "$ref": "#/components/responses/Error" },
                        "422": { "$ref": "#/components/responses/Error" }
                    }
                })),
            },
            "/api/config": { "get": op("The running configuration, in the config file's shape", "config", "200", json!({})) },
            "/api/products": { "get": op("List the products, each with its ETag", "products", "200", json!({})) },
            "/api/products/{name}": {
                "get": read("One product (ETag header)", "products", json!([name.clone()])),
                "put": op("Create a product (no If-Match) or replace it (If-Match: its ETag); the body is the product as the config file writes it", "products", "200", json!({
                    "parameters": [name.clone(), { "name": "If-Match", "in": "header", "required": false, "schema": { "type": "string" } }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Product" } } } },
                    "responses": {
                        "201": { "description": "created" },
                        "412": { "$ref": "#/components/responses/Error" },
                        "422": { "$ref": "#/components/responses/Error" },
                        "428": { "$ref": "#/components/responses/Error" }
                    }
                })),
                "delete": change("Delete a product; its subscriptions get 403 until it exists again", "products", json!([name, if_match.clone()])),
            },
            "/api/subscriptions": {
                "get": op("List subscriptions (optionally of one product)", "subscriptions", "200", json!({
                    "parameters": [{ "name": "product", "in": "query", "required": false, "schema": { "type": "string" } }]
                })),
                "post": op("Subscribe to a product; the answer holds both keys, shown this once", "subscriptions", "201", json!({
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewSubscription" } } } },
                    "responses": { "422": { "$ref": "#/components/responses/Error" } }
                })),
            },
            "/api/subscriptions/{id}": {
                "get": op("One subscription (ETag header)", "subscriptions", "200", json!({ "parameters": [id] })),
                "delete": change("Delete a subscription", "subscriptions", json!([id, if_match])),
            },
            "/api/subscriptions/{id}/approve": { "post": change("Approve a pending subscription", "subscriptions", json!([id, if_match])) },
            "/api/subscriptions/{id}/suspend": { "post": change("Suspend an active subscription", "subscriptions", json!([id, if_match])) },
            "/api/subscriptions/{id}/resume": { "post": change("Make a suspended subscription active again", "subscriptions", json!([id, if_match])) },
            "/api/subscriptions/{id}/cancel": { "post": change("Cancel a subscription for good", "subscriptions", json!([id, if_match])) },
            "/api/subscriptions/{id}/keys/{slot}": { "post": change("Regenerate the primary or secondary key; the answer holds the new key, shown this once", "subscriptions", json!([
                id, if_match, { "name": "slot", "in": "path", "required": true, "schema": { "enum": ["primary", "secondary"] } }
            ])) },
        },
        "components": {
            "securitySchemes": { "admin": { "type": "http", "scheme": "bearer", "description": "the token in the environment variable `management.admin_token_env` names" } },
            "schemas": {
                "Product": {
                    "type": "object",
                    "required": ["name", "servers"],
                    "properties": {
                        "name": { "type": "string" },
                        "description": { "type": "string" },
                        "servers": { "type": "array", "items": { "type": "object", "required": ["server"], "properties": {
                            "server": { "type": "string" },
                            "tools": { "type": "array", "items": { "type": "string" } }
                        } } },
                        "subscription_required": { "type": "boolean", "default": true },
                        "approval_required": { "type": "boolean", "default": false },
                        "policies": { "type": "array", "items": { "type": "object" } }
                    }
                },
                "PolicyBinding": {
                    "type": "object",
                    "required": ["policy"],
                    "properties": {
                        "policy": { "type": "string", "description": "a standard policy's name, a path to a .wasm component (relative to the config file), or sha256:<hex> of an uploaded component" },
                        "config": { "type": "object", "description": "the policy's own settings; the policy checks them" },
                        "fail_open": { "type": "boolean", "default": false },
                        "limits": { "type": "object", "properties": { "memory_mb": { "type": "integer" }, "timeout_ms": { "type": "integer" } } },
                        "allow_hosts": { "type": "array", "items": { "type": "string" } },
                        "instances": { "type": "string", "enum": ["per_exchange", "reused"], "description": "a fresh instance per step, or clean instances kept for later steps; unset: reused for standard policies, per_exchange otherwise" },
                        "on_state_outage": { "type": "string", "enum": ["error", "local"], "default": "error", "description": "while state.redis cannot be reached: tell the policy (standard policies then refuse), or serve its state from this process's memory" },
                        "secrets": { "type": "object", "additionalProperties": { "type": "object", "properties": { "env": { "type": "string" }, "file": { "type": "string" } }, "description": "where the value comes from, never the value" } }
                    },
                    "additionalProperties": false
                },
                "Server": {
                    "type": "object",
                    "required": ["name"],
                    "description": "a server as the config file writes it under `servers`: `backend` (one of `http`, `sse`, `stdio`, `openapi`) or `versions`, and `policies`, `payload_log`, `default_version`, `preview`",
                    "properties": {
                        "name": { "type": "string" },
                        "description": { "type": "string" },
                        "backend": { "type": "object" },
                        "policies": { "$ref": "#/components/schemas/Chain" },
                        "payload_log": { "type": "object" },
                        "versions": { "type": "array", "items": { "$ref": "#/components/schemas/Version" } },
                        "default_version": { "type": "string" },
                        "preview": { "$ref": "#/components/schemas/Preview" }
                    },
                    "additionalProperties": false
                },
                "Version": {
                    "type": "object",
                    "required": ["name", "backend"],
                    "properties": {
                        "name": { "type": "string" },
                        "description": { "type": "string" },
                        "backend": { "type": "object" },
                        "policies": { "$ref": "#/components/schemas/Chain" },
                        "payload_log": { "type": "object" },
                        "retired": { "type": "boolean", "default": false }
                    },
                    "additionalProperties": false
                },
                "Chain": { "type": "array", "items": { "$ref": "#/components/schemas/PolicyBinding" } },
                "Preview": {
                    "type": "object",
                    "required": ["version"],
                    "properties": {
                        "version": { "type": "string" },
                        "share": { "type": "integer", "minimum": 0, "maximum": 100, "default": 0, "description": "percent of new sessions" },
                        "subscriptions": { "type": "array", "items": { "type": "string" }, "description": "subscription ids whose new sessions always reach the preview" }
                    },
                    "additionalProperties": false
                },
                "Routing": {
                    "type": "object",
                    "required": ["default_version"],
                    "properties": {
                        "default_version": { "type": "string" },
                        "preview": { "oneOf": [{ "$ref": "#/components/schemas/Preview" }, { "type": "null" }] },
                        "retired": { "type": "array", "items": { "type": "string" } }
                    },
                    "additionalProperties": false
                },
                "NewSubscription": {
                    "type": "object",
                    "required": ["product", "subscriber"],
                    "properties": {
                        "product": { "type": "string" },
                        "subscriber": { "type": "string", "description": "who subscribes" },
                        "by": { "type": "string", "description": "who made the change, for the history" }
                    },
                    "additionalProperties": false
                },
                "Error": {
                    "type": "object",
                    "description": "an RFC 9457 problem; `type` names the kind (docs/management-api.md, Errors)",
                    "properties": {
                        "type": { "type": "string", "format": "uri" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "errors": { "type": "array", "items": { "type": "object", "properties": { "path": { "type": "string" }, "detail": { "type": "string" } } } }
                    },
                    "required": ["type", "title", "status", "detail"]
                }
            },
            "responses": { "Error": { "description": "an error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Error" } } } } }
        }
    })
}

pub async fn document_handler() -> Json<Value> {
    Json(document())
}
