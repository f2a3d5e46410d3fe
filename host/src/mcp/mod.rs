//! MCP: the client that proves a deployed server answers (`client`), the
//! data path that forwards callers' MCP traffic to it (`proxy`), and for
//! servers that speak stdio or HTTP+SSE, the link to them (`link`) that
//! `bridge` serves to callers as streamable HTTP.

pub mod bridge;
pub mod client;
pub mod generation;
pub mod link;
pub mod proxy;
pub mod upstream;
