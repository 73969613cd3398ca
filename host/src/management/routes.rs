//! The route table of the management API: every route it serves, once. [`super::router`]
//! builds the router from it and [`super::openapi`] the OpenAPI document, so neither can name a
//! route the other lacks. An entry gives the method, the path and the handler (whose signature
//! gives the bodies: [`super::route`]), then what a signature cannot say: the summary, the
//! success statuses when there are several, the kinds of problem the handler answers with
//! ([`super::api_error::KINDS`]; those every operation of its kind may get are added for it),
//! whether it takes If-Match, and the values of a path parameter that takes only a few.

use super::route::IfMatch::{Required, ToReplace};
use super::route::{Op, tagged};
use super::{Management, catalog, components, config_io, openapi, ops, playground, policies, products, servers, subscriptions, versions};

/// Every route, in the order the document lists them.
pub fn table() -> Vec<Op> {
    [operations(), servers(), versions(), policies(), products(), subscriptions(), console()].into_iter().flatten().collect()
}

/// The open routes: the document itself, health and metrics.
fn operations() -> Vec<Op> {
    tagged(
        "operations",
        vec![
            Op::get("/openapi.json", openapi::serve, "This document: the management API in OpenAPI 3.1, generated from the gateway's route table and types")
                .open(),
            Op::get("/healthz", ops::healthz, "Liveness: `ok` while the process serves").open(),
            Op::get("/readyz", ops::ready, "Readiness: whether every backend in service answers")
                .status(200, "every backend in service answers: `ready`")
                .status(503, "the backends that do not answer, one a line")
                .open(),
            Op::get("/metrics", ops::metrics, "The gateway's metrics, in the OpenMetrics text format (docs/observability.md)").open(),
        ],
    )
}

fn servers() -> Vec<Op> {
    tagged(
        "servers",
        vec![
            Op::get("/api/servers", super::list_servers, "List the MCP servers, each with its ETag"),
            Op::get("/api/servers/{name}", servers::get, "A server as it runs, in the config file's shape, with its routing and chains")
                .problems(&["not-found"]),
            Op::put("/api/servers/{name}", servers::put, "Create a server (no If-Match, or `*`), or replace it (If-Match)")
                .describe(
                    "Checked as `tollgate validate` checks a file, its OpenAPI documents and chains loaded, then kept and in force at once. \
                     A version unchanged but for its chain keeps running; a replaced backend serves new sessions while live ones finish \
                     where they began.",
                )
                .status(200, "replaced")
                .status(201, "created")
                .if_match(ToReplace)
                .problems(&["forbidden", "invalid-config", "internal"]),
            Op::delete("/api/servers/{name}", servers::delete, "Delete a server; its live sessions end. Refused (409) while a product includes it")
                .if_match(Required)
                .problems(&["not-found", "conflict", "internal"]),
            Op::get("/api/servers/{name}/versions/{version}", servers::get_version, "One version, in the shape the config file writes under `versions`")
                .problems(&["not-found"]),
            Op::put("/api/servers/{name}/versions/{version}", servers::put_version, "Add a version (no If-Match, or `*`) or replace one (If-Match)")
                .describe("Checked and loaded as for a server; other versions and their sessions are untouched.")
                .status(200, "replaced")
                .status(201, "created")
                .if_match(ToReplace)
                .problems(&["not-found", "conflict", "forbidden", "invalid-config", "internal"]),
            Op::delete("/api/servers/{name}/versions/{version}", servers::delete_version, "Delete a version; its live sessions end")
                .describe("The default, the preview and the last version cannot go (409).")
                .if_match(Required)
                .problems(&["not-found", "conflict", "internal"]),
            Op::get(
                "/api/config",
                config_io::get,
                "The running configuration, in the config file's shape (what `tollgate export` prints); secrets written in place are masked",
            ),
        ],
    )
}

