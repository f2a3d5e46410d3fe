//! MCP servers shipped as WebAssembly *tool components* (wassette's
//! convention): every function the component exports — at its top level or
//! in an exported interface — is a tool. Its input schema is derived from
//! the WIT parameter types (`schema`), arguments are converted from JSON
//! and results back (`values`), and each call runs in a fresh instance
//! (tools are stateless), in a WASI sandbox with nothing granted, under a
//! memory limit and a CPU budget: a call that traps, loops or exhausts its
//! memory fails alone and the next call is served.
//!
//! This is the core of issue 35's `wasm` backend; the backend plugin, the
//! catalog source and the guardrail mapping build on it.

pub mod cases;
mod egress;
pub mod http_server;
pub mod mcp;
pub mod permissions;
mod sandbox;
mod schema;
mod values;

pub use egress::{EgressGate, Refused};
pub use http_server::HttpServer;
use sandbox::{MemoryLimit, Run};

use bytes::Bytes;
use serde_json::Value;
use std::sync::LazyLock;
use std::time::Duration;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the engine's epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The one engine server components are compiled for and run on. Calls are
/// bounded by an epoch deadline rather than fuel: nothing is counted per
/// instruction, and a call past its deadline yields to other tasks until
/// it is stopped. The ticker is a thread that only advances the epoch.
pub fn engine() -> &'static Engine {
    static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("the server components' engine");
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticking.increment_epoch();
            })
            .expect("the epoch ticker");
        engine
    });
    &ENGINE
}

/// What one call may reach: directories preopened at the same path, and
/// environment variables (`permissions::grant` decides them).
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub mounts: Vec<permissions::Mount>,
    pub environment: Vec<(String, String)>,
    /// Where outgoing `wasi:http` may go; none: nowhere.
    pub egress: Option<std::sync::Arc<EgressGate>>,
}

/// How much one call may use.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub memory_bytes: usize,
    /// Wall time from the call's start to its answer.
    pub deadline: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits { memory_bytes: 64 << 20, deadline: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ToolError {
    #[error("not a tool component: {0}")]
    Load(String),
    #[error("no tool '{0}'")]
    UnknownTool(String),
    /// An argument does not fit the tool's parameters: its path and why.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The tool answered its own error (`result::err`).
    #[error("{0}")]
    Failed(String),
    /// The sandbox stopped the call: a trap, the deadline, the memory limit.
    #[error("the call was stopped: {0}")]
    Stopped(String),
}

/// What a call wrote and used, beside its answer.
#[derive(Debug, Default, Clone)]
pub struct CallReport {
    pub stdout: Bytes,
    pub stderr: Bytes,
    /// The most linear memory the instance held.
    pub memory_peak: usize,
    pub took: Duration,
}

/// One tool: an exported function whose types JSON can carry.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub input_schema: Value,
    params: Vec<(String, Type)>,
    results: Vec<Type>,
    export: ComponentExportIndex,
}

struct ToolState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: egress::GateHooks,
    memory: MemoryLimit,
}

impl WasiHttpView for ToolState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl WasiView for ToolState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A compiled tool component, ready to serve calls.
pub struct ToolComponent {
    pre: InstancePre<ToolState>,
    tools: Vec<Tool>,
    limits: CallLimits,
}

impl ToolComponent {
    /// Compiles `bytes` and reads its tools (tests, `plugin test`).
    pub fn load(bytes: &[u8], limits: CallLimits) -> Result<ToolComponent, ToolError> {
        let component = Component::new(engine(), bytes).map_err(|e| ToolError::Load(e.root_cause().to_string()))?;
        Self::new(&component, limits)
    }

