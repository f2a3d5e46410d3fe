//! Example policy: nothing with a known critical vulnerability runs.
//! Denies a deployment whose supply-chain evidence names a critical finding
//! (the host asks again once a build shows what it installs); with
//! `{"deny_at_least": "high"}` in its settings, high findings too. What was
//! not judged (no OSV database) passes: this rule judges findings, not their absence.

wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use guest_kit::denial;
use guest_kit::types::Denial;
use mcp_runtime::plugin::supply_chain::{self, Severity};

struct NoCriticalVulns;

impl Guest for NoCriticalVulns {
    fn evaluate(input: PolicyInput) -> Result<PolicyOutput, Denial> {
        let deny_high = deny_at_least()? == "high";
        let refused: Vec<String> = supply_chain::what_runs()
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Critical || (deny_high && f.severity == Severity::High))
            .map(|f| format!("{} in {} {}{}", f.advisory, f.name, f.version, fixed_in(&f.fixed)))
            .collect();
        if !refused.is_empty() {
            let reason = format!("known {} vulnerabilities: {}", threshold(deny_high), refused.join("; "));
            return Err(denial("supply_chain.vulnerabilities", reason));
        }
        Ok(PolicyOutput { effective: input.effective, warnings: input.warnings })
    }
}

fn fixed_in(fixed: &Option<String>) -> String {
    fixed.as_ref().map(|v| format!(" (fixed in {v})")).unwrap_or_default()
}

fn threshold(deny_high: bool) -> &'static str {
    if deny_high {
        "critical or high"
    } else {
        "critical"
    }
}

#[derive(serde::Deserialize)]
struct Settings {
    #[serde(default = "critical")]
    deny_at_least: String,
}

fn critical() -> String {
    "critical".into()
}

fn deny_at_least() -> Result<String, Denial> {
    let settings: Settings = guest_kit::settings().map_err(|e| denial("settings", e))?;
    match settings.deny_at_least.as_str() {
        "critical" | "high" => Ok(settings.deny_at_least),
        other => Err(denial("settings.deny_at_least", format!("'{other}': expected critical or high"))),
    }
}

export!(NoCriticalVulns);
