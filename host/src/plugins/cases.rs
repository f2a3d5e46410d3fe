//! `mcp-runtime plugin test RULE.wasm --cases cases.yaml`: a rule run on
//! each case in the host's own sandbox and limits, so rules get CI.
//!
//! ```yaml
//! kind: guardrail-policy          # or approval-rule
//! grants: [logging]
//! limits: {memory_mb: 16, cpu_ms: 100, timeout_ms: 1000}
//! settings: {require_digest: false}
//! runs: 20                        # calls per case, for the timing
//! cases:
//!   - name: latest is refused
//!     entry: {name: app, slug: app, source: {type: docker, image: "ghcr.io/acme/app:latest"}}
//!     profile: standard           # a preset (the default)
//!     capabilities: full          # what the backend enforces: full (the default) or none
//!     expect: {denied: source.image}
//!   - name: a pinned tag passes, warning about nothing
//!     entry: {name: app, slug: app, source: {type: docker, image: "ghcr.io/acme/app:1.2"}}
//!     expect: {allowed: true, warnings: []}
//! ```
//! An approval rule's cases expect `{required: true, reasons: [...], approvers: [...]}`. A case
//! may give the supply-chain evidence the rule judges (`supply-chain.what-runs`):
//!
//! ```yaml
//!     evidence:
//!       digest: "sha256:…"
//!       signature: {mode: warn, outcome: missing}   # valid (key), invalid (why), not_configured
//!       findings:                                   # absent: nothing was judged
//!         - {advisory: GHSA-xvch-5gv4-984h, package: minimist, version: 0.0.8, severity: critical}
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Grant, PluginHost, PluginKind, PluginLimits, PluginManifest};
use crate::capabilities::CallAbout;
use crate::catalog::CatalogEntry;
use crate::contract::{types as wit, GuardrailOptions};
use crate::deployment::{DeploymentRequest, Resources};
use crate::supply_chain::osv::{DatabaseState, Finding, VulnerabilityReport};
use crate::supply_chain::{Evidence, SignatureCheck};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub kind: PluginKind,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub limits: PluginLimits,
    #[serde(default)]
    pub settings: serde_json::Value,
    #[serde(default = "default_runs")]
    pub runs: u32,
    pub cases: Vec<Case>,
}

fn default_runs() -> u32 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub entry: CatalogEntry,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub evidence: CaseEvidence,
    pub expect: Expect,
}

/// The supply-chain evidence a case gives the rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEvidence {
    pub digest: Option<String>,
    pub signature: Option<SignatureCheck>,
    /// What the OSV database found; absent: nothing was judged.
    pub findings: Option<Vec<Finding>>,
}

impl CaseEvidence {
    fn evidence(&self) -> Evidence {
        let database = DatabaseState { records: 0, skipped: 0, digest: "sha256:cases".into() };
        Evidence {
            digest: self.digest.clone(),
            signature: self.signature.clone().unwrap_or_default(),
            vulnerabilities: self.findings.clone().map(|found| VulnerabilityReport::of(database, found)),
        }
    }
}

fn default_profile() -> String {
    "standard".into()
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capabilities {
    #[default]
    Full,
    None,
}

/// What a case expects; only what it names is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub allowed: Option<bool>,
    /// The field a denial names.
    pub denied: Option<String>,
    /// The fields of the warnings, in order.
    pub warnings: Option<Vec<String>>,
    pub required: Option<bool>,
    pub reasons: Option<Vec<String>>,
    /// Who may decide, as the rule names them (`group:…`, `user:…`).
    pub approvers: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    pub p50: Duration,
    pub p99: Duration,
}

fn capabilities(c: Capabilities) -> wit::BackendCapabilities {
    let all = matches!(c, Capabilities::Full);
    wit::BackendCapabilities {
        supports_compose: all,
        supports_readonly_fs: all,
        supports_custom_capabilities: all,
        supports_capability_add: all,
        supports_build_cache: all,
        supports_egress_host_filtering: all,
        supports_pid_limits: all,
        supports_stdio: all,
        network_isolation_level: wit::IsolationLevel::Container,
        observability_type: wit::ObservabilityType::Native,
        max_cpu_millis: 0,
        max_memory_bytes: 0,
        max_timeout_seconds: 0,
    }
}

/// What one call of the rule came to, as the cases describe it.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    denied: Option<String>,
    warnings: Vec<String>,
    required: bool,
    reasons: Vec<String>,
    approvers: Vec<String>,
}

