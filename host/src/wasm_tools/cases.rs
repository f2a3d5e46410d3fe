//! `mcp-runtime plugin test SERVER.wasm --cases cases.yaml` for a tool
//! component: each case calls one tool in the sandbox and limits the host
//! serves it with (nothing granted), and names what came back when it is
//! not what was expected.
//!
//! ```yaml
//! kind: mcp-server
//! limits: {memory_mb: 64, deadline_ms: 1000}
//! cases:
//!   - name: adds
//!     tool: add
//!     arguments: {a: 2, b: 40}
//!     expect: {text: "42"}             # the text a client reads
//!   - name: nothing to split is an error
//!     tool: split-words
//!     arguments: {text: ""}
//!     expect: {error: nothing to split} # part of the error's message
//! ```

use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

use super::{CallLimits, ToolComponent, ToolError};

/// The `kind` a tool component's cases file names.
pub const KIND: &str = "mcp-server";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCaseFile {
    pub kind: String,
    #[serde(default)]
    pub limits: ToolLimits,
    pub cases: Vec<ToolCase>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimits {
    pub memory_mb: u32,
    pub deadline_ms: u64,
}

impl Default for ToolLimits {
    fn default() -> Self {
        let limits = CallLimits::default();
        ToolLimits { memory_mb: (limits.memory_bytes >> 20) as u32, deadline_ms: limits.deadline.as_millis() as u64 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCase {
    pub name: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: Value,
    pub expect: Expect,
}

/// Exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub text: Option<String>,
    pub error: Option<String>,
}

pub struct ToolCaseResult {
    pub name: String,
    pub failure: Option<String>,
    pub took: Duration,
}

/// Runs every case of `file` against the component `bytes`.
pub async fn run(bytes: &[u8], file: &ToolCaseFile) -> Result<Vec<ToolCaseResult>, ToolError> {
    if file.kind != KIND {
        return Err(ToolError::Invalid { field: "kind".into(), reason: format!("'{}': expected {KIND}", file.kind) });
    }
    let limits = CallLimits {
        memory_bytes: (file.limits.memory_mb as usize) << 20,
        deadline: Duration::from_millis(file.limits.deadline_ms),
    };
    let component = ToolComponent::load(bytes, limits)?;
    let mut results = Vec::new();
    for case in &file.cases {
        let started = Instant::now();
        let called = component.call(&case.tool, &case.arguments).await;
        let failure = judge(&case.expect, &called);
        results.push(ToolCaseResult { name: case.name.clone(), failure, took: started.elapsed() });
    }
    Ok(results)
}

fn judge(expect: &Expect, called: &Result<Value, ToolError>) -> Option<String> {
    match (expect, called) {
        (Expect { text: Some(_), error: Some(_) } | Expect { text: None, error: None }, _) => {
            Some("expect: give exactly one of text and error".into())
        }
        (Expect { text: Some(wanted), .. }, Ok(value)) => {
            let text = super::mcp::text_of(value);
            (&text != wanted).then(|| format!("expected text {wanted:?}, got {text:?}"))
        }
        (Expect { text: Some(wanted), .. }, Err(e)) => Some(format!("expected text {wanted:?}, got the error: {e}")),
        (Expect { error: Some(wanted), .. }, Err(e)) => {
            (!e.to_string().contains(wanted.as_str())).then(|| format!("expected an error with {wanted:?}, got: {e}"))
        }
        (Expect { error: Some(wanted), .. }, Ok(value)) => {
            Some(format!("expected an error with {wanted:?}, got {:?}", super::mcp::text_of(value)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_case_passes_or_says_what_came_back() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/guest/tool_component.wasm");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (make guests builds it)", path.display()));
        let file: ToolCaseFile = serde_yaml_ng::from_str(
            r#"
kind: mcp-server
limits: {memory_mb: 16, deadline_ms: 300}
cases:
  - {name: adds, tool: add, arguments: {a: 2, b: 40}, expect: {text: "42"}}
  - {name: splits, tool: split-words, arguments: {text: "a b"}, expect: {text: '["a","b"]'}}
  - {name: refuses, tool: split-words, arguments: {text: ""}, expect: {error: nothing to split}}
  - {name: loops, tool: spin, arguments: {rounds: 18446744073709551615}, expect: {error: deadline of 300 ms}}
  - {name: wrong, tool: add, arguments: {a: 1, b: 1}, expect: {text: "3"}}
  - {name: unknown, tool: nope, expect: {text: "x"}}
"#,
        )
        .unwrap();
        let results = run(&bytes, &file).await.unwrap();
        let failures: Vec<Option<&str>> = results.iter().map(|r| r.failure.as_deref()).collect();
        assert_eq!(failures[..4], [None, None, None, None], "{failures:?}");
        assert_eq!(failures[4], Some("expected text \"3\", got \"2\""));
        assert!(failures[5].is_some_and(|f| f.contains("no tool 'nope'")), "{failures:?}");
        let other = ToolCaseFile { kind: "guardrail-policy".into(), limits: ToolLimits::default(), cases: vec![] };
        assert!(matches!(run(&bytes, &other).await, Err(ToolError::Invalid { field, .. }) if field == "kind"));
    }
}
