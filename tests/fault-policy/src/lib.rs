//! A deliberately faulty guardrail policy for the host's containment tests.
//! Its settings pick the fault: `{"mode": "trap" | "loop" | "memory" | "pass"}`.

wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit" });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use mcp_runtime::plugin::types::Denial;

struct FaultPolicy;

impl Guest for FaultPolicy {
    fn evaluate(input: PolicyInput) -> Result<PolicyOutput, Denial> {
        let settings = mcp_runtime::plugin::config::settings();
        let mode = serde_json::from_str::<serde_json::Value>(&settings)
            .ok()
            .and_then(|v| Some(v.get("mode")?.as_str()?.to_owned()))
            .unwrap_or_default();
        match mode.as_str() {
            "trap" => unreachable_trap(),
            "loop" => spin_forever(),
            "memory" => hog_memory(),
            _ => Ok(PolicyOutput { effective: input.effective, warnings: input.warnings }),
        }
    }
}

fn unreachable_trap() -> ! {
    core::arch::wasm32::unreachable()
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

export!(FaultPolicy);
