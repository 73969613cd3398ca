//! What the gateway promises against hostile clients, backends and API callers, each tried
//! through the real binary (see `docs/security.md`).

mod client_address;
mod compile_bound;
mod compile_cache;
mod connections;
mod management_allow;
mod policy_time;
mod secrets;
mod sse_origin;
mod state_bound;
