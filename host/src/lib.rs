//! Tollgate: an MCP gateway. Clients connect over Streamable HTTP or legacy HTTP+SSE; each
//! message flows one way through the layers below, and back:
//!
//! `transport` (HTTP in and out) -> `session` (ids, routing, streams) -> `policy` (the chain) -> `backend` (the MCP server).

pub mod authorization;
pub mod backend;
pub mod cases;
pub mod cli_apply;
pub mod cli_push;
pub mod config;
pub mod discovery;
pub mod dispatch;
pub mod gateway;
pub mod kit_build;
pub mod listener;
pub mod management;
pub mod mcp;
pub mod policy;
pub mod product;
pub mod reload;
pub mod scaffold;
pub mod server;
pub mod session;
pub mod subscription;
pub mod telemetry;
pub mod transport;
