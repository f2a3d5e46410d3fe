//! What a tool component asks for, in the MCP policy file format wassette
//! reads (`version`, `permissions: {storage, network, environment}`), and
//! what it gets: the stricter of its request and the deployment's guardrail
//! profile, each difference a warning as for containers. Storage is granted
//! only under the profile's `allowed_mounts` (writable only when asked),
//! hosts only through the profile's egress allowlist with the egress
//! proxy's own matching rules, variables only those the deploy declares.

use serde::Deserialize;

use crate::egress::Allowlist;
use crate::guardrails::EffectiveGuardrails;

#[derive(Debug, Default, Deserialize)]
pub struct PermissionFile {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Permissions,
}

#[derive(Debug, Default, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub storage: Allow<StorageRule>,
    #[serde(default)]
    pub network: Allow<NetworkRule>,
    #[serde(default)]
    pub environment: Allow<EnvironmentRule>,
}

#[derive(Debug, Deserialize)]
pub struct Allow<T> {
    #[serde(default = "Vec::new")]
    pub allow: Vec<T>,
}

impl<T> Default for Allow<T> {
    fn default() -> Self {
        Allow { allow: Vec::new() }
    }
}

#[derive(Debug, Deserialize)]
pub struct StorageRule {
    /// `fs://path/**`.
    pub uri: String,
    #[serde(default)]
    pub access: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NetworkRule {
    Host { host: String },
    Cidr { cidr: String },
}

#[derive(Debug, Deserialize)]
pub struct EnvironmentRule {
    pub key: String,
}

/// A directory the component sees, at the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: String,
    pub writable: bool,
}

/// What the component gets, and what it asked for and did not get.
#[derive(Debug, Default, PartialEq)]
pub struct Granted {
    pub mounts: Vec<Mount>,
    /// Allowlist entries for its outgoing `wasi:http` (the egress proxy's format).
    pub hosts: Vec<String>,
    pub environment: Vec<String>,
    /// `(field, why)`, as guardrail warnings name them.
    pub warnings: Vec<(String, String)>,
}

impl PermissionFile {
    pub fn parse(text: &str) -> Result<PermissionFile, String> {
        serde_yaml_ng::from_str(text).map_err(|e| format!("the permission file: {e}"))
    }
}

/// The stricter of `request` and the deployment's guardrails, for a deploy
/// that declares `declared_env`.
pub fn grant(request: &PermissionFile, profile: &EffectiveGuardrails, declared_env: &[String]) -> Granted {
    let mut granted = Granted::default();
    let asked = &request.permissions;
    for rule in &asked.storage.allow {
        let path = rule.uri.trim_start_matches("fs://").trim_end_matches("/**").trim_end_matches("/*");
        let path = format!("/{}", path.trim_start_matches('/'));
        let mounted = profile.filesystem.allowed_mounts.iter().any(|m| {
            let m = m.trim_end_matches('/');
            path == m || path.starts_with(&format!("{m}/"))
        });
        if mounted {
            granted.mounts.push(Mount { path, writable: rule.access.iter().any(|a| a == "write") });
        } else {
            let why = format!(
                "{} is not under the profile's allowed_mounts {:?}",
                rule.uri, profile.filesystem.allowed_mounts
            );
            granted.warnings.push(("filesystem.allowed_mounts".into(), why));
        }
    }
    let allowlist = Allowlist::parse(&profile.network.allowed_hosts).unwrap_or_default();
    for rule in &asked.network.allow {
        let (asked_for, admitted) = match rule {
            NetworkRule::Host { host } => (host.clone(), allowlist.allows(host, 443).is_ok()),
            NetworkRule::Cidr { cidr } => (cidr.clone(), profile.network.allowed_hosts.contains(cidr)),
        };
        match (profile.network.egress_allowed, admitted) {
            (true, true) => granted.hosts.push(asked_for),
            (false, _) => {
                let why = format!("{asked_for}: profile '{}' allows no egress", profile.profile);
                granted.warnings.push(("network.egress_allowed".into(), why));
            }
            (true, false) => {
                let why = format!("{asked_for} is not in the profile's allowed_hosts");
                granted.warnings.push(("network.allowed_hosts".into(), why));
            }
        }
    }
    for rule in &asked.environment.allow {
        if declared_env.contains(&rule.key) {
            granted.environment.push(rule.key.clone());
        } else {
            let why = format!("{} is not declared by the deploy", rule.key);
            granted.warnings.push(("env".into(), why));
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = r#"
version: "1.0"
description: "a fetcher that keeps a cache"
permissions:
  storage:
    allow:
      - uri: "fs://data/cache/**"
        access: ["read", "write"]
      - uri: "fs://etc/**"
        access: ["read"]
  network:
    allow:
      - host: "api.openai.com"
      - host: "evil.example"
      - cidr: "10.0.0.0/8"
  environment:
    allow:
      - key: "API_KEY"
      - key: "HOME"
"#;

    fn effective(preset: &str) -> EffectiveGuardrails {
        let profile = &crate::guardrails::presets()[preset];
        crate::contract::effective_guardrails(&crate::contract::initial_guardrails(profile), Default::default())
    }

    #[test]
    fn the_stricter_of_the_request_and_the_profile_wins_and_each_difference_is_said() {
        let request = PermissionFile::parse(REQUEST).unwrap();
        let standard = &effective("standard");
        let granted = grant(&request, standard, &["API_KEY".into()]);
        assert_eq!(granted.mounts, [Mount { path: "/data/cache".into(), writable: true }]);
        assert_eq!(granted.hosts, ["api.openai.com"]);
        assert_eq!(granted.environment, ["API_KEY"]);
        let fields: Vec<&str> = granted.warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["filesystem.allowed_mounts", "network.allowed_hosts", "network.allowed_hosts", "env"],
            "{:?}",
            granted.warnings
        );
        // Restricted: no egress at all, no mounts.
        let restricted = &effective("restricted");
        let granted = grant(&request, restricted, &[]);
        assert!(granted.mounts.is_empty() && granted.hosts.is_empty() && granted.environment.is_empty());
        assert!(granted.warnings.iter().any(|(f, w)| f == "network.egress_allowed" && w.contains("restricted")));
    }

    #[test]
    fn no_file_asks_for_nothing_and_a_broken_one_is_named() {
        let nothing = grant(&PermissionFile::default(), &effective("unrestricted"), &["X".into()]);
        assert_eq!(nothing, Granted::default());
        assert!(PermissionFile::parse("permissions: [").unwrap_err().starts_with("the permission file:"));
    }
}
