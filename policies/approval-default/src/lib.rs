//! The default approval rule: the seed's `approval:` config.
//!
//! ```yaml
//! approval:
//!   enabled: true
//!   required_for:
//!     - source_type: github
//!     - registry_not_in: [docker.io/library, docker.io/mcp]
//!     - guardrails_profile: unrestricted
//!     - cpu_millis_above: 1000        # resource thresholds, in host units
//!     - memory_mb_above: 1024
//!   approvers:
//!     - group: security-team
//!     - user: admin@example.com
//!   # The supply-chain evidence (these are the defaults):
//!   findings_at_least: high          # critical | high | medium | low | unknown | none
//!   security_approvers:
//!     - group: security-team
//! ```
//! Known vulnerabilities at or above `findings_at_least`, or a signature
//! missing under mode `warn` for an image a configured key covers, hold the
//! deployment for `security_approvers` alone: whoever else may approve it
//! otherwise, these need the security team.
//! A catalog entry with `requires_approval: true` always needs approval, and
//! so does a package entry that lets its install scripts run
//! (`allow_install_scripts`: its whole dependency tree's code runs at build).
//! A package entry's source type is `package` (it arrives as an image named
//! by its purl, which no registry rule applies to: the host builds it).

wit_bindgen::generate!({ world: "approval-rule", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::approval::{ApprovalDecision, ApprovalInput, Guest};
use guest_kit::types::Source;
use mcp_runtime::plugin::guardrail_options;
use mcp_runtime::plugin::supply_chain::{self, Evidence, Severity, SignatureMode, SignatureOutcome};
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    required_for: Vec<Rule>,
    #[serde(default)]
    approvers: Vec<Approver>,
    #[serde(default = "high")]
    findings_at_least: Threshold,
    #[serde(default = "security_team")]
    security_approvers: Vec<Approver>,
}

fn high() -> Threshold {
    Threshold::High
}

fn security_team() -> Vec<Approver> {
    vec![Approver::Group("security-team".into())]
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, PartialOrd)]
#[serde(rename_all = "snake_case")]
enum Threshold {
    None,
    Unknown,
    Low,
    Medium,
    #[default]
    High,
    Critical,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Rule {
    SourceType(String),
    RegistryNotIn(Vec<String>),
    GuardrailsProfile(String),
    CpuMillisAbove(u32),
    MemoryMbAbove(u64),
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "snake_case")]
enum Approver {
    Group(String),
    User(String),
}

struct DefaultApproval;

impl Guest for DefaultApproval {
    fn evaluate(input: ApprovalInput) -> Result<ApprovalDecision, String> {
        let settings: Settings = guest_kit::settings()?;
        let approvers = named(&settings.approvers);
        if !settings.enabled {
            return Ok(ApprovalDecision { required: false, reasons: Vec::new(), approvers });
        }
        let entry = &input.request.entry;
        let mut reasons = Vec::new();
        if entry.requires_approval {
            reasons.push(format!("catalog entry '{}' requires approval", entry.slug));
        }
        if guardrail_options::allow_install_scripts() {
            reasons.push("allow_install_scripts: the build runs the package tree's own install scripts".into());
        }
        for rule in &settings.required_for {
            if let Some(reason) = fires(rule, &input) {
                reasons.push(reason);
            }
        }
        let security = supply_chain_reasons(&supply_chain::what_runs(), settings.findings_at_least);
        if !security.is_empty() {
            reasons.extend(security);
            return Ok(ApprovalDecision { required: true, reasons, approvers: named(&settings.security_approvers) });
        }
        Ok(ApprovalDecision { required: !reasons.is_empty(), reasons, approvers })
    }
}

fn named(approvers: &[Approver]) -> Vec<String> {
    approvers
        .iter()
        .map(|a| match a {
            Approver::Group(g) => format!("group:{g}"),
            Approver::User(u) => format!("user:{u}"),
        })
        .collect()
}

/// What in the evidence needs the security team: findings at or above the
/// threshold, and a signature missing where a key covers the image under `warn`
/// (under `require` the host refuses it before any rule is asked).
fn supply_chain_reasons(evidence: &Evidence, at_least: Threshold) -> Vec<String> {
    let mut reasons = Vec::new();
    let serious: Vec<String> = evidence
        .findings
        .iter()
        .filter(|f| at_least != Threshold::None && threshold(f.severity) >= at_least)
        .map(|f| format!("{} {} in {} {}", severity_name(f.severity), f.advisory, f.name, f.version))
        .collect();
    if !serious.is_empty() {
        reasons.push(format!("known vulnerabilities: {}", serious.join("; ")));
    }
    if evidence.signature_mode == SignatureMode::Warn && matches!(evidence.signature, SignatureOutcome::Missing) {
        reasons.push("signature missing: a configured key covers the image and no signature was found".into());
    }
    reasons
}

fn threshold(s: Severity) -> Threshold {
    match s {
        Severity::Critical => Threshold::Critical,
        Severity::High => Threshold::High,
        Severity::Medium => Threshold::Medium,
        Severity::Low => Threshold::Low,
        Severity::Unknown => Threshold::Unknown,
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Unknown => "unknown",
    }
}

/// The reason a rule fires for this request, if it does.
fn fires(rule: &Rule, input: &ApprovalInput) -> Option<String> {
    let source = &input.request.entry.source;
    match rule {
        Rule::SourceType(kind) => {
            let actual = match source {
                Source::Image(i) if is_package(&i.image) => "package",
                Source::Image(_) => "docker",
                Source::Github(_) => "github",
                Source::Compose(_) => "compose",
            };
            (actual == kind).then(|| format!("source_type={kind}"))
        }
        Rule::RegistryNotIn(places) => {
            // Every image a deployment runs: a stack's services each count.
            let images: Vec<&str> = match source {
                Source::Image(i) if is_package(&i.image) => Vec::new(),
                Source::Image(i) => vec![i.image.as_str()],
                Source::Compose(stack) => stack.services.iter().map(|s| s.image.as_str()).collect(),
                Source::Github(_) => Vec::new(),
            };
            let outside: Vec<&str> = images.into_iter().filter(|i| !image_ref::is_allowed(i, places)).collect();
            (!outside.is_empty()).then(|| format!("registry_not_in: {outside:?} outside {places:?}"))
        }
        Rule::GuardrailsProfile(name) => {
            (&input.effective.profile == name).then(|| format!("guardrails_profile={name}"))
        }
        Rule::CpuMillisAbove(limit) => {
            input.effective.cpu_millis.filter(|c| c > limit).map(|c| format!("cpu {c}m above {limit}m"))
        }
        Rule::MemoryMbAbove(limit) => input
            .effective
            .memory_bytes
            .map(|b| b >> 20)
            .filter(|m| m > limit)
            .map(|m| format!("memory {m} MB above {limit} MB")),
    }
}

/// A package entry's image: its purl.
fn is_package(image: &str) -> bool {
    image.starts_with("pkg:")
}

export!(DefaultApproval);
