//! Against a real tool component built in this workspace (`tests/tool-component`, `make guests`).

use super::*;
use serde_json::json;

pub(super) fn component() -> ToolComponent {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/guest/tool_component.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (make guests builds it)", path.display()));
    let limits = CallLimits { memory_bytes: 16 << 20, deadline: std::time::Duration::from_millis(300) };
    ToolComponent::load(&bytes, limits).unwrap()
}

#[tokio::test]
async fn every_export_is_a_tool_with_a_schema_from_its_wit_types() {
    let c = component();
    let names: Vec<&str> = c.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["add", "greet", "distance", "convert", "split-words", "spin", "hog", "read-file", "env-var", "echo", "fetch"]
    );
    let distance = &c.tools()[2].input_schema;
    assert_eq!(distance["required"], json!(["a", "b"]));
    assert_eq!(distance["properties"]["a"]["properties"]["x"], json!({"type": "integer"}));
    let greet = &c.tools()[1].input_schema;
    assert_eq!(greet["required"], json!(["name"]), "an option may be left out: {greet}");
    assert_eq!(
        c.tools()[3].input_schema["properties"]["to"],
        json!({"type": "string", "enum": ["celsius", "fahrenheit"]})
    );
}

#[tokio::test]
async fn arguments_go_in_as_json_and_results_come_back() {
    let c = component();
    assert_eq!(c.call("add", &json!({"a": 2, "b": 40})).await, Ok(json!(42)));
    assert_eq!(c.call("greet", &json!({"name": "Ada"})).await, Ok(json!("Hello, Ada.")));
    assert_eq!(c.call("greet", &json!({"name": "Ada", "excited": true})).await, Ok(json!("Hello, Ada!")));
    let d = c.call("distance", &json!({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}})).await;
    assert_eq!(d, Ok(json!(5.0)));
    assert_eq!(c.call("convert", &json!({"degrees": 100.0, "to": "fahrenheit"})).await, Ok(json!(212.0)));
    assert_eq!(c.call("split-words", &json!({"text": "a b  c"})).await, Ok(json!(["a", "b", "c"])));
    assert_eq!(c.call("split-words", &json!({"text": " "})).await, Err(ToolError::Failed("nothing to split".into())));
}

/// Whether a call was refused for the argument at `field`.
fn invalid(field: &'static str) -> impl Fn(Result<Value, ToolError>) -> bool {
    move |r| matches!(r, Err(ToolError::Invalid { field: f, .. }) if f == field)
}

#[tokio::test]
async fn bad_arguments_are_named_and_nothing_runs() {
    let c = component();
    assert!(invalid("b")(c.call("add", &json!({"a": 1})).await));
    assert!(invalid("a")(c.call("add", &json!({"a": "one", "b": 2})).await));
    assert!(invalid("a")(c.call("add", &json!({"a": 4_294_967_296u64, "b": 2})).await), "out of s32's range");
    assert!(invalid("b.y")(c.call("distance", &json!({"a": {"x": 0, "y": 0}, "b": {"x": 1}})).await));
    assert!(invalid("to")(c.call("convert", &json!({"degrees": 1.0, "to": "kelvin"})).await));
    assert!(invalid("c")(c.call("add", &json!({"a": 1, "b": 2, "c": 3})).await));
    assert_eq!(c.call("nope", &json!({})).await, Err(ToolError::UnknownTool("nope".into())));
}

#[tokio::test]
async fn a_runaway_or_greedy_call_is_stopped_and_the_next_one_is_served() {
    let c = component();
    let spun = c.call("spin", &json!({"rounds": u64::MAX})).await;
    assert_eq!(spun, Err(ToolError::Stopped("it ran past its deadline of 300 ms".into())));
    assert!(matches!(c.call("hog", &json!({"megabytes": 64})).await, Err(ToolError::Stopped(_))));
    assert_eq!(c.call("hog", &json!({"megabytes": 1})).await, Ok(json!(1)));
    assert_eq!(c.call("add", &json!({"a": 1, "b": 1})).await, Ok(json!(2)));
}

#[tokio::test]
async fn a_call_reaches_only_what_its_sandbox_grants() {
    let c = component();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("note.txt");
    std::fs::write(&file, "granted").unwrap();
    let path = file.display().to_string();
    // Nothing granted: no file, no variable.
    let denied = c.call("read-file", &json!({"path": path})).await;
    assert!(matches!(&denied, Err(ToolError::Failed(why)) if why.starts_with(&path)), "{denied:?}");
    assert_eq!(c.call("env-var", &json!({"name": "HOME"})).await, Ok(Value::Null));
    let sandbox = Sandbox {
        mounts: vec![permissions::Mount { path: dir.path().display().to_string(), writable: false }],
        environment: vec![("API_KEY".into(), "k-1".into())],
        egress: None,
    };
    assert_eq!(c.call_in(&sandbox, "read-file", &json!({"path": path})).await.0, Ok(json!("granted")));
    assert_eq!(c.call_in(&sandbox, "env-var", &json!({"name": "API_KEY"})).await.0, Ok(json!("k-1")));
    assert_eq!(
        c.call_in(&sandbox, "env-var", &json!({"name": "HOME"})).await.0,
        Ok(Value::Null),
        "only what is granted"
    );
    let outside = c.call_in(&sandbox, "read-file", &json!({"path": "/etc/hostname"})).await.0;
    assert!(matches!(outside, Err(ToolError::Failed(_))), "{outside:?}");
}