impl Outcome {
    fn mismatch(&self, expect: &Expect) -> Option<String> {
        let differs = |what: &str, want: String, got: String| Some(format!("expected {what} {want}, got {got}"));
        if let Some(allowed) = expect.allowed {
            if allowed != self.denied.is_none() {
                return differs("allowed", allowed.to_string(), format!("a denial of {:?}", self.denied));
            }
        }
        if let Some(field) = &expect.denied {
            if self.denied.as_ref() != Some(field) {
                return differs("a denial of", field.clone(), format!("{:?}", self.denied));
            }
        }
        if let Some(fields) = &expect.warnings {
            if *fields != self.warnings {
                return differs("warnings", format!("{fields:?}"), format!("{:?}", self.warnings));
            }
        }
        if let Some(required) = expect.required {
            if required != self.required {
                return differs("required", required.to_string(), self.required.to_string());
            }
        }
        if let Some(reasons) = &expect.reasons {
            if *reasons != self.reasons {
                return differs("reasons", format!("{reasons:?}"), format!("{:?}", self.reasons));
            }
        }
        if let Some(approvers) = &expect.approvers {
            if *approvers != self.approvers {
                return differs("approvers", format!("{approvers:?}"), format!("{:?}", self.approvers));
            }
        }
        None
    }
}

/// Loads the rule as the host would (its world, its grants, its limits) and runs every case.
/// Compiled components are kept in `cache_dir`, as the host keeps them.
pub async fn run(wasm: &Path, file: &CaseFile, cache_dir: PathBuf) -> anyhow::Result<Vec<CaseResult>> {
    let scratch = tempfile::tempdir()?;
    let store = std::sync::Arc::new(crate::store::Store::open(&scratch.path().join("cases.redb"))?);
    let host = PluginHost::new(cache_dir, store, None, None)?;
    let manifest = PluginManifest {
        id: "rule-under-test".into(),
        kind: file.kind,
        path: std::fs::canonicalize(wasm)?,
        sha256: None,
        grants: file.grants.clone(),
        allowed_hosts: Vec::new(),
        limits: file.limits,
        settings: if file.settings.is_null() { serde_json::json!({}) } else { file.settings.clone() },
    };
    manifest.validate().map_err(|e| anyhow::anyhow!("the cases file: {e}"))?;
    let rule = host.load(&manifest, scratch.path())?;
    let presets = crate::guardrails::presets();
    let mut results = Vec::new();
    for case in &file.cases {
        let Some(profile) = presets.get(&case.profile) else {
            anyhow::bail!("case '{}': no preset profile '{}'", case.name, case.profile);
        };
        if matches!(case.entry.source, crate::catalog::ServerSource::Remote { .. }) {
            anyhow::bail!("case '{}': a remote entry is never deployed, so no rule sees it", case.name);
        }
        let request = DeploymentRequest {
            entry: case.entry.clone(),
            env: case.env.clone(),
            resources: Resources::default(),
            commit: None,
            catalog_revision: None,
            pinned_image: None,
            pinned_stack: Vec::new(),
            evidence: Default::default(),
        };
        let request = crate::contract::deploy_request("case", "backend", &request, Some("rule-author"));
        let effective = crate::contract::initial_guardrails(profile);
        let about = CallAbout::judging(
            GuardrailOptions::asked_by(profile, &case.entry),
            &std::sync::Arc::new(case.evidence.evidence()),
        );
        if file.kind == PluginKind::RuntimeBackend {
            anyhow::bail!("plugin test runs guardrail policies and approval rules");
        }
        let (mut timings, mut first) = (Vec::new(), None);
        for _ in 0..file.runs.max(1) {
            let started = Instant::now();
            let outcome = match file.kind {
                PluginKind::ApprovalRule => {
                    let input = crate::contract::approval::ApprovalInput {
                        request: request.clone(),
                        effective: effective.clone(),
                    };
                    match rule.approve(&input, about.clone()).await {
                        Ok(Ok(decision)) => {
                            let (required, reasons, approvers) =
                                (decision.required, decision.reasons, decision.approvers);
                            Ok(Outcome { required, reasons, approvers, ..Default::default() })
                        }
                        Ok(Err(e)) => Err(format!("the rule answered an error: {e}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
                _ => {
                    let input = crate::contract::policy::PolicyInput {
                        request: request.clone(),
                        profile: profile.into(),
                        capabilities: capabilities(case.capabilities),
                        effective: effective.clone(),
                        warnings: Vec::new(),
                    };
                    match rule.evaluate(&input, about.clone()).await {
                        Ok(Ok(out)) => Ok(Outcome {
                            warnings: out.warnings.into_iter().map(|w| w.field).collect(),
                            ..Default::default()
                        }),
                        Ok(Err(denial)) => Ok(Outcome { denied: Some(denial.field), ..Default::default() }),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            timings.push(started.elapsed());
            // A call the sandbox stopped (memory, CPU, a trap) fails the case; no more runs of it.
            let stopped = outcome.is_err();
            first.get_or_insert(outcome);
            if stopped {
                break;
            }
        }
        timings.sort();
        let at = |q: f64| timings[((timings.len() - 1) as f64 * q).round() as usize];
        let failure = match first {
            Some(Ok(outcome)) => outcome.mismatch(&case.expect),
            Some(Err(stopped)) => Some(stopped),
            None => None,
        };
        results.push(CaseResult { name: case.name.clone(), failure, p50: at(0.5), p99: at(0.99) });
    }
    Ok(results)
}
