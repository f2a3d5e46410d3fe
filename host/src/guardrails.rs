//! Guardrail profiles: the seed's schema, its four presets, and the quantities
//! ("0.5" CPUs, "512m" memory) they are written in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: &str, reason: impl Into<String>) -> GuardrailError {
    GuardrailError::Invalid { field: field.into(), reason: reason.into() }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "internal-only", "description": "No egress but to the intranet",
    "network": {"egress_allowed": true, "allowed_hosts": ["*.internal.example.com"]},
    "filesystem": {"read_only_root": true}, "resources": {"max_cpu": "0.5", "max_memory": "256m"}}))]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub recommended_backends: Vec<String>,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub filesystem: FilesystemPolicy,
    #[serde(default)]
    pub capabilities: CapabilityPolicy,
    #[serde(default)]
    pub resources: ResourceLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor: Option<String>,
    #[serde(default)]
    pub supply_chain: SupplyChainPolicy,
}

/// What a profile asks of the supply chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplyChainPolicy {
    /// Image signatures, for images a configured key covers
    /// (`runtime.supply_chain.trusted_keys`); any other image is `not_configured`.
    #[serde(default)]
    pub signatures: SignatureMode,
}

/// What a profile asks of an image's signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureMode {
    /// Not checked.
    #[default]
    Off,
    /// Checked; a missing or invalid signature is a warning (and the default
    /// approval rule holds a missing one for the security team).
    Warn,
    /// Checked; anything but a valid signature refuses the deploy.
    Require,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    #[serde(default = "yes")]
    pub egress_allowed: bool,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub ingress_ports: Vec<u16>,
    /// Learn mode: egress goes through the proxy to any public host, and each
    /// destination is recorded (`GET /runtimes/{id}/egress` proposes the
    /// allowlist). `allowed_hosts` then lists only private addresses to allow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress_audit: bool,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            egress_allowed: true,
            allowed_hosts: Vec::new(),
            ingress_ports: Vec::new(),
            egress_audit: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesystemPolicy {
    #[serde(default)]
    pub read_only_root: bool,
    #[serde(default)]
    pub allowed_mounts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityPolicy {
    #[serde(default)]
    pub drop_all: bool,
    #[serde(default)]
    pub add: Vec<String>,
}

/// The guardrails a deployment actually runs under, after policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveGuardrails {
    pub profile: String,
    pub network: NetworkPolicy,
    pub filesystem: FilesystemPolicy,
    pub capabilities: CapabilityPolicy,
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u32>,
    pub seccomp: Option<String>,
    pub apparmor: Option<String>,
    /// A package entry's install scripts run during its build
    /// (`allow_install_scripts`): arbitrary code from its dependency tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub install_scripts: bool,
}

/// A guardrail or setting that was not applied as asked, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Warning {
    /// Dotted field path, e.g. `filesystem.read_only_root`.
    pub field: String,
    pub message: String,
}

/// Maxima as written in profiles: `max_cpu: "0.5"`, `max_memory: "512m"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pids: Option<u32>,
}

