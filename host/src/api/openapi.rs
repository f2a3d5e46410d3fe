//! The OpenAPI 3.1 document, generated from the code: each handler carries
//! its `#[utoipa::path]` beside it, the types it takes and answers derive
//! their schemas, and the router collects both (`utoipa_axum::routes!`), so
//! a route cannot exist without its description. Served at `/openapi.json`;
//! `docs/openapi.json` is a copy a test keeps equal.
//!
//! What every operation shares is added here rather than repeated on each:
//! the bearer scheme with the roles the operation's permission grants (asked
//! of `authz`, the one matrix), and the error answers its inputs can draw.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, ToSchema};

use super::error::ErrorBody;
use crate::auth::authz::permission_roles;

/// The name of the security scheme every protected operation names.
const BEARER: &str = "bearer";
/// The operation's permission, as `#[utoipa::path(extensions(...))]` gives it.
const PERMISSION: &str = "x-permission";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mcp-runtime",
        description = "Deploys MCP servers from a catalog under guardrail profiles, holds sensitive \
                       deployments for approval, registers them with the gateway, and proxies MCP to them.\n\n\
                       Every operation but `/health` and `/openapi.json` needs a bearer token: a JWT signed \
                       with the gateway's secret (ContextForge's own tokens work). The roles an operation \
                       needs are listed in its security requirement and its description. Every error answers \
                       JSON: `{\"error\": …}`, plus `field` when one input is at fault.\n\n\
                       The admin UI's pages (`/admin`) are HTML for browsers and are not part of this API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "service", description = "Health, backends and this document"),
        (name = "catalog", description = "The MCP servers that can be deployed"),
        (name = "guardrails", description = "The guardrail profiles deployments run under"),
        (name = "runtimes", description = "Deployments: request, follow, stop, start, delete"),
        (name = "approvals", description = "Deployments held for a decision"),
        (name = "plugins", description = "Backends, policies and approval rules as WebAssembly components"),
        (name = "events", description = "The audit trail"),
        (name = "metrics", description = "Prometheus exposition"),
        (name = "supply-chain", description = "What the host checks before anything runs: the OSV database"),
        (name = "mcp", description = "The MCP data path: streamable HTTP (and SSE) to a deployment's server"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared)
)]
pub struct ApiDoc;

/// The document's base: info, tags and the shared components.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Adds to every collected operation what they all share.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            complete(operation);
        }
        // Every write meets a full data directory the same way (MCP traffic writes nothing).
        let writes = [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in writes.into_iter().flatten().filter(|_| !path.starts_with("/servers/")) {
            add_error(
                operation,
                "507",
                "The data directory is full: writes are refused until space is freed, reads go on",
            );
        }
    }
    doc
}

struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some("A JWT signed with the gateway's secret; the roles it carries decide.".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

fn complete(operation: &mut Operation) {
    // Every answer has a description (OpenAPI requires one): its reason phrase when none was written.
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                let reason = status.parse().ok().and_then(|s: u16| axum::http::StatusCode::from_u16(s).ok());
                response.description = reason.and_then(|s| s.canonical_reason()).unwrap_or("Answer").to_string();
            }
        }
    }
    let permission =
        operation.extensions.as_ref().and_then(|e| e.get(PERMISSION)).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(permission) = permission {
        let (roles, note) =
            permission_roles(&permission).unwrap_or_else(|| panic!("{PERMISSION} '{permission}' names no permission"));
        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        operation.security = Some(vec![SecurityRequirement::new(BEARER, names.clone())]);
        let mut roles_line = format!("Roles: {}.", names.join(", "));
        if let Some(note) = note {
            roles_line = format!("{roles_line} {note}");
        }
        operation.description =
            Some(operation.description.take().map_or(roles_line.clone(), |d| format!("{d}\n\n{roles_line}")));
        add_error(operation, "401", "No valid bearer token");
        add_error(operation, "403", "The token's roles do not allow this");
        if permission == "operate" {
            add_error(operation, "409", "The deployment is in no state for this (nothing to act on yet)");
        }
        // What reaches a backend can find it failing or gone.
        if ["deploy", "operate", "use_mcp"].contains(&permission.as_str()) {
            add_error(operation, "502", "The backend or a plugin failed (`plugin` names it)");
            add_error(operation, "503", "The backend is unavailable, or the deployment is not serving");
        }
    }
    let takes = |operation: &Operation, place| {
        operation.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    if takes(operation, ParameterIn::Path) {
        add_error(operation, "404", "Nothing by that name");
    }
    if takes(operation, ParameterIn::Query) {
        add_error(operation, "422", "A parameter is invalid (`field` names it)");
    }
    if operation.request_body.is_some() {
        add_error(operation, "400", "The body is not JSON");
        add_error(operation, "413", "The body is larger than the configured limit");
        add_error(operation, "422", "A field is invalid (`field` names it)");
    }
}

