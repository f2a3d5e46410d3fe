//! MCP: the client that proves a deployed server answers (`client`) and the
//! data path that forwards callers' MCP traffic to it (`proxy`).

pub mod client;
pub mod proxy;