/// Every Linux capability (capabilities(7)), as Docker names them.
const LINUX_CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// `*`, a host name (optionally `*.`-prefixed), an IP address or CIDR, each with an optional `:port`.
fn is_host_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (host, port) = match pattern.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (pattern, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return false;
    }
    if let Some((address, bits)) = host.split_once('/') {
        let max = if address.contains(':') { 128 } else { 32 };
        return address.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= max);
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A security profile's name: letters, digits, `.`, `_`, `-`, `/`.
fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.split('/').any(|part| part.is_empty() || part == "..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

fn excerpt(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Parses a CPU quantity into millicores: `"0.5"` → 500, `"2"` → 2000, `"250m"` → 250.
pub fn parse_cpu(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse::<u32>().ok().filter(|&m| m > 0);
    }
    let cpus: f64 = text.parse().ok()?;
    (cpus.is_finite() && cpus > 0.0 && cpus <= 1_000_000.0).then(|| (cpus * 1000.0).round() as u32)
}

/// Parses a memory quantity into bytes, with Docker's binary suffixes:
/// `"512m"` → 512 MiB, `"2g"` → 2 GiB; `Ki/Mi/Gi` and plain bytes also accepted.
pub fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" => 1 << 10,
        "m" | "mb" | "mi" => 1 << 20,
        "g" | "gb" | "gi" => 1 << 30,
        "t" | "tb" | "ti" => 1 << 40,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

impl Profile {
    /// Checks every field a person writes, naming the first one at fault.
    pub fn validate(&self) -> Result<(), GuardrailError> {
        if !is_valid_name(&self.name) {
            return Err(invalid("name", "1-63 characters of a-z, 0-9 and '-', starting with a letter"));
        }
        if let Some(cpu) = &self.resources.max_cpu {
            parse_cpu(cpu).ok_or_else(|| {
                invalid("resources.max_cpu", format!("'{cpu}' is not a CPU quantity such as \"0.5\" or \"250m\""))
            })?;
        }
        if let Some(mem) = &self.resources.max_memory {
            parse_memory(mem).ok_or_else(|| {
                invalid("resources.max_memory", format!("'{mem}' is not a memory quantity such as \"512m\" or \"2g\""))
            })?;
        }
        if self.resources.max_pids == Some(0) {
            return Err(invalid("resources.max_pids", "must be at least 1"));
        }
        for (i, cap) in self.capabilities.add.iter().enumerate() {
            let name = cap.strip_prefix("CAP_").unwrap_or(cap);
            if !LINUX_CAPABILITIES.contains(&name) {
                return Err(invalid(
                    &format!("capabilities.add[{i}]"),
                    format!("'{cap}' is not a Linux capability such as NET_BIND_SERVICE"),
                ));
            }
        }
        for (i, mount) in self.filesystem.allowed_mounts.iter().enumerate() {
            let bad_part = mount.split('/').skip(1).any(|part| part.is_empty() || part == "." || part == "..");
            if !mount.starts_with('/') || mount == "/" || bad_part {
                return Err(invalid(
                    &format!("filesystem.allowed_mounts[{i}]"),
                    format!("'{mount}' must be an absolute path below / without '.' or '..' parts"),
                ));
            }
        }
        for (i, host) in self.network.allowed_hosts.iter().enumerate() {
            if !is_host_pattern(host) {
                return Err(invalid(
                    &format!("network.allowed_hosts[{i}]"),
                    format!("'{host}' is not a host pattern such as api.example.com, *.example.com, 10.0.0.0/8 or *"),
                ));
            }
        }
        if self.network.egress_audit && !self.network.egress_allowed {
            return Err(invalid("network.egress_audit", "auditing egress needs egress_allowed: true"));
        }
        if let Some(i) = self.network.ingress_ports.iter().position(|&p| p == 0) {
            return Err(invalid(&format!("network.ingress_ports[{i}]"), "ports are 1-65535"));
        }
        if let Some(seccomp) = &self.seccomp {
            let inline = seccomp.trim_start().starts_with('{');
            let valid = if inline {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(seccomp).is_ok()
            } else {
                matches!(seccomp.as_str(), "runtime/default" | "unconfined")
                    || seccomp.strip_prefix("localhost/").is_some_and(is_profile_name)
            };
            if !valid {
                return Err(invalid(
                    "seccomp",
                    format!(
                        "'{}' is not runtime/default, unconfined, localhost/<name> or an inline JSON profile",
                        excerpt(seccomp)
                    ),
                ));
            }
        }
        if let Some(apparmor) = &self.apparmor {
            let name = apparmor.strip_prefix("localhost/").unwrap_or(apparmor);
            if !(matches!(apparmor.as_str(), "runtime/default" | "unconfined") || is_profile_name(name)) {
                return Err(invalid(
                    "apparmor",
                    format!("'{apparmor}' is not runtime/default, unconfined or a profile name such as mcp-restricted"),
                ));
            }
        }
        Ok(())
    }

    /// The fields a compatibility report covers, with whether the profile sets them.
    pub fn reported_fields(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("network.egress_allowed", true),
            ("network.allowed_hosts", !self.network.allowed_hosts.is_empty()),
            ("network.ingress_ports", !self.network.ingress_ports.is_empty()),
            ("network.egress_audit", self.network.egress_audit),
            ("filesystem.read_only_root", self.filesystem.read_only_root),
            ("filesystem.allowed_mounts", !self.filesystem.allowed_mounts.is_empty()),
            ("capabilities.drop_all", self.capabilities.drop_all),
            ("capabilities.add", !self.capabilities.add.is_empty()),
            ("resources.max_cpu", self.resources.max_cpu.is_some()),
            ("resources.max_memory", self.resources.max_memory.is_some()),
            ("resources.max_pids", self.resources.max_pids.is_some()),
            ("seccomp", self.seccomp.is_some()),
            ("apparmor", self.apparmor.is_some()),
        ]
    }
}

