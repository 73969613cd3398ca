//! Several gateways on shared state: a real Redis started by the test, real MCP clients.

mod durable;
mod postgres_records;
mod redis_state;
mod sessions;
