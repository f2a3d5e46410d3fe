//! Rewrites of stored records from one schema version to the next, applied in
//! order in the same transaction that records the new version. Each works on
//! the JSON as stored, so the store needs no knowledge of the types above it.

use serde_json::{json, Map, Value};

use super::Table;

/// One step: every record of `table` rewritten to schema version `to`.
pub struct Migration {
    pub to: u64,
    pub table: Table,
    pub rewrite: fn(Value) -> Result<Value, String>,
}

pub const MIGRATIONS: &[Migration] =
    &[Migration { to: 2, table: Table::Deployments, rewrite: deployment_request_in_catalog_shape }];

/// Version 1 stored a deployment's request in the WIT bindings' serde layout
/// (`"source": {"Image": {…}}`, `"env": [["K", "v"]]`, `"visibility": "Public"`);
/// version 2 stores the catalog's shapes (`"source": {"type": "docker", …}`).
pub fn deployment_request_in_catalog_shape(mut record: Value) -> Result<Value, String> {
    let Some(request) = record.get_mut("request").filter(|r| r.is_object()) else {
        return Ok(record);
    };
    if let Some(fields) = request.as_object_mut() {
        for key in ["deployment_id", "backend", "requested_by"] {
            fields.remove(key);
        }
        if let Some(Value::Array(pairs)) = fields.get("env") {
            let env = pairs_to_map(pairs);
            fields.insert("env".into(), Value::Object(env));
        }
    }
    if let Some(visibility) = request.pointer_mut("/resources/visibility") {
        if let Some(v) = visibility.as_str() {
            *visibility = json!(v.to_lowercase());
        }
    }
    let source = request.pointer_mut("/entry/source").ok_or("request.entry.source is missing")?;
    let old = source.as_object().filter(|o| o.len() == 1).ok_or("request.entry.source is not a v1 variant")?;
    let (variant, fields) = old.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
    let mut fields = fields.as_object().cloned().ok_or("request.entry.source has no fields")?;
    let kind = match variant.as_str() {
        "Image" => "docker",
        "Github" => {
            if let Some(Value::Array(pairs)) = fields.get("build_args") {
                let args = pairs_to_map(pairs);
                fields.insert("build_args".into(), Value::Object(args));
            }
            "github"
        }
        "Compose" => "compose",
        other => return Err(format!("request.entry.source: unknown variant '{other}'")),
    };
    fields.retain(|_, v| !v.is_null());
    fields.insert("type".into(), json!(kind));
    *source = Value::Object(fields);
    Ok(record)
}

/// `[["K", "v"], …]` (a WIT `list<tuple<string, string>>`) as `{"K": "v", …}`.
fn pairs_to_map(pairs: &[Value]) -> Map<String, Value> {
    pairs.iter().filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.clone()))).collect()
}
