//! Tollgate: an MCP gateway.
