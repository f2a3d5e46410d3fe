//! Compose stacks: a compose file read with the compose spec's types
//! (`docker-compose-types`) and checked key by key, because a compose file
//! is the easiest way for an untrusted author to ask for privileges. What a
//! stack may say is listed (`SUPPORTED`); anything else, and the keys that
//! would loosen the guardrails, is refused naming the service and the key.
//! The checked stack lists its services in the order they start.

mod service;

pub use service::{Condition, HealthCheck, StackService};

use docker_compose_types::{Compose, DependsOnOptions};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A refusal: where (`services.<name>.<key>`, or a top-level key) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct ComposeError {
    pub at: String,
    pub reason: String,
}

impl ComposeError {
    /// The catalog field at fault: `source.compose_file.services.<name>.<key>`,
    /// or `source.main_service`.
    pub fn field(&self) -> String {
        match self.at.as_str() {
            "main_service" => "source.main_service".into(),
            "compose_file" => "source.compose_file".into(),
            at => format!("source.compose_file.{at}"),
        }
    }
}

pub(crate) fn refuse(at: impl Into<String>, reason: impl Into<String>) -> ComposeError {
    ComposeError { at: at.into(), reason: reason.into() }
}

/// Keys a service may have.
pub const SUPPORTED: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "depends_on",
    "healthcheck",
    "volumes",
    "tmpfs",
    "user",
    "read_only",
    "cap_add",
    "cap_drop",
    "mem_limit",
    "cpus",
    "pids_limit",
    "deploy",
    "ports",
];

/// Keys refused always, with why: each would step around the guardrails.
const REFUSED: &[(&str, &str)] = &[
    ("privileged", "privileged containers are never run"),
    ("network_mode", "a stack has its own network; the host's or another container's is never shared"),
    ("pid", "the host's (or another container's) process namespace is never shared"),
    ("ipc", "the host's (or another container's) IPC namespace is never shared"),
    ("userns_mode", "the host's user namespace is never shared"),
    ("devices", "host devices are never passed in"),
    ("security_opt", "the profile sets seccomp, AppArmor and no-new-privileges; a stack cannot loosen them"),
    ("sysctls", "kernel parameters are never set by a stack"),
    ("build", "services run images; build them from a repository entry instead"),
    ("volumes_from", "volumes are named volumes of the stack"),
    ("cgroup_parent", "containers stay in the runtime's cgroups"),
];

/// A compose file checked in full, its services in starting order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub services: Vec<StackService>,
    pub main_service: String,
    /// Things accepted but not done as written (e.g. `ports`): (where, what).
    pub warnings: Vec<(String, String)>,
}