/// An error answer, unless the operation already describes that status.
fn add_error(operation: &mut Operation, status: &str, description: &str) {
    if operation.responses.responses.contains_key(status) {
        return;
    }
    operation.responses.responses.insert(status.to_string(), error_response(description));
}

pub fn error_response(description: &str) -> RefOr<Response> {
    let body = utoipa::openapi::content::ContentBuilder::new().schema(Some(ErrorBody::schema_ref())).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
}

/// `ToSchema::name` as a `$ref` to the components.
trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

/// Where `value` has an array that `T`'s schema says is an object, if
/// anywhere: serde reads a struct from an array as readily as from an object
/// (`"resources": [null]`), which the document does not allow.
pub fn misplaced_array<T: ToSchema>(value: &serde_json::Value) -> Option<String> {
    let schema = serde_json::json!({"$ref": format!("#/components/schemas/{}", T::name())});
    misplaced(value, &schema, served(), String::new())
}

fn misplaced(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    doc: &serde_json::Value,
    at: String,
) -> Option<String> {
    use serde_json::Value;
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc.pointer(reference.trim_start_matches('#'))?,
        None => schema,
    };
    for combined in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema.get(combined).and_then(Value::as_array).into_iter().flatten() {
            if let Some(found) = misplaced(value, alternative, doc, at.clone()) {
                return Some(found);
            }
        }
    }
    let field = |name: &str| if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
    match value {
        Value::Array(_) if schema.get("type") == Some(&Value::from("object")) => Some(at),
        Value::Array(items) => {
            let item = schema.get("items")?;
            items.iter().enumerate().find_map(|(i, v)| misplaced(v, item, doc, format!("{at}[{i}]")))
        }
        Value::Object(members) => members.iter().find_map(|(name, v)| {
            let member = schema.get("properties").and_then(|p| p.get(name));
            let member = member.or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))?;
            misplaced(v, member, doc, field(name))
        }),
        _ => None,
    }
}

/// The whole document, as `/openapi.json` serves it.
pub fn document() -> OpenApi {
    finish(super::documented_routes().into_openapi())
}

/// The document, built once.
pub fn served() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(document()).expect("the OpenAPI document serializes"))
}

/// The document as `docs/openapi.json` keeps it.
pub fn to_pretty_json() -> String {
    document().to_pretty_json().expect("the OpenAPI document serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_keep_the_document_the_code_generates() {
        let generated = to_pretty_json();
        let kept = include_str!("../../../docs/openapi.json");
        assert!(
            kept == generated,
            "docs/openapi.json differs from the code's document: run `make openapi` and commit it"
        );
    }

    #[test]
    fn an_array_where_the_document_says_object_is_found() {
        use crate::deployment::DeployBody;
        use crate::guardrails::Profile;
        use serde_json::json;
        assert_eq!(misplaced_array::<Profile>(&json!({"resources": [null, null]})).as_deref(), Some("resources"));
        assert_eq!(misplaced_array::<Profile>(&json!({"network": {"allowed_hosts": ["a.example"]}})), None);
        assert_eq!(misplaced_array::<Profile>(&json!({"network": []})).as_deref(), Some("network"));
        assert_eq!(misplaced_array::<Profile>(&json!([])).as_deref(), Some(""));
        let deploy = json!({"slug": "s", "env": {"A": "1"}, "resources": {"cpu": "0.5"}});
        assert_eq!(misplaced_array::<DeployBody>(&deploy), None);
        let nested = json!({"name": "n", "slug": "s", "source": {"type": "docker", "image": "i"},
                            "health_check": {"type": "tcp"}, "origin": []});
        assert_eq!(
            misplaced_array::<crate::catalog::CatalogEntry>(&nested).as_deref(),
            Some("origin"),
            "through a reference and a nullable member"
        );
    }
}
