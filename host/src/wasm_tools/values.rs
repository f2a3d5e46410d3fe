//! Arguments from JSON to component values, checked against the WIT type
//! (an error names the argument's path), and results back to JSON.

use serde_json::{json, Value};
use wasmtime::component::types::Type;
use wasmtime::component::Val;

/// `json` as a value of `ty`; the error names `at` (e.g. `b.x`) and what was expected.
pub fn to_val(json: &Value, ty: &Type, at: &str) -> Result<Val, (String, String)> {
    let err = |expected: &str| (at.to_string(), format!("expected {expected}, got {json}"));
    let wrong = |expected: &str| Err(err(expected));
    let int = |json: &Value| json.as_i64();
    let uint = |json: &Value| json.as_u64();
    Ok(match ty {
        Type::Bool => match json.as_bool() {
            Some(b) => Val::Bool(b),
            None => return wrong("a boolean"),
        },
        Type::S8 => Val::S8(int(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("an s8"))?),
        Type::S16 => Val::S16(int(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("an s16"))?),
        Type::S32 => Val::S32(int(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("an s32"))?),
        Type::S64 => Val::S64(int(json).ok_or_else(|| err("an s64"))?),
        Type::U8 => Val::U8(uint(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("a u8"))?),
        Type::U16 => Val::U16(uint(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("a u16"))?),
        Type::U32 => Val::U32(uint(json).and_then(|n| n.try_into().ok()).ok_or_else(|| err("a u32"))?),
        Type::U64 => Val::U64(uint(json).ok_or_else(|| err("a u64"))?),
        Type::Float32 => Val::Float32(json.as_f64().ok_or_else(|| err("a number"))? as f32),
        Type::Float64 => Val::Float64(json.as_f64().ok_or_else(|| err("a number"))?),
        Type::Char => match json.as_str().map(|s| s.chars().collect::<Vec<_>>()).as_deref() {
            Some([c]) => Val::Char(*c),
            _ => return wrong("one character"),
        },
        Type::String => Val::String(json.as_str().ok_or_else(|| err("a string"))?.to_string()),
        Type::List(list) => {
            let Some(items) = json.as_array() else { return wrong("an array") };
            let item = list.ty();
            let vals: Result<Vec<Val>, _> =
                items.iter().enumerate().map(|(i, v)| to_val(v, &item, &format!("{at}[{i}]"))).collect();
            Val::List(vals?)
        }
        Type::Tuple(tuple) => {
            let types: Vec<Type> = tuple.types().collect();
            let Some(items) = json.as_array().filter(|a| a.len() == types.len()) else {
                return wrong(&format!("an array of {}", types.len()));
            };
            let vals: Result<Vec<Val>, _> =
                items.iter().zip(&types).enumerate().map(|(i, (v, t))| to_val(v, t, &format!("{at}[{i}]"))).collect();
            Val::Tuple(vals?)
        }
        Type::Record(record) => {
            let Some(object) = json.as_object() else { return wrong("an object") };
            let fields: Vec<(String, Type)> = record.fields().map(|f| (f.name.to_string(), f.ty)).collect();
            Val::Record(fields_of(object, &fields, at)?)
        }
        Type::Variant(variant) => {
            let (name, payload) = match json {
                Value::String(name) => (name.as_str(), None),
                Value::Object(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), Some(v))).expect("one"),
                _ => return wrong("a case name, or an object of one case"),
            };
            let Some(case) = variant.cases().find(|c| c.name == name) else { return wrong("one of the cases") };
            let payload = match (case.ty, payload) {
                (Some(ty), Some(v)) => Some(Box::new(to_val(v, &ty, &format!("{at}.{name}"))?)),
                (None, None | Some(Value::Null)) => None,
                _ => return wrong(&format!("case '{name}' {}", "with its payload, or without one")),
            };
            Val::Variant(name.to_string(), payload)
        }
        Type::Enum(en) => match json.as_str().filter(|s| en.names().any(|n| n == *s)) {
            Some(name) => Val::Enum(name.to_string()),
            None => return wrong(&format!("one of {:?}", en.names().collect::<Vec<_>>())),
        },
        Type::Flags(flags) => {
            let names: Vec<&str> = flags.names().collect();
            let Some(set) = json.as_array() else { return wrong("an array of flag names") };
            let mut on = Vec::new();
            for flag in set {
                match flag.as_str().filter(|f| names.contains(f)) {
                    Some(f) => on.push(f.to_string()),
                    None => return wrong(&format!("flags among {names:?}")),
                }
            }
            Val::Flags(on)
        }
        Type::Option(option) => match json {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(to_val(v, &option.ty(), at)?))),
        },
        Type::Result(result) => {
            let side = |key: &str, ty: Option<Type>| -> Result<Option<Box<Val>>, (String, String)> {
                match (ty, json.get(key)) {
                    (Some(ty), Some(v)) => Ok(Some(Box::new(to_val(v, &ty, &format!("{at}.{key}"))?))),
                    _ => Ok(None),
                }
            };
            match (json.get("ok"), json.get("err")) {
                (Some(_), None) => Val::Result(Ok(side("ok", result.ok())?)),
                (None, Some(_)) => Val::Result(Err(side("err", result.err())?)),
                _ => return wrong("{\"ok\": …} or {\"err\": …}"),
            }
        }
        _ => return wrong("a type JSON cannot carry"),
    })
}

/// Named values from a JSON object: each field by name, an absent `option` as none.
pub fn fields_of(
    object: &serde_json::Map<String, Value>,
    fields: &[(String, Type)],
    at: &str,
) -> Result<Vec<(String, Val)>, (String, String)> {
    let path = |name: &str| if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
    if let Some(unknown) = object.keys().find(|k| !fields.iter().any(|(name, _)| name == *k)) {
        return Err((path(unknown), "no such field".into()));
    }
    fields
        .iter()
        .map(|(name, ty)| match (object.get(name), ty) {
            (Some(v), _) => Ok((name.clone(), to_val(v, ty, &path(name))?)),
            (None, Type::Option(_)) => Ok((name.clone(), Val::Option(None))),
            (None, _) => Err((path(name), "required".into())),
        })
        .collect()
}

/// A result as JSON: records as objects, variants as `{case: payload}` (or the case name), results as `{ok}`/`{err}`.
pub fn to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(n) => json!(n),
        Val::Float64(n) => json!(n),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Record(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Val::Variant(name, None) | Val::Enum(name) => json!(name),
        Val::Variant(name, Some(payload)) => json!({name: to_json(payload)}),
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => to_json(v),
        Val::Result(Ok(v)) => json!({"ok": v.as_deref().map(to_json)}),
        Val::Result(Err(v)) => json!({"err": v.as_deref().map(to_json)}),
        Val::Flags(names) => json!(names),
        _ => Value::Null,
    }
}
