//! Example approval rule: more than one CPU needs a person's approval.
//! `settings: {max_cpu_millis: 1000, approvers: ["group:platform"]}`.

wit_bindgen::generate!({ world: "approval-rule", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::approval::{ApprovalDecision, ApprovalInput, Guest};

#[derive(serde::Deserialize)]
struct Settings {
    #[serde(default = "one_cpu")]
    max_cpu_millis: u64,
    #[serde(default)]
    approvers: Vec<String>,
}

fn one_cpu() -> u64 {
    1000
}

struct LargeCpu;

impl Guest for LargeCpu {
    fn evaluate(input: ApprovalInput) -> Result<ApprovalDecision, String> {
        // Unreadable settings are an error, which the host treats as "hold".
        let Settings { max_cpu_millis: limit, approvers } = guest_kit::settings()?;
        let cpu = u64::from(input.effective.cpu_millis.unwrap_or(0));
        let reasons = if cpu > limit { vec![format!("cpu {cpu}m above {limit}m")] } else { Vec::new() };
        Ok(ApprovalDecision { required: !reasons.is_empty(), reasons, approvers })
    }
}

export!(LargeCpu);
