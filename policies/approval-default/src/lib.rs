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
//! ```
//! A catalog entry with `requires_approval: true` always needs approval, and
//! so does a package entry that lets its install scripts run
//! (`allow_install_scripts`: its whole dependency tree's code runs at build).
//! A package entry's source type is `package` (it arrives as an image named
//! by its purl, which no registry rule applies to: the host builds it).

wit_bindgen::generate!({ world: "approval-rule", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.5.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.5.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::approval::{ApprovalDecision, ApprovalInput, Guest};
use guest_kit::types::Source;
use mcp_runtime::plugin::guardrail_options;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    required_for: Vec<Rule>,
    #[serde(default)]
    approvers: Vec<Approver>,
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

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Approver {
    Group(String),
    User(String),
}

struct DefaultApproval;

impl Guest for DefaultApproval {
    fn evaluate(input: ApprovalInput) -> Result<ApprovalDecision, String> {
        let settings: Settings = guest_kit::settings()?;
        let approvers = settings
            .approvers
            .iter()
            .map(|a| match a {
                Approver::Group(g) => format!("group:{g}"),
                Approver::User(u) => format!("user:{u}"),
            })
            .collect();
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
        Ok(ApprovalDecision { required: !reasons.is_empty(), reasons, approvers })
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