    /// Reads a compiled component's tools; refuses one that imports more than WASI.
    pub fn new(component: &Component, limits: CallLimits) -> Result<ToolComponent, ToolError> {
        static LINKER: LazyLock<Linker<ToolState>> = LazyLock::new(sandbox::linker);
        let pre = LINKER.instantiate_pre(component).map_err(|e| ToolError::Load(e.root_cause().to_string()))?;
        let tools = tools_of(engine(), component);
        Ok(ToolComponent { pre, tools, limits })
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Calls `name` with `arguments` (a JSON object) in a fresh instance that reaches nothing.
    pub async fn call(&self, name: &str, arguments: &Value) -> Result<Value, ToolError> {
        self.call_in(&Sandbox::default(), name, arguments).await.0
    }

    /// Calls `name` in a fresh instance that reaches what `sandbox` grants.
    pub async fn call_in(
        &self,
        sandbox: &Sandbox,
        name: &str,
        arguments: &Value,
    ) -> (Result<Value, ToolError>, CallReport) {
        let run = Run::start(self.limits);
        let mut store = None;
        let result = self.run(&run, sandbox, name, arguments, &mut store).await;
        let report = run.report(store.as_ref().map(|s: &Store<ToolState>| &s.data().memory));
        (result, report)
    }

    async fn run(
        &self,
        run: &Run,
        sandbox: &Sandbox,
        name: &str,
        arguments: &Value,
        kept: &mut Option<Store<ToolState>>,
    ) -> Result<Value, ToolError> {
        let tool = self.tools.iter().find(|t| t.name == name).ok_or_else(|| ToolError::UnknownTool(name.into()))?;
        let empty = serde_json::Map::new();
        let object = match arguments {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => return Err(ToolError::Invalid { field: "arguments".into(), reason: "expected an object".into() }),
        };
        let params: Vec<Val> = values::fields_of(object, &tool.params, "")
            .map_err(|(field, reason)| ToolError::Invalid { field, reason })?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let state = ToolState {
            wasi: run.wasi(sandbox)?,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: egress::GateHooks(sandbox.egress.clone()),
            memory: run.memory_limit(),
        };
        let store = kept.insert(Store::new(engine(), state));
        run.bound(store, |s| &mut s.memory);
        let mut results = vec![Val::Bool(false); tool.results.len()];
        let called = async {
            let instance = self.pre.instantiate_async(&mut *store).await?;
            let func =
                instance.get_func(&mut *store, tool.export).ok_or_else(|| wasmtime::Error::msg("no such export"))?;
            func.call_async(&mut *store, &params, &mut results).await
        };
        if let Err(e) = called.await {
            return Err(run.stopped(e, &store.data().memory));
        }
        match results.as_slice() {
            [] => Ok(Value::Null),
            [Val::Result(Err(e))] => Err(ToolError::Failed(match e.as_deref().map(values::to_json) {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => "the tool failed".into(),
            })),
            [Val::Result(Ok(v))] => Ok(v.as_deref().map(values::to_json).unwrap_or(Value::Null)),
            [one] => Ok(values::to_json(one)),
            many => Ok(Value::Array(many.iter().map(values::to_json).collect())),
        }
    }
}

/// Exports a toolchain adds for itself, not tools: componentize-py's
/// pre-initialization hook (`exports#init`), which runs once at build time.
const TOOLCHAIN_EXPORTS: [(&str, &str); 1] = [("exports", "init")];

/// Every exported function whose types JSON can carry, top level first.
fn tools_of(engine: &Engine, component: &Component) -> Vec<Tool> {
    let mut tools = Vec::new();
    let ty = component.component_type();
    for (name, export) in ty.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(func) => {
                if let Some(index) = component.get_export_index(None, name) {
                    tools.extend(tool(name.to_string(), &func, index));
                }
            }
            ComponentItem::ComponentInstance(instance) => {
                let Some(parent) = component.get_export_index(None, name) else { continue };
                // `ns:pkg/iface@1.0.0` → `iface`: tools are named `iface_func`.
                let short = name.rsplit('/').next().unwrap_or(name).split('@').next().unwrap_or(name);
                for (func_name, item) in instance.exports(engine) {
                    let ComponentItem::ComponentFunc(func) = item.ty else { continue };
                    if TOOLCHAIN_EXPORTS.contains(&(name, func_name)) {
                        continue;
                    }
                    if let Some(index) = component.get_export_index(Some(&parent), func_name) {
                        tools.extend(tool(format!("{short}_{func_name}"), &func, index));
                    }
                }
            }
            _ => {}
        }
    }
    tools
}

fn tool(name: String, func: &wasmtime::component::types::ComponentFunc, export: ComponentExportIndex) -> Option<Tool> {
    let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
    let results: Vec<Type> = func.results().collect();
    if !params.iter().map(|(_, t)| t).chain(&results).all(schema::expressible) {
        return None;
    }
    Some(Tool { name, input_schema: schema::object(&params), params, results, export })
}

#[cfg(test)]
mod tests;
