//! One deployment's component while the host serves it: its tools under the
//! limits and sandbox its guardrails give, what its calls wrote (its log),
//! and what they came to (its status). A stopped call is recorded as an
//! event and counted; the next call runs in a fresh instance all the same.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::{ComponentStop, EventData};
use crate::guardrails::Warning;
use crate::logs::{Line, Stream};
use crate::store::{NewEvent, Store};
use crate::wasm_tools::mcp::ToolServer;
use crate::wasm_tools::{CallLimits, CallReport, HttpServer, Sandbox, Tool, ToolComponent, ToolError};

/// Log lines kept per deployment (the oldest go first).
const KEPT_LINES: usize = 2_000;

/// What kind of server the component is.
pub enum Server {
    /// Every exported function a tool; the host answers MCP.
    Tools(ToolComponent),
    /// A `wasi:http` server that answers MCP itself.
    Http(HttpServer),
}

impl Server {
    pub fn limits(&self) -> CallLimits {
        match self {
            Server::Tools(tools) => tools.limits(),
            Server::Http(http) => http.limits(),
        }
    }
}

pub struct Served {
    pub deployment_id: String,
    pub server: Server,
    pub sandbox: Sandbox,
    pub warnings: Vec<Warning>,
    pub started_at: String,
    pub(super) store: Arc<Store>,
    pub(super) counters: Mutex<Counters>,
    pub(super) log: Mutex<VecDeque<Line>>,
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub calls: u64,
    pub stopped: u32,
    pub last_error: Option<String>,
    pub memory_peak: usize,
    pub busy: Duration,
}

impl Served {
    pub fn counters(&self) -> Counters {
        self.counters.lock().expect("counters poisoned").clone()
    }

    /// The last `tail` lines.
    pub fn log_tail(&self, tail: usize) -> Vec<Line> {
        let log = self.log.lock().expect("log poisoned");
        log.iter().skip(log.len().saturating_sub(tail)).cloned().collect()
    }

    /// What a run came to: its output into the log, its figures counted, a stopped run an event.
    pub(super) fn record<T>(&self, tool: &str, result: &Result<T, ToolError>, report: &CallReport) {
        if !report.stdout.is_empty() || !report.stderr.is_empty() {
            let now = chrono::Utc::now().to_rfc3339();
            let mut log = self.log.lock().expect("log poisoned");
            for (stream, bytes) in [(Stream::Stdout, &report.stdout), (Stream::Stderr, &report.stderr)] {
                for text in String::from_utf8_lossy(bytes).lines() {
                    if log.len() == KEPT_LINES {
                        log.pop_front();
                    }
                    log.push_back(Line { stream, time: Some(now.clone()), text: text.into(), service: None });
                }
            }
        }
        let mut counters = self.counters.lock().expect("counters poisoned");
        counters.calls += 1;
        counters.busy += report.took;
        counters.memory_peak = counters.memory_peak.max(report.memory_peak);
        if let Err(ToolError::Stopped(why)) = result {
            counters.stopped += 1;
            counters.last_error = Some(why.clone());
            drop(counters);
            let data = EventData::ComponentCallStopped(ComponentStop { tool: tool.into(), reason: why.clone() });
            if let Err(e) = self.store.record(NewEvent::for_deployment(&self.deployment_id, data)) {
                tracing::warn!(deployment = %self.deployment_id, "cannot record a stopped call: {e}");
            }
        }
    }
}

impl ToolServer for Served {
    fn tools(&self) -> &[Tool] {
        match &self.server {
            Server::Tools(tools) => tools.tools(),
            Server::Http(_) => &[],
        }
    }

    async fn call(&self, name: &str, arguments: &Value) -> Result<Value, ToolError> {
        let Server::Tools(tools) = &self.server else { return Err(ToolError::UnknownTool(name.into())) };
        let (result, report) = tools.call_in(&self.sandbox, name, arguments).await;
        self.record(name, &result, &report);
        result
    }
}
