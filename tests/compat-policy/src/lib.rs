//! Built against `mcp-runtime:plugin@1.0.0`: allows everything and says so in
//! a warning, so a test sees that this older build really ran.

wit_bindgen::generate!({ world: "guardrail-policy", path: "wit" });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use mcp_runtime::plugin::types::{Denial, Warning};

struct Compat;

impl Guest for Compat {
    fn evaluate(input: PolicyInput) -> Result<PolicyOutput, Denial> {
        let mut warnings = input.warnings;
        warnings.push(Warning { field: "compat".into(), message: "judged by a rule built against 1.0.0".into() });
        Ok(PolicyOutput { effective: input.effective, warnings })
    }
}

export!(Compat);
