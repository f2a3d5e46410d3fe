//! The `wit/` contract as the host sees it: the generated bindings, and the
//! conversions between WIT types and the host's own domain types. Plugins
//! speak WIT; the store and the API speak the domain types, so a change in
//! one never leaks into the other.

mod bindings;
mod convert;
mod evidence;
mod options;

/// The version of `wit/` this host is built against: it runs components built
/// against this major version and this or an earlier minor (`plugins::compat`).
pub const WIT_VERSION: &str = "1.8.0";

pub use bindings::{
    approval, approval_world, backend, backend_world, config, container_engine, guardrail_options, key_value, logging,
    server_components, source, supply_chain,
};
pub use bindings::{policy, policy_world, types};
pub use convert::{capabilities_view, deploy_request, effective_guardrails, initial_guardrails};
pub use options::GuardrailOptions;