impl Stack {
    /// Reads and checks `text`, whose `main_service` speaks MCP.
    pub fn parse(text: &str, main_service: &str) -> Result<Stack, ComposeError> {
        let raw: Value = serde_yaml_ng::from_str(text).map_err(|e| refuse("compose_file", e.to_string()))?;
        let top = raw.as_mapping().ok_or_else(|| refuse("compose_file", "must be a mapping with `services`"))?;
        for key in top.keys().filter_map(Value::as_str) {
            if !matches!(key, "services" | "volumes" | "version" | "name") && !key.starts_with("x-") {
                return Err(refuse(key, "not supported in a stack (services, volumes, version, name)"));
            }
        }
        let raw_services = top
            .get("services")
            .and_then(Value::as_mapping)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refuse("services", "a stack needs at least one service"))?;
        for (name, service) in raw_services {
            let name = name.as_str().unwrap_or_default();
            let keys = service.as_mapping().ok_or_else(|| refuse(format!("services.{name}"), "must be a mapping"))?;
            for key in keys.keys().filter_map(Value::as_str) {
                let at = format!("services.{name}.{key}");
                if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
                    return Err(refuse(at, *why));
                }
                if !SUPPORTED.contains(&key) && !key.starts_with("x-") {
                    return Err(refuse(at, format!("not supported in a stack (supported: {})", SUPPORTED.join(", "))));
                }
            }
        }
        // The spec's types lack `cpus` and `pids_limit` (read from the raw service below).
        let mut typed = raw.clone();
        if let Some(services) = typed.get_mut("services").and_then(Value::as_mapping_mut) {
            for service in services.values_mut().filter_map(Value::as_mapping_mut) {
                service.remove("cpus");
                service.remove("pids_limit");
            }
        }
        let compose: Compose = serde_yaml_ng::from_value(typed).map_err(|e| refuse("compose_file", e.to_string()))?;
        let mut services = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, service) in compose.services.0.iter() {
            let raw = &raw_services[name.as_str()];
            let Some(service) = service else { return Err(refuse(format!("services.{name}"), "is empty")) };
            services.insert(name.clone(), StackService::read(name, service, raw, &mut warnings)?);
        }
        if let Some(volumes) = top.get("volumes").and_then(Value::as_mapping) {
            for (name, volume) in volumes {
                let declared = volume.as_mapping().map(|m| m.keys().filter_map(Value::as_str).collect::<Vec<_>>());
                if let Some(key) = declared.unwrap_or_default().into_iter().next() {
                    let at = format!("volumes.{}.{key}", name.as_str().unwrap_or_default());
                    return Err(refuse(at, "named volumes are plain: no driver or options"));
                }
            }
        }
        if !services.contains_key(main_service) {
            let known: Vec<&String> = services.keys().collect();
            return Err(refuse("main_service", format!("no service '{main_service}' in the stack ({known:?})")));
        }
        let order = start_order(&services)?;
        let services = order.into_iter().filter_map(|name| services.remove(&name)).collect();
        Ok(Stack { services, main_service: main_service.into(), warnings })
    }

    /// Every image the stack runs, once each.
    pub fn images(&self) -> Vec<&str> {
        let images: BTreeSet<&str> = self.services.iter().map(|s| s.image.as_str()).collect();
        images.into_iter().collect()
    }

    /// `images`, owned (to outlive the stack).
    pub fn images_owned(&self) -> Vec<String> {
        self.images().into_iter().map(String::from).collect()
    }
}

/// Services in an order where each comes after what it depends on;
/// an unknown dependency or a cycle is refused.
fn start_order(services: &BTreeMap<String, StackService>) -> Result<Vec<String>, ComposeError> {
    for (name, service) in services {
        for (dependency, _) in &service.depends_on {
            if !services.contains_key(dependency) {
                return Err(refuse(format!("services.{name}.depends_on"), format!("no service '{dependency}'")));
            }
        }
    }
    let mut order: Vec<String> = Vec::new();
    let mut placed = BTreeSet::new();
    while order.len() < services.len() {
        let ready: Vec<&String> = services
            .iter()
            .filter(|(name, s)| !placed.contains(*name) && s.depends_on.iter().all(|(d, _)| placed.contains(d)))
            .map(|(name, _)| name)
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&String> = services.keys().filter(|n| !placed.contains(*n)).collect();
            let at = format!("services.{}.depends_on", stuck[0]);
            return Err(refuse(at, format!("the dependencies of {stuck:?} form a cycle")));
        }
        for name in ready {
            placed.insert(name.clone());
            order.push(name.clone());
        }
    }
    Ok(order)
}

/// `depends_on` in either form: (service, condition).
pub(crate) fn dependencies(
    name: &str,
    depends_on: &DependsOnOptions,
) -> Result<Vec<(String, Condition)>, ComposeError> {
    match depends_on {
        DependsOnOptions::Simple(names) => Ok(names.iter().map(|n| (n.clone(), Condition::Started)).collect()),
        DependsOnOptions::Conditional(map) => map
            .iter()
            .map(|(dependency, c)| {
                let condition = match c.condition.as_str() {
                    "service_started" => Condition::Started,
                    "service_healthy" => Condition::Healthy,
                    "service_completed_successfully" => Condition::CompletedSuccessfully,
                    other => {
                        let at = format!("services.{name}.depends_on.{dependency}.condition");
                        return Err(refuse(at, format!("'{other}' is not a condition")));
                    }
                };
                Ok((dependency.clone(), condition))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
