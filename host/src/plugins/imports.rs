//! What a component imports, read before it is linked: refused when it
//! asks for a host interface its manifest does not grant or a contract this
//! host cannot run, and what it can ask the host to do.

use wasmtime::component::Component;
use wasmtime::Engine;

use super::{compat, PluginError, PluginManifest};
use crate::capabilities;

pub const SOURCE_INTERFACE: &str = "mcp-runtime:plugin/source";

/// Whether the component imports `function` of the host interface `interface`
/// (any version): a component imports only the functions it calls.
pub fn imports_function(engine: &Engine, component: &Component, interface: &str, function: &str) -> bool {
    component.component_type().imports(engine).any(|(name, item)| {
        let wasmtime::component::types::ComponentItem::ComponentInstance(instance) = item.ty else { return false };
        name.split('@').next() == Some(interface) && instance.exports(engine).any(|(export, _)| export == function)
    })
}

pub fn check_grants(engine: &Engine, component: &Component, manifest: &PluginManifest) -> Result<(), PluginError> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(name, _)| name).chain(ty.exports(engine).map(|(name, _)| name));
    if let Some(reason) = compat::refuse(names) {
        return Err(PluginError::Load { plugin: manifest.id.clone(), reason });
    }
    for (name, _) in ty.imports(engine) {
        let interface = name.split('@').next().unwrap_or(name);
        let granted = |prefix: &str| interface == prefix || interface.starts_with(&format!("{prefix}/"));
        let allowed = match interface {
            _ if capabilities::ALWAYS_LINKED.contains(&interface) => true,
            _ if manifest.grants.iter().any(|g| granted(g.interface())) => true,
            // Sandboxed WASI: no preopened files, no sockets, no environment.
            _ => interface.starts_with("wasi:") && !granted("wasi:http"),
        };
        if !allowed {
            return Err(PluginError::NotGranted { plugin: manifest.id.clone(), interface: name.to_string() });
        }
    }
    Ok(())
}
