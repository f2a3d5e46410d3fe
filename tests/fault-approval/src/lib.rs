//! A deliberately faulty approval rule: `{"mode": "trap" | "loop"}`. The host
//! must fail closed: no deployment without a working rule's decision.

wit_bindgen::generate!({ world: "approval-rule", path: "../../wit" });

use exports::mcp_runtime::plugin::approval::{ApprovalDecision, ApprovalInput, Guest};

struct FaultApproval;

impl Guest for FaultApproval {
    fn evaluate(_input: ApprovalInput) -> Result<ApprovalDecision, String> {
        let settings = mcp_runtime::plugin::config::settings();
        if settings.contains("\"loop\"") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        core::arch::wasm32::unreachable()
    }
}

export!(FaultApproval);
