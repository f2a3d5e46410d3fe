//! Host capabilities granted to plugins, one module each. `link_always` adds
//! what every plugin gets; `link_grant` adds one granted interface.

mod config;
mod container_engine;
mod guardrail_options;
mod key_value;
mod logging;
mod outgoing_http;
mod server_components;
mod source;
mod supply_chain;

pub use container_engine::pulls::Layer as PullLayer;
pub use container_engine::{ContainerEngine, EngineConnectError, LocalImage, DEPLOYMENT_LABEL, OWNER_LABEL};
pub use outgoing_http::{HostPattern, OutgoingHttp};

use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::contract::{self as bindings, backend_world::mcp_runtime::plugin as iface, GuardrailOptions};

/// A host capability a plugin may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    Logging,
    KeyValue,
    ContainerEngine,
    OutgoingHttp,
    /// Images the host makes: Git checkouts and packages built, stdio
    /// servers bridged, pushed to a registry.
    Source,
    /// MCP servers shipped as WebAssembly components, served inside the host (1.7).
    ServerComponents,
}

impl Grant {
    /// The interface (without version) the grant links: ours, or `wasi:http`.
    pub fn interface(self) -> &'static str {
        match self {
            Grant::Logging => "mcp-runtime:plugin/logging",
            Grant::KeyValue => "mcp-runtime:plugin/key-value",
            Grant::ContainerEngine => "mcp-runtime:plugin/container-engine",
            Grant::OutgoingHttp => "wasi:http",
            Grant::Source => "mcp-runtime:plugin/source",
            Grant::ServerComponents => "mcp-runtime:plugin/server-components",
        }
    }
}

/// What every call of one plugin shares: identity, settings and what its
/// grants give it access to.
pub struct PluginContext {
    pub id: String,
    pub settings: String,
    /// Empty unless granted `outgoing-http`.
    pub allowed_hosts: Arc<[HostPattern]>,
    pub store: Arc<crate::store::Store>,
    pub engine: Option<Arc<ContainerEngine>>,
    /// Where repositories are fetched from and builds logged (grant `source`).
    pub repositories: Option<Arc<crate::repositories::Repositories>>,
    /// Where components are served (grant `server-components`).
    pub components: Option<Arc<crate::components::ServerComponents>>,
}

/// What one call is about, beyond its arguments: what the always-linked
/// interfaces answer about the deployment it serves. Outside such a call,
/// the defaults: nothing is known.
#[derive(Debug, Default, Clone)]
pub struct CallAbout {
    /// The deployment's guardrail options (`guardrail-options`).
    pub options: GuardrailOptions,
    /// The entry's source, for a backend's `prepare` and `deploy`: the
    /// package it builds (`source.deployment-package`), the component it
    /// serves (`server-components.deployment-component`).
    pub source: Option<crate::catalog::ServerSource>,
    /// What a policy or an approval rule judges (`supply-chain`).
    pub evidence: Option<Arc<crate::supply_chain::Evidence>>,
}

impl CallAbout {
    pub fn options(options: GuardrailOptions) -> CallAbout {
        CallAbout { options, ..CallAbout::default() }
    }

    /// A policy's or an approval rule's call: the options and the evidence
    /// (shared: every link of a chain judges the same evidence).
    pub fn judging(options: GuardrailOptions, evidence: &Arc<crate::supply_chain::Evidence>) -> CallAbout {
        CallAbout { options, evidence: Some(evidence.clone()), source: None }
    }
}

/// The capabilities' state for one call: sandboxed WASI, the resource table,
/// outgoing HTTP behind its allowlist, the plugin's context, and what the
/// call is about.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: OutgoingHttp,
    pub ctx: Arc<PluginContext>,
    about: CallAbout,
}

impl CallState {
    pub fn new(ctx: Arc<PluginContext>, about: CallAbout) -> CallState {
        CallState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: OutgoingHttp::new(&ctx.id, ctx.allowed_hosts.clone()),
            ctx,
            about,
        }
    }

    pub fn wasi_view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }

    pub fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        self.http.view(&mut self.table)
    }
}

/// A plugin store's data: it holds a `CallState` the capabilities work on.
pub trait HasCallState: WasiHttpView + Send + 'static {
    fn call_state(&mut self) -> &mut CallState;
}

/// The interfaces (without version) every plugin may import ungranted.
pub const ALWAYS_LINKED: &[&str] = &[
    "mcp-runtime:plugin/types",
    "mcp-runtime:plugin/config",
    "mcp-runtime:plugin/guardrail-options",
    "mcp-runtime:plugin/supply-chain",
];

pub fn link_always<T: HasCallState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    iface::types::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)?;
    iface::config::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)?;
    iface::guardrail_options::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)?;
    bindings::supply_chain::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)
}

pub fn link_grant<T: HasCallState>(linker: &mut Linker<T>, grant: Grant) -> wasmtime::Result<()> {
    match grant {
        Grant::Logging => iface::logging::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state),
        Grant::KeyValue => iface::key_value::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state),
        Grant::ContainerEngine => {
            iface::container_engine::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)
        }
        Grant::OutgoingHttp => wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker),
        Grant::Source => iface::source::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state),
        Grant::ServerComponents => {
            iface::server_components::add_to_linker::<T, HasSelf<CallState>>(linker, T::call_state)
        }
    }
}

/// The shared-types interface declares no functions.
impl bindings::types::Host for CallState {}