pub fn is_valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The seed's four presets, exactly as it defines them.
pub fn presets() -> BTreeMap<String, Profile> {
    const PRESETS: &str = include_str!("../defaults/guardrails.yaml");
    let mut profiles: BTreeMap<String, Profile> =
        serde_yaml_ng::from_str(PRESETS).expect("embedded guardrail presets are valid YAML");
    for (name, profile) in &mut profiles {
        profile.name = name.clone();
    }
    profiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_docker() {
        assert_eq!(parse_cpu("0.5"), Some(500));
        assert_eq!(parse_cpu("2"), Some(2000));
        assert_eq!(parse_cpu("250m"), Some(250));
        assert_eq!(parse_cpu("0"), None);
        assert_eq!(parse_cpu("lots"), None);
        assert_eq!(parse_memory("512m"), Some(512 << 20));
        assert_eq!(parse_memory("2g"), Some(2 << 30));
        assert_eq!(parse_memory("256Mi"), Some(256 << 20));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("12x"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn presets_are_the_seeds_four() {
        let p = presets();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["airgapped", "restricted", "standard", "unrestricted"]);
        let r = &p["restricted"];
        assert!(!r.network.egress_allowed);
        assert_eq!(r.network.ingress_ports, [8080]);
        assert!(r.filesystem.read_only_root && r.capabilities.drop_all);
        assert_eq!(r.resources.max_pids, Some(50));
        assert_eq!(r.resources.max_memory.as_deref(), Some("256m"));
        assert_eq!(r.apparmor.as_deref(), Some("mcp-restricted"));
        assert_eq!(p["standard"].capabilities.add, ["NET_BIND_SERVICE"]);
        assert_eq!(p["airgapped"].resources.max_memory.as_deref(), Some("128m"));
        let signatures = |name: &str| p[name].supply_chain.signatures;
        assert_eq!(
            [signatures("restricted"), signatures("standard"), signatures("unrestricted"), signatures("airgapped")],
            [SignatureMode::Require, SignatureMode::Warn, SignatureMode::Off, SignatureMode::Require]
        );
        for profile in p.values() {
            profile.validate().unwrap();
        }
    }

    /// Each field a person writes is checked on create and update, named when wrong.
    #[test]
    fn every_written_field_is_validated() {
        let base = presets()["restricted"].clone();
        let refused = |change: &dyn Fn(&mut Profile)| {
            let mut p = base.clone();
            change(&mut p);
            match p.validate() {
                Err(GuardrailError::Invalid { field, .. }) => field,
                Ok(()) => panic!("accepted: {p:?}"),
            }
        };
        assert_eq!(refused(&|p| p.capabilities.add = vec!["NOT_A_CAP".into()]), "capabilities.add[0]");
        assert_eq!(refused(&|p| p.capabilities.add = vec!["CHOWN".into(), "net_admin".into()]), "capabilities.add[1]");
        assert_eq!(refused(&|p| p.filesystem.allowed_mounts = vec!["data".into()]), "filesystem.allowed_mounts[0]");
        assert_eq!(
            refused(&|p| p.filesystem.allowed_mounts = vec!["/data/../etc".into()]),
            "filesystem.allowed_mounts[0]"
        );
        assert_eq!(refused(&|p| p.network.allowed_hosts = vec!["exa mple.com".into()]), "network.allowed_hosts[0]");
        assert_eq!(refused(&|p| p.network.allowed_hosts = vec!["api.x.com:0".into()]), "network.allowed_hosts[0]");
        assert_eq!(refused(&|p| p.network.allowed_hosts = vec!["10.0.0.0/33".into()]), "network.allowed_hosts[0]");
        assert_eq!(refused(&|p| p.network.ingress_ports = vec![8080, 0]), "network.ingress_ports[1]");
        assert_eq!(refused(&|p| p.seccomp = Some("whatever".into())), "seccomp");
        assert_eq!(refused(&|p| p.seccomp = Some("{not json".into())), "seccomp");
        assert_eq!(refused(&|p| p.apparmor = Some("bad profile!".into())), "apparmor");
        assert_eq!(refused(&|p| p.resources.max_memory = Some("lots".into())), "resources.max_memory");

        let mut fine = base.clone();
        fine.capabilities.add = vec!["NET_BIND_SERVICE".into(), "CAP_CHOWN".into()];
        fine.filesystem.allowed_mounts = vec!["/data".into(), "/var/cache/app".into()];
        fine.network.allowed_hosts =
            vec!["*".into(), "*.googleapis.com".into(), "api.openai.com:443".into(), "10.0.0.0/8".into()];
        fine.seccomp = Some(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#.into());
        fine.apparmor = Some("localhost/mcp-restricted".into());
        fine.validate().unwrap();
    }
}
