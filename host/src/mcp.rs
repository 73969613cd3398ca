//! The bottom layer: MCP's own vocabulary, which every other module speaks and which imports
//! nothing of the gateway. JSON-RPC messages, the SSE codec, header names and rules, and the
//! gateway's errors with the one mapping to JSON-RPC codes and HTTP statuses.

pub mod error;
pub mod headers;
pub mod jsonrpc;
pub mod sse;
