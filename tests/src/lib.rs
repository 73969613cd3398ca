//! Shared support for the end-to-end tests.

pub mod client;
pub mod gateway;
