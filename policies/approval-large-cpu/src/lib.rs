//! Example approval rule: more than one CPU needs a person's approval.
//! `settings: {max_cpu_millis: 1000, approvers: ["group:platform"]}`.

wit_bindgen::generate!({ world: "approval-rule", path: "../../wit" });

use exports::mcp_runtime::plugin::approval::{ApprovalDecision, ApprovalInput, Guest};

struct LargeCpu;

impl Guest for LargeCpu {
    fn evaluate(input: ApprovalInput) -> Result<ApprovalDecision, String> {
        let settings: serde_json::Value =
            serde_json::from_str(&mcp_runtime::plugin::config::settings()).unwrap_or_default();
        let limit = settings["max_cpu_millis"].as_u64().unwrap_or(1000);
        let approvers = settings["approvers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let cpu = u64::from(input.effective.cpu_millis.unwrap_or(0));
        let reasons = if cpu > limit { vec![format!("cpu {cpu}m above {limit}m")] } else { Vec::new() };
        Ok(ApprovalDecision { required: !reasons.is_empty(), reasons, approvers })
    }
}

export!(LargeCpu);
