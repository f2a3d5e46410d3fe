//! MCP: the client that proves a deployed server answers (`client`), the
//! data path that forwards callers' MCP traffic to it (`proxy`), and for
//! servers that speak stdio or HTTP+SSE, the bridge (the `mcp-bridge` crate,
//! which the in-image `mcp-stdio-bridge` shares) that serves them to callers
//! as streamable HTTP, reaching them through the engine (`bridge`).

pub mod bridge;
pub mod client;
pub mod proxy;
pub mod upstream;

pub use mcp_bridge::{generation, link};
