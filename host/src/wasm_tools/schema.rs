//! The JSON Schema of a WIT type, as an MCP tool's `inputSchema` names its
//! arguments: records are objects, variants one-of objects keyed by case,
//! enums and flags strings, options nullable, results `{ok}` or `{err}`.

use serde_json::{json, Value};
use wasmtime::component::types::Type;

pub fn of(ty: &Type) -> Value {
    match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8 | Type::S16 | Type::S32 | Type::S64 => json!({"type": "integer"}),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => json!({"type": "integer", "minimum": 0}),
        Type::Float32 | Type::Float64 => json!({"type": "number"}),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(list) => json!({"type": "array", "items": of(&list.ty())}),
        Type::Tuple(tuple) => {
            let items: Vec<Value> = tuple.types().map(|t| of(&t)).collect();
            json!({"type": "array", "prefixItems": items, "minItems": items.len(), "maxItems": items.len()})
        }
        Type::Record(record) => {
            let fields: Vec<(String, Type)> = record.fields().map(|f| (f.name.to_string(), f.ty)).collect();
            object(&fields)
        }
        Type::Variant(variant) => {
            let cases: Vec<Value> = variant
                .cases()
                .map(|case| match case.ty {
                    Some(payload) => json!({"type": "object", "properties": {case.name: of(&payload)},
                                            "required": [case.name], "additionalProperties": false}),
                    None => json!({"const": case.name}),
                })
                .collect();
            json!({"oneOf": cases})
        }
        Type::Enum(en) => json!({"type": "string", "enum": en.names().collect::<Vec<_>>()}),
        Type::Flags(flags) => {
            json!({"type": "array", "items": {"type": "string", "enum": flags.names().collect::<Vec<_>>()}, "uniqueItems": true})
        }
        Type::Option(option) => json!({"anyOf": [of(&option.ty()), {"type": "null"}]}),
        Type::Result(result) => {
            let side = |t: Option<Type>| t.map(|t| of(&t)).unwrap_or(json!({"type": "null"}));
            json!({"oneOf": [
                {"type": "object", "properties": {"ok": side(result.ok())}, "required": ["ok"]},
                {"type": "object", "properties": {"err": side(result.err())}, "required": ["err"]}
            ]})
        }
        // Resources, streams and the like cannot cross JSON: such a tool is not offered.
        _ => json!({"not": {}}),
    }
}

/// The schema of named fields (a record, or a function's parameters): every
/// field required, except an `option` one.
pub fn object(fields: &[(String, Type)]) -> Value {
    let properties: serde_json::Map<String, Value> = fields.iter().map(|(name, ty)| (name.clone(), of(ty))).collect();
    let required: Vec<&str> =
        fields.iter().filter(|(_, ty)| !matches!(ty, Type::Option(_))).map(|(name, _)| name.as_str()).collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Whether values of `ty` can be written as JSON at all.
pub fn expressible(ty: &Type) -> bool {
    match ty {
        Type::List(list) => expressible(&list.ty()),
        Type::Tuple(tuple) => tuple.types().all(|t| expressible(&t)),
        Type::Record(record) => record.fields().all(|f| expressible(&f.ty)),
        Type::Variant(variant) => variant.cases().all(|c| c.ty.as_ref().is_none_or(expressible)),
        Type::Option(option) => expressible(&option.ty()),
        Type::Result(result) => {
            result.ok().as_ref().is_none_or(expressible) && result.err().as_ref().is_none_or(expressible)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext | Type::Map(_) => false,
        Type::FixedLengthList(_) => false,
        _ => true,
    }
}
