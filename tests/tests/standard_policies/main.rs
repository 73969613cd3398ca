//! The standard policies end to end: the real `tollgate` binary, each policy bound by name in a
//! server's `policies:` list, between real peers: an identity provider the test runs (OIDC
//! discovery, a JWKS with keys generated here, a client-credentials token endpoint), MCP
//! backends that record what reached them, the official Rust SDK client and plain HTTP.
//!
//! Run `cargo build -p tollgate` first: the tests start the binary next to them.

mod cache;
mod client_headers;
mod credentials;
mod doors;
mod ip_filter;
mod jwt;
mod quota;
mod rate_limit;
mod session_binding;
mod stateless;
mod stateless_parity;
mod tool_filter;
