//! Host capabilities granted to plugins, one module each. `link_always` adds
//! what every plugin gets; `link_grant` adds one granted interface.

mod config;
mod container_engine;
mod key_value;
mod logging;
mod outgoing_http;

pub use container_engine::{ContainerEngine, EngineConnectError, OwnedObject, DEPLOYMENT_LABEL, OWNER_LABEL};
pub use outgoing_http::{HostPattern, OutgoingHttp};

use crate::plugins::bindings::{self, backend_world::mcp_runtime::plugin as iface};
use crate::plugins::{Grant, PluginState};
use wasmtime::component::{HasSelf, Linker};

pub fn link_always(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    iface::types::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    iface::config::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)
}

pub fn link_grant(linker: &mut Linker<PluginState>, grant: Grant) -> wasmtime::Result<()> {
    match grant {
        Grant::Logging => iface::logging::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s),
        Grant::KeyValue => iface::key_value::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s),
        Grant::ContainerEngine => {
            iface::container_engine::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)
        }
        Grant::OutgoingHttp => wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker),
    }
}

/// The shared-types interface declares no functions.
impl bindings::types::Host for PluginState {}