/// Which version of a server serves whom. Each change answers with the versions and routing.
fn versions() -> Vec<Op> {
    const CHANGE: &[&str] = &["not-found", "conflict", "invalid", "internal"];
    tagged(
        "versions",
        vec![
            Op::get("/api/servers/{name}/versions", versions::list, "A server's versions and which serves whom (ETag: the routing's)").problems(&["not-found"]),
            Op::post("/api/servers/{name}/versions/{version}/{action}", versions::act, "Promote, retire or reinstate a version")
                .describe(
                    "`promote`: make the version the default for new sessions (live sessions stay where they are; a preview of it ends). \
                     `retire`: its requests, live sessions included, get 410 naming the version to use (not the default or the preview: 409). \
                     `reinstate`: serve a retired version again.",
                )
                .param("action", "What to do with the version.", &["promote", "retire", "reinstate"])
                .if_match(Required)
                .problems(CHANGE),
            Op::get("/api/servers/{name}/routing", versions::get_routing, "The routing alone, in the shape PUT takes").problems(&["not-found"]),
            Op::put("/api/servers/{name}/routing", versions::put_routing, "Replace the routing whole (what `tollgate apply` does)")
                .if_match(Required)
                .problems(CHANGE),
            Op::put("/api/servers/{name}/preview", versions::put_preview, "Route a share of new sessions, and chosen subscriptions, to a preview version")
                .if_match(Required)
                .problems(CHANGE),
            Op::delete("/api/servers/{name}/preview", versions::delete_preview, "End the preview: new sessions all reach the default")
                .if_match(Required)
                .problems(CHANGE),
        ],
    )
}

/// The cap on an uploaded component.
fn component_limit(m: &Management) -> usize {
    m.max_component_mb() as usize * 1024 * 1024
}

fn policies() -> Vec<Op> {
    const REPLACE: &[&str] = &["not-found", "forbidden", "invalid-config", "internal"];
    const HAND_BACK: &[&str] = &["not-found", "conflict", "invalid-config", "internal"];
    tagged(
        "policies",
        vec![
            Op::get("/api/servers/{name}/policies", policies::get, "The chain a server without versions runs, in the config file's shape")
                .problems(&["not-found"]),
            Op::put("/api/servers/{name}/policies", policies::put, "Replace the chain whole")
                .describe(
                    "Checked as `tollgate validate` checks a file and by each policy's own init (422 with the problems), kept, then in force \
                     for every next request; requests in flight finish on the old chain.",
                )
                .if_match(Required)
                .problems(REPLACE),
            Op::delete("/api/servers/{name}/policies", policies::release, "Hand the chain back to the config file")
                .describe(
                    "The chain set through the API is forgotten, and the file's chain as it is now is in force (409 if the file does not \
                     load or has no such server). The answer is that chain.",
                )
                .if_match(Required)
                .problems(HAND_BACK),
            Op::get("/api/servers/{name}/versions/{version}/policies", policies::get_version, "The chain one version runs").problems(&["not-found"]),
            Op::put("/api/servers/{name}/versions/{version}/policies", policies::put_version, "Replace one version's chain, as for a server without versions")
                .if_match(Required)
                .problems(REPLACE),
            Op::delete("/api/servers/{name}/versions/{version}/policies", policies::release_version, "Hand one version's chain back to the config file")
                .if_match(Required)
                .problems(HAND_BACK),
            Op::get("/api/components", components::list, "The uploaded policy components, and which chains use each").problems(&["no-store", "internal"]),
            Op::post("/api/components", components::upload, "Upload a policy component")
                .describe(
                    "It is compiled and checked to be a policy component, then kept under its SHA-256, at most `management.max_component_mb` \
                     MiB. The answer's `policy` (`sha256:<hex>`) is what a binding names.",
                )
                .accepts("application/wasm", component_limit)
                .status(200, "the same component was kept already")
                .status(201, "kept")
                .problems(&["invalid", "too-large", "unsupported-media-type", "no-store", "internal"]),
        ],
    )
}

