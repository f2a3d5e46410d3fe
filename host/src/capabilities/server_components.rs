//! Grant `server-components` (1.7): a backend serves `wasm` entries'
//! components inside the host (`components/`). The plugin names the
//! deployment; what is fetched is the host's record of the entry, and the
//! sandbox is made from the guardrails it passes. The component's bytes,
//! its compiled code and its calls never pass through the plugin.

use std::sync::Arc;

use super::CallState;
use crate::components::{ComponentError as Failure, Served, ServerComponents, Spec, COMPONENT_SCHEME};
use crate::contract::server_components::{
    ComponentError, ComponentInfo, ComponentSource, ComponentSpec, ComponentStatus, Host,
};
use crate::contract::types::{Denial, LogLine, LogQuery, LogStream, Warning};
use crate::contract::GuardrailOptions;

impl From<Failure> for ComponentError {
    fn from(e: Failure) -> ComponentError {
        match e {
            Failure::Invalid { field, reason } => ComponentError::Invalid(Denial { field, reason }),
            Failure::NotFound(why) => ComponentError::NotFound(why),
            Failure::Unavailable(why) => ComponentError::Unavailable(why),
            Failure::Failed(why) => ComponentError::Failed(why),
        }
    }
}

impl CallState {
    fn components(&self) -> Result<Arc<ServerComponents>, ComponentError> {
        self.ctx.components.clone().ok_or_else(|| ComponentError::Unavailable("no component runtime".into()))
    }
}

fn status_of(served: &Served) -> ComponentStatus {
    let counters = served.counters();
    ComponentStatus {
        serving: true,
        endpoint: format!("{COMPONENT_SCHEME}{}", served.deployment_id),
        stopped_calls: counters.stopped,
        calls: counters.calls,
        last_error: counters.last_error,
        started_at: Some(served.started_at.clone()),
        warnings: served
            .warnings
            .iter()
            .map(|w| Warning { field: w.field.clone(), message: w.message.clone() })
            .collect(),
        memory_limit_bytes: served.server.limits().memory_bytes as u64,
        memory_peak_bytes: counters.memory_peak as u64,
        cpu_ns: u64::try_from(counters.busy.as_nanos()).unwrap_or(u64::MAX),
    }
}

impl Host for CallState {
    async fn deployment_component(&mut self) -> Option<ComponentSource> {
        let source = self.about.source.as_ref()?.component()?.ok()?;
        Some(ComponentSource {
            digest: source.digest(),
            origin: source.origin.to_string(),
            permissions: source.permissions.map(String::from),
        })
    }

    async fn prepare(&mut self, deployment_id: String) -> Result<ComponentInfo, ComponentError> {
        let components = self.components()?;
        let entry = self.about.source.clone();
        let source = match entry.as_ref().and_then(|s| s.component()) {
            Some(checked) => checked.map_err(|e| {
                let crate::catalog::CatalogError::Invalid { field, reason } = e;
                ComponentError::Invalid(Denial { field, reason })
            })?,
            None => {
                let reason =
                    format!("prepare fetches the wasm entry deployment '{deployment_id}' runs; this call has none");
                return Err(ComponentError::Invalid(Denial { field: "source.type".into(), reason }));
            }
        };
        let prepared = components.prepare(&source).await?;
        tracing::info!(deployment = %deployment_id, digest = %source.digest(), size = prepared.size, "component prepared");
        Ok(ComponentInfo { digest: source.digest(), size_bytes: prepared.size, tools: prepared.tools })
    }

    async fn start(&mut self, spec: ComponentSpec) -> Result<ComponentStatus, ComponentError> {
        let components = self.components()?;
        let sha256 = spec.digest.strip_prefix("sha256:").unwrap_or(&spec.digest).to_string();
        let guardrails = crate::contract::effective_guardrails(&spec.guardrails, GuardrailOptions::default());
        let spec = Spec {
            deployment_id: spec.deployment_id,
            sha256,
            permissions: spec.permissions,
            guardrails,
            env: spec.env,
        };
        Ok(status_of(components.start(spec).await?.as_ref()))
    }

    async fn stop(&mut self, deployment_id: String) -> Result<(), ComponentError> {
        Ok(self.components()?.stop(&deployment_id)?)
    }

    async fn resume(&mut self, deployment_id: String) -> Result<ComponentStatus, ComponentError> {
        Ok(status_of(self.components()?.resume(&deployment_id).await?.as_ref()))
    }

    async fn remove(&mut self, deployment_id: String) -> Result<(), ComponentError> {
        Ok(self.components()?.remove(&deployment_id)?)
    }

    async fn status(&mut self, deployment_id: String) -> Result<ComponentStatus, ComponentError> {
        match self.components()?.serving(&deployment_id).await? {
            Some(served) => Ok(status_of(&served)),
            None => Ok(ComponentStatus {
                serving: false,
                endpoint: format!("{COMPONENT_SCHEME}{deployment_id}"),
                stopped_calls: 0,
                calls: 0,
                last_error: None,
                started_at: None,
                warnings: Vec::new(),
                memory_limit_bytes: 0,
                memory_peak_bytes: 0,
                cpu_ns: 0,
            }),
        }
    }

    async fn logs(&mut self, deployment_id: String, query: LogQuery) -> Result<Vec<LogLine>, ComponentError> {
        let Some(served) = self.components()?.serving(&deployment_id).await? else { return Ok(Vec::new()) };
        let lines = served.log_tail(query.tail as usize);
        Ok(lines
            .into_iter()
            .map(|line| LogLine {
                stream: match line.stream {
                    crate::logs::Stream::Stdout => LogStream::Stdout,
                    crate::logs::Stream::Stderr => LogStream::Stderr,
                },
                time: line.time,
                text: line.text,
                service: line.service,
            })
            .collect())
    }

    async fn known(&mut self) -> Vec<String> {
        self.components().map(|c| c.known()).unwrap_or_default()
    }
}
