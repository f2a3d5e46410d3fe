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

pub mod mcp;
pub mod permissions;
mod schema;
mod values;

use bytes::Bytes;
use serde_json::Value;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// What a call may write to each of stdout and stderr; more traps the write.
const OUTPUT_CAPACITY: usize = 1 << 20;

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

#[derive(Debug, thiserror::Error, PartialEq)]
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
    memory: MemoryLimit,
}

impl WasiView for ToolState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The memory limit, remembering the peak and whether the limit was hit.
struct MemoryLimit {
    max: usize,
    peak: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, current: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Err(wasmtime::Error::msg("memory limit"));
        }
        self.peak = self.peak.max(desired).max(current);
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
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
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| ToolError::Load(e.to_string()))?;
        let pre = linker.instantiate_pre(component).map_err(|e| ToolError::Load(e.root_cause().to_string()))?;
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
        let started = Instant::now();
        let (stdout, stderr) = (MemoryOutputPipe::new(OUTPUT_CAPACITY), MemoryOutputPipe::new(OUTPUT_CAPACITY));
        let mut store = None;
        let result = self.run(sandbox, name, arguments, &mut store, (&stdout, &stderr)).await;
        let memory_peak = store.as_ref().map_or(0, |s: &Store<ToolState>| s.data().memory.peak);
        let report =
            CallReport { stdout: stdout.contents(), stderr: stderr.contents(), memory_peak, took: started.elapsed() };
        (result, report)
    }

    async fn run(
        &self,
        sandbox: &Sandbox,
        name: &str,
        arguments: &Value,
        kept: &mut Option<Store<ToolState>>,
        (stdout, stderr): (&MemoryOutputPipe, &MemoryOutputPipe),
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
        let mut wasi = wasi_for(sandbox)?;
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let memory = MemoryLimit { max: self.limits.memory_bytes, peak: 0, exceeded: false };
        let state = ToolState { wasi: wasi.build(), table: ResourceTable::new(), memory };
        let store = kept.insert(Store::new(engine(), state));
        store.limiter(|s| &mut s.memory);
        // Past the deadline the call yields at every tick until it is stopped.
        let deadline = Instant::now() + self.limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match Instant::now() < deadline {
            true => Ok(UpdateDeadline::Yield(1)),
            false => Err(wasmtime::Error::msg(DEADLINE)),
        });
        let mut results = vec![Val::Bool(false); tool.results.len()];
        let called = async {
            let instance = self.pre.instantiate_async(&mut *store).await?;
            let func =
                instance.get_func(&mut *store, tool.export).ok_or_else(|| wasmtime::Error::msg("no such export"))?;
            func.call_async(&mut *store, &params, &mut results).await
        };
        if let Err(e) = called.await {
            return Err(self.stopped(e, store.data().memory.exceeded));
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

    /// Why the sandbox stopped a call, in words.
    fn stopped(&self, e: wasmtime::Error, memory_exceeded: bool) -> ToolError {
        let reason = match e.downcast_ref::<Trap>() {
            _ if memory_exceeded => {
                format!("it asked for more than its {} MiB of memory", self.limits.memory_bytes >> 20)
            }
            _ if e.root_cause().to_string() == DEADLINE => {
                format!("it ran past its deadline of {} ms", self.limits.deadline.as_millis())
            }
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        ToolError::Stopped(reason)
    }
}

const DEADLINE: &str = "the call's deadline passed";

/// WASI as the sandbox grants it: its mounts preopened (read-only unless
/// writable), its variables; no sockets, no inherited stdio or arguments.
fn wasi_for(sandbox: &Sandbox) -> Result<wasmtime_wasi::WasiCtxBuilder, ToolError> {
    use wasmtime_wasi::FsPerms;
    let mut builder = WasiCtx::builder();
    for mount in &sandbox.mounts {
        let perms = if mount.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&mount.path, &mount.path, perms)
            .map_err(|e| ToolError::Stopped(format!("mounting {}: {e}", mount.path)))?;
    }
    for (key, value) in &sandbox.environment {
        builder.env(key, value);
    }
    Ok(builder)
}

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