fn products() -> Vec<Op> {
    tagged(
        "products",
        vec![
            Op::get("/api/products", products::list, "List the products, each with its ETag"),
            Op::get("/api/products/{name}", products::get, "One product").problems(&["not-found"]),
            Op::put(
                "/api/products/{name}",
                products::put,
                "Create a product (no If-Match) or replace it (If-Match); the body is the product as the config file writes it",
            )
            .status(200, "replaced")
            .status(201, "created")
            .if_match(ToReplace)
            .problems(&["no-store", "forbidden", "internal"]),
            Op::delete("/api/products/{name}", products::delete, "Delete a product; its subscriptions get 403 until it exists again")
                .if_match(Required)
                .problems(&["no-store", "not-found", "internal"]),
        ],
    )
}

fn subscriptions() -> Vec<Op> {
    tagged(
        "subscriptions",
        vec![
            Op::get("/api/subscriptions", subscriptions::list, "List the subscriptions (optionally of one product)").problems(&["no-store"]),
            Op::post("/api/subscriptions", subscriptions::create, "Subscribe to a product; pending when the product needs approval")
                .status(201, "subscribed; the answer holds both keys, shown this once")
                .problems(&["no-store", "internal"]),
            Op::get("/api/subscriptions/{id}", subscriptions::get, "One subscription").problems(&["no-store", "not-found"]),
            Op::delete("/api/subscriptions/{id}", subscriptions::delete, "Delete a subscription").if_match(Required).problems(&[
                "no-store",
                "not-found",
                "internal",
            ]),
            Op::post(
                "/api/subscriptions/{id}/keys/{slot}",
                subscriptions::regenerate,
                "Regenerate one key; the answer holds it, shown this once; the other key keeps working",
            )
            .param("slot", "Which key.", &["primary", "secondary"])
            .if_match(Required)
            .problems(&["no-store", "not-found", "internal"]),
            Op::post("/api/subscriptions/{id}/{action}", subscriptions::act, "Change a subscription's state")
                .describe(
                    "`approve` a pending subscription, `suspend` an active one, `resume` a suspended one, or `cancel` it for good. The body, \
                     optional, names who made the change for the history.",
                )
                .param("action", "The change.", &["approve", "suspend", "resume", "cancel"])
                .if_match(Required)
                .problems(&["no-store", "not-found", "conflict", "internal"]),
        ],
    )
}

/// What the console shows beyond the records: the backends' tools, live traffic, and the
/// playground's calls through the client listener.
fn console() -> Vec<Op> {
    tagged(
        "console",
        vec![
            Op::get("/api/servers/{name}/tools", catalog::tools, "The tools a server's backend offers, and whether it answers")
                .describe(
                    "The gateway opens a session of its own with the backend (its configured headers, no chain), lists its tools page by \
                     page and closes it. A listing is kept for 10 s; `refresh=true` asks again.",
                )
                .problems(&["not-found"]),
            Op::get("/api/traffic", ops::traffic, "Requests and errors per server since start, for live rates"),
            Op::get("/api/whoami", super::auth::whoami, "Which token this is: `admin` (reads and changes) or `read-only`"),
            Op::post("/api/playground/call", playground::call, "Call a tool through the gateway's client listener, as an MCP client would")
                .describe(
                    "`initialize`, then `tools/call`, with the subscription key and bearer token given, through the same admission, \
                     product check and chain as any client; the answer holds the HTTP status, the JSON-RPC answer, the time taken and \
                     each policy step's verdict. A refusal is an answer like any other (200); 502 only when the listener did not answer.",
                )
                .problems(&["not-found", "invalid", "unavailable"]),
            Op::post("/api/playground/tools", playground::tools, "List the tools a caller is shown, through the gateway's client listener")
                .describe(
                    "As `/api/playground/call`, with `tools/list` (every page) in place of the call: the tools this subscription key and \
                     bearer token are shown after the product's tool subset and the chain (a tool filter, say), with each step's verdict.",
                )
                .problems(&["not-found", "invalid", "unavailable"]),
        ],
    )
}
