//! The default guardrail evaluator: profile × backend capabilities × request →
//! effective guardrails plus warnings, or a denial naming the field at fault.
//!
//! Rules, in order:
//! 1. Requested resources may not exceed the profile's maxima (denial), and
//!    default to those maxima when not requested.
//! 2. Resources may not exceed the backend's hard maxima (denial).
//! 3. A guardrail the backend cannot enforce is dropped with a warning, never a failure.
//!    Learn mode (a guardrail option, asked for through `guardrail-options`)
//!    needs a backend that filters egress by host: it alone sees each host.

wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use guest_kit::types::{BackendCapabilities, Denial, EffectiveGuardrails, Warning};
use guest_kit::{denial, warning};
use mcp_runtime::plugin::guardrail_options;

struct DefaultGuardrails;

impl Guest for DefaultGuardrails {
    fn evaluate(input: PolicyInput) -> Result<PolicyOutput, Denial> {
        let PolicyInput { request, profile, capabilities, mut effective, mut warnings } = input;
        let asked = &request.resources;
        let max = &profile.resources;

        effective.cpu_millis = within("resources.cpu", asked.cpu_millis, max.max_cpu_millis, "millicores")?;
        effective.memory_bytes = within("resources.memory", asked.memory_bytes, max.max_memory_bytes, "bytes")?;
        effective.pids = within("resources.pids", asked.pids, max.max_pids, "processes")?;
        backend_maxima(&capabilities, &effective)?;

        if !profile.recommended_backends.is_empty() && !profile.recommended_backends.contains(&request.backend) {
            let message = format!("profile '{}' is not recommended for backend '{}'", profile.name, request.backend);
            warnings.push(warning("profile", message));
        }
        drop_unenforceable(&capabilities, &mut effective, &mut warnings);
        Ok(PolicyOutput { effective, warnings })
    }
}

/// The requested value, or the profile maximum when nothing was requested.
fn within<T: PartialOrd + Copy + std::fmt::Display>(
    field: &str,
    asked: Option<T>,
    max: Option<T>,
    unit: &str,
) -> Result<Option<T>, Denial> {
    match (asked, max) {
        (Some(a), Some(m)) if a > m => {
            Err(denial(field, format!("requested {a} {unit} exceeds the profile maximum of {m} {unit}")))
        }
        (Some(a), _) => Ok(Some(a)),
        (None, m) => Ok(m),
    }
}

fn backend_maxima(caps: &BackendCapabilities, effective: &EffectiveGuardrails) -> Result<(), Denial> {
    if let Some(cpu) = effective.cpu_millis.filter(|&c| caps.max_cpu_millis > 0 && c > caps.max_cpu_millis) {
        let reason = format!("{cpu} millicores exceeds the backend maximum of {}", caps.max_cpu_millis);
        return Err(denial("resources.cpu", reason));
    }
    if let Some(mem) = effective.memory_bytes.filter(|&m| caps.max_memory_bytes > 0 && m > caps.max_memory_bytes) {
        let reason = format!("{mem} bytes exceeds the backend maximum of {}", caps.max_memory_bytes);
        return Err(denial("resources.memory", reason));
    }
    Ok(())
}

fn drop_unenforceable(caps: &BackendCapabilities, e: &mut EffectiveGuardrails, warnings: &mut Vec<Warning>) {
    let mut warn = |field: &str, message: &str| warnings.push(warning(field, message));

    let filters_hosts = e.network.egress_allowed
        && !e.network.allowed_hosts.is_empty()
        && !e.network.allowed_hosts.iter().any(|h| h == "*");
    if filters_hosts && !caps.supports_egress_host_filtering {
        warn("network.allowed_hosts", "backend controls egress on/off only: egress stays open to every host");
        e.network.allowed_hosts = vec!["*".into()];
    }
    if e.network.egress_allowed && guardrail_options::egress_learn() && !caps.supports_egress_host_filtering {
        warn("network.egress_audit", "backend cannot see the hosts a server reaches: learn mode records nothing");
    }
    if e.filesystem.read_only_root && !caps.supports_readonly_fs {
        warn("filesystem.read_only_root", "backend filesystem is always ephemeral and writable");
        e.filesystem.read_only_root = false;
    }
    if !e.filesystem.allowed_mounts.is_empty() && !caps.supports_readonly_fs {
        warn("filesystem.allowed_mounts", "backend offers no mounts: only its ephemeral filesystem");
        e.filesystem.allowed_mounts.clear();
    }
    if !e.capabilities.add.is_empty() && !caps.supports_capability_add {
        warn("capabilities.add", "backend's security context is fixed: capabilities cannot be added");
        e.capabilities.add.clear();
    }
    if e.pids.is_some() && !caps.supports_pid_limits {
        warn("resources.max_pids", "backend does not expose a process limit");
        e.pids = None;
    }
    if !caps.supports_custom_capabilities {
        let custom_seccomp = e.seccomp.as_deref().is_some_and(|s| s != "runtime/default");
        if custom_seccomp {
            warn("seccomp", "backend enforces its own seccomp profile; the custom one is not applied");
            e.seccomp = Some("runtime/default".into());
        }
        if e.apparmor.is_some() {
            warn("apparmor", "backend enforces its own AppArmor profile; the named one is not applied");
            e.apparmor = None;
        }
    }
}

export!(DefaultGuardrails);
