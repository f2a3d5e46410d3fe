//! Host-side bindings of the `wit/` contract, one module per world. The
//! backend world generates the shared types and host interfaces; the other
//! worlds reuse them so one `Host` impl serves every plugin.

pub mod backend_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "runtime-backend",
        imports: { default: async },
        exports: { default: async },
    });
}

pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "guardrail-policy",
        imports: { default: async },
        exports: { default: async },
        with: {
            "mcp-runtime:plugin/types": super::backend_world::mcp_runtime::plugin::types,
            "mcp-runtime:plugin/config": super::backend_world::mcp_runtime::plugin::config,
            "mcp-runtime:plugin/logging": super::backend_world::mcp_runtime::plugin::logging,
            "mcp-runtime:plugin/guardrail-options": super::backend_world::mcp_runtime::plugin::guardrail_options,
        },
    });
}

pub mod approval_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "approval-rule",
        imports: { default: async },
        exports: { default: async },
        with: {
            "mcp-runtime:plugin/types": super::backend_world::mcp_runtime::plugin::types,
            "mcp-runtime:plugin/config": super::backend_world::mcp_runtime::plugin::config,
            "mcp-runtime:plugin/logging": super::backend_world::mcp_runtime::plugin::logging,
            "mcp-runtime:plugin/guardrail-options": super::backend_world::mcp_runtime::plugin::guardrail_options,
        },
    });
}

pub use approval_world::exports::mcp_runtime::plugin::approval;
pub use backend_world::exports::mcp_runtime::plugin::backend;
pub use backend_world::mcp_runtime::plugin::{
    config, container_engine, guardrail_options, key_value, logging, source, types,
};
pub use policy_world::exports::mcp_runtime::plugin::policy;
