//! The HTTP API. Every module's error becomes an HTTP answer here, in one
//! place (`ApiError`); bad input is a 4xx with a JSON body naming the field.

use axum::body::Bytes;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::Instrument;

use crate::approvals::{Approval, ApprovalFilter, Review};
use crate::auth::{AuthError, Authenticator, Principal};
use crate::authz::{authorize, Action, Forbidden};
use crate::catalog::{CatalogEntry, CatalogError, CatalogFilter};
use crate::guardrails::{GuardrailError, Profile};
use crate::plugins::PluginError;
use crate::runtime::{self, DeployBody, Deployment, Runtime, RuntimeError, State as DeployState};
use crate::store::{EventFilter, NewEvent, StoreError, Table};

pub type AppState = Arc<Runtime>;

pub fn router(runtime: AppState, auth: Arc<Authenticator>) -> Router {
    Router::new()
        .route("/plugins", get(list_plugins))
        .route("/backends", get(list_backends))
        .route("/catalog", get(list_catalog).post(create_catalog))
        .route("/catalog/{slug}", get(get_catalog).put(replace_catalog).delete(delete_catalog))
        .route("/guardrails", get(list_guardrails).post(create_guardrails))
        .route("/guardrails/{name}", get(get_guardrails).put(replace_guardrails).delete(delete_guardrails))
        .route("/guardrails/{name}/compatibility", get(guardrails_compatibility))
        .route("/runtimes", get(list_runtimes))
        .route("/runtimes/deploy", post(deploy))
        .route("/runtimes/{id}", get(get_runtime).delete(delete_runtime))
        .route("/runtimes/{id}/stop", post(stop_runtime))
        .route("/runtimes/{id}/start", post(start_runtime))
        .route("/runtimes/{id}/logs", get(runtime_logs))
        .route("/servers/{id}/mcp", any(proxy_mcp))
        .route("/events", get(list_events))
        .route("/approvals", get(list_approvals))
        .route("/approvals/{id}", get(get_approval))
        .route("/approvals/{id}/{verdict}", post(review))
        // Everything above needs a valid token; health does not.
        .route_layer(axum::middleware::from_fn_with_state(auth, authenticate))
        .route("/health", get(health))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::from_fn(request_span))
        .with_state(runtime)
}

/// Puts the caller's `Principal` in the request, or answers 401.
async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth.verify_header(header) {
        Ok(principal) => {
            tracing::Span::current().record("user", principal.user.as_str());
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => ApiError::Unauthorized(e.to_string()).into_response(),
    }
}

async fn request_span(request: Request, next: axum::middleware::Next) -> Response {
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), user = tracing::field::Empty);
    async move {
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

// ---------- errors ----------

#[derive(Debug)]
pub enum ApiError {
    /// Syntactically broken body.
    Malformed(String),
    Unauthorized(String),
    Forbidden(String),
    Invalid {
        field: String,
        reason: String,
    },
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    /// A plugin or backend failed.
    Upstream {
        error: String,
        plugin: Option<String>,
    },
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Malformed(e) => (StatusCode::BAD_REQUEST, json!({"error": e})),
            ApiError::Unauthorized(e) => {
                let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
                return (StatusCode::UNAUTHORIZED, challenge, Json(json!({"error": e}))).into_response();
            }
            ApiError::Forbidden(e) => (StatusCode::FORBIDDEN, json!({"error": e})),
            ApiError::Invalid { field, reason } => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": format!("{field}: {reason}"), "field": field}))
            }
            ApiError::NotFound(e) => (StatusCode::NOT_FOUND, json!({"error": e})),
            ApiError::Conflict(e) => (StatusCode::CONFLICT, json!({"error": e})),
            ApiError::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": e})),
            ApiError::Upstream { error, plugin } => {
                (StatusCode::BAD_GATEWAY, json!({"error": error, "plugin": plugin}))
            }
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": e}))
            }
        };
        (status, Json(body)).into_response()
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        ApiError::Forbidden(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Unauthorized(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(CatalogError::Invalid { field, reason }: CatalogError) -> Self {
        ApiError::Invalid { field, reason }
    }
}

impl From<GuardrailError> for ApiError {
    fn from(GuardrailError::Invalid { field, reason }: GuardrailError) -> Self {
        ApiError::Invalid { field, reason }
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let plugin = match &e {
            PluginError::Load { plugin, .. }
            | PluginError::NotGranted { plugin, .. }
            | PluginError::MemoryExhausted { plugin, .. }
            | PluginError::CpuBudget { plugin, .. }
            | PluginError::Timeout { plugin, .. }
            | PluginError::Trapped { plugin, .. }
            | PluginError::Missing { plugin, .. } => Some(plugin.clone()),
        };
        ApiError::Upstream { error: e.to_string(), plugin }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Invalid { field, reason } => ApiError::Invalid { field, reason },
            RuntimeError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            RuntimeError::Conflict(e) => ApiError::Conflict(e),
            RuntimeError::Forbidden(e) => ApiError::Forbidden(e),
            RuntimeError::Unavailable(e) => ApiError::Unavailable(e),
            RuntimeError::Backend(e) => ApiError::Upstream { error: e, plugin: None },
            RuntimeError::Plugin(e) => e.into(),
            RuntimeError::Store(e) => e.into(),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose errors name the field at fault (`resources.cpu`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::Malformed("expected a JSON body (Content-Type: application/json)".into()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| ApiError::Malformed(e.to_string()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => Ok(value),
        Err(e) => {
            let field = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::Malformed(format!("malformed JSON: {inner}")));
            }
            // A missing or unknown field is named in the message, not the path.
            let field = if field == "." { named_field(&inner.to_string()).unwrap_or(field) } else { field };
            Err(ApiError::Invalid { field, reason: inner.to_string() })
        }
    }
}

fn named_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

type Caller = Extension<Principal>;

// ---------- service ----------

async fn health(State(rt): State<AppState>) -> Json<Value> {
    let backends: Vec<Value> = rt
        .backend_names()
        .into_iter()
        .map(|(name, why)| json!({"name": name, "available": why.is_none(), "reason": why}))
        .collect();
    Json(json!({"status": "ok", "backends": backends}))
}

async fn list_plugins(State(rt): State<AppState>, Extension(caller): Caller) -> ApiResult<Json<Value>> {
    authorize(&caller, &Action::Read)?;
    let plugins: Vec<Value> = rt
        .plugins
        .values()
        .map(|p| json!({"id": p.manifest.id, "world": p.world(), "grants": p.manifest.grants, "sha256": p.hash,
                        "limits": {"memory_mb": p.manifest.limits.memory_mb, "cpu_ms": p.manifest.limits.cpu_ms, "timeout_ms": p.manifest.limits.timeout_ms}}))
        .collect();
    Ok(Json(json!(plugins)))
}

async fn list_backends(State(rt): State<AppState>, Extension(caller): Caller) -> ApiResult<Json<Vec<Value>>> {
    authorize(&caller, &Action::Read)?;
    Ok(Json(rt.store.list(Table::Backends)?))
}

// ---------- catalog ----------

async fn list_catalog(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Query(filter): Query<CatalogFilter>,
) -> ApiResult<Json<Vec<CatalogEntry>>> {
    authorize(&caller, &Action::Read)?;
    let entries: Vec<CatalogEntry> = rt.store.list(Table::Catalog)?;
    Ok(Json(entries.into_iter().filter(|e| e.matches(&filter)).collect()))
}

async fn get_catalog(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    authorize(&caller, &Action::Read)?;
    let entry = rt.store.get(Table::Catalog, &slug)?;
    entry.map(Json).ok_or_else(|| ApiError::NotFound(format!("catalog entry '{slug}' not found")))
}

fn check_entry(rt: &Runtime, entry: &CatalogEntry) -> ApiResult<()> {
    entry.validate(|p| matches!(rt.profile(p), Ok(Some(_))))?;
    Ok(())
}

async fn create_catalog(
    State(rt): State<AppState>,
    Extension(caller): Caller,

    JsonBody(entry): JsonBody<CatalogEntry>,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    authorize(&caller, &Action::WriteCatalog)?;
    if !rt.config.catalog.allow_custom_entries {
        return Err(ApiError::Conflict("custom catalog entries are disabled (catalog.allow_custom_entries)".into()));
    }
    check_entry(&rt, &entry)?;
    let event = audit("catalog.created", format!("catalog/{}", entry.slug), json!(entry), &caller);
    rt.store.create(Table::Catalog, &entry.slug, &entry, event)?;
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn replace_catalog(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(slug): Path<String>,

    JsonBody(entry): JsonBody<CatalogEntry>,
) -> ApiResult<Json<CatalogEntry>> {
    authorize(&caller, &Action::WriteCatalog)?;
    if entry.slug != slug {
        return Err(ApiError::Invalid { field: "slug".into(), reason: format!("must match the path ('{slug}')") });
    }
    check_entry(&rt, &entry)?;
    let event = audit("catalog.updated", format!("catalog/{slug}"), json!(entry), &caller);
    rt.store.replace(Table::Catalog, &slug, &entry, event)?;
    Ok(Json(entry))
}

async fn delete_catalog(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&caller, &Action::WriteCatalog)?;
    rt.store.delete(Table::Catalog, &slug, audit("catalog.deleted", format!("catalog/{slug}"), json!({}), &caller))?;
    Ok(StatusCode::NO_CONTENT)
}

fn audit(kind: &str, subject: String, data: Value, caller: &Principal) -> NewEvent {
    let mut event = NewEvent::new(kind, subject, data);
    event.actor = Some(caller.user.clone());
    event
}

// ---------- guardrails ----------

async fn list_guardrails(State(rt): State<AppState>, Extension(caller): Caller) -> ApiResult<Json<Vec<Profile>>> {
    authorize(&caller, &Action::Read)?;
    Ok(Json(rt.store.list(Table::Guardrails)?))
}

async fn get_guardrails(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Profile>> {
    authorize(&caller, &Action::Read)?;
    rt.profile(&name)?.map(Json).ok_or_else(|| ApiError::NotFound(format!("guardrails profile '{name}' not found")))
}

async fn create_guardrails(
    State(rt): State<AppState>,
    Extension(caller): Caller,

    JsonBody(profile): JsonBody<Profile>,
) -> ApiResult<(StatusCode, Json<Profile>)> {
    authorize(&caller, &Action::WriteGuardrails)?;
    profile.validate()?;
    let event = audit("guardrails.created", format!("guardrails/{}", profile.name), json!(profile), &caller);
    rt.store.create(Table::Guardrails, &profile.name, &profile, event)?;
    Ok((StatusCode::CREATED, Json(profile)))
}

async fn replace_guardrails(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(name): Path<String>,

    JsonBody(mut profile): JsonBody<Profile>,
) -> ApiResult<Json<Profile>> {
    authorize(&caller, &Action::WriteGuardrails)?;
    if profile.name.is_empty() {
        profile.name = name.clone();
    }
    if profile.name != name {
        return Err(ApiError::Invalid { field: "name".into(), reason: format!("must match the path ('{name}')") });
    }
    profile.validate()?;
    let event = audit("guardrails.updated", format!("guardrails/{name}"), json!(profile), &caller);
    rt.store.replace(Table::Guardrails, &name, &profile, event)?;
    Ok(Json(profile))
}

async fn delete_guardrails(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&caller, &Action::WriteGuardrails)?;
    let users: Vec<String> = rt
        .store
        .list::<CatalogEntry>(Table::Catalog)?
        .into_iter()
        .filter(|e| e.guardrails_profile == name)
        .map(|e| e.slug)
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!("profile '{name}' is used by catalog entries {users:?}")));
    }
    if name == rt.config.guardrails.default_profile {
        return Err(ApiError::Conflict(format!("profile '{name}' is the default profile")));
    }
    rt.store.delete(
        Table::Guardrails,
        &name,
        audit("guardrails.deleted", format!("guardrails/{name}"), json!({}), &caller),
    )?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BackendQuery {
    backend: Option<String>,
}

async fn guardrails_compatibility(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(name): Path<String>,
    Query(q): Query<BackendQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&caller, &Action::Read)?;
    let profile =
        rt.profile(&name)?.ok_or_else(|| ApiError::NotFound(format!("guardrails profile '{name}' not found")))?;
    let backend = q.backend.unwrap_or_else(|| rt.config.default_backend.clone());
    Ok(Json(runtime::compatibility(&rt, &profile, &backend).await?))
}

// ---------- runtimes ----------

async fn deploy(
    State(rt): State<AppState>,
    Extension(caller): Caller,

    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    authorize(&caller, &Action::Deploy)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let actor = Some(caller.user.clone());
    let checked = rt.check(&body, &id, actor.as_deref()).await?;
    if let Some(decision) = rt.needs_approval(&checked.request, &checked.guardrails).await? {
        let d = Runtime::deployment(checked, DeployState::AwaitingApproval);
        let approval = rt.hold_for_approval(&d, decision)?;
        let answer = json!({"id": d.id, "status": d.status, "approval_id": approval.id, "reasons": approval.reasons,
                            "approvers": approval.approvers, "expires_at": approval.expires_at,
                            "guardrails_applied": d.guardrails_applied, "guardrails_warnings": d.guardrails_warnings});
        return Ok((StatusCode::ACCEPTED, Json(answer)));
    }
    let d = rt.accept(checked)?;
    let answer = json!({"id": d.id, "status": d.status, "guardrails_applied": d.guardrails_applied, "guardrails_warnings": d.guardrails_warnings});
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

async fn list_runtimes(State(rt): State<AppState>, Extension(caller): Caller) -> ApiResult<Json<Value>> {
    authorize(&caller, &Action::Read)?;
    let all: Vec<Value> = rt.list()?.iter().map(Deployment::public_view).collect();
    Ok(Json(json!(all)))
}

async fn get_runtime(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&caller, &Action::Read)?;
    let d = rt.get(&id)?;
    let events = rt.store.events(&EventFilter { deployment: Some(id), limit: Some(20), ..Default::default() })?;
    let mut view = d.public_view();
    view["recent_events"] = json!(events);
    Ok(Json(view))
}

/// The deployment, if the caller may operate it (their own, or anyone's for operators).
fn operable(rt: &Runtime, caller: &Principal, id: &str) -> ApiResult<Deployment> {
    let d = rt.get(id)?;
    authorize(caller, &Action::Operate { owner: d.requested_by.as_deref() })?;
    Ok(d)
}

async fn stop_runtime(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    operable(&rt, &caller, &id)?;
    Ok(Json(rt.stop(&id, Some(caller.user.as_str())).await?.public_view()))
}

async fn start_runtime(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    operable(&rt, &caller, &id)?;
    Ok(Json(rt.start(&id, Some(caller.user.as_str())).await?.public_view()))
}

async fn delete_runtime(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    operable(&rt, &caller, &id)?;
    rt.delete(&id, Some(caller.user.as_str())).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    tail: Option<u32>,
}

async fn runtime_logs(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    operable(&rt, &caller, &id)?;
    let text = rt.logs(&id, q.tail.unwrap_or(100).min(10_000)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn list_events(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Query(filter): Query<EventFilter>,
) -> ApiResult<Json<Value>> {
    authorize(&caller, &Action::ReadAudit)?;
    Ok(Json(json!(rt.store.events(&filter)?)))
}

// ---------- approvals ----------

async fn list_approvals(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Query(filter): Query<ApprovalFilter>,
) -> ApiResult<Json<Vec<Approval>>> {
    authorize(&caller, &Action::ReadAudit)?;
    Ok(Json(rt.approvals(&filter)?))
}

async fn get_approval(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    let approval = rt.approval(&id)?;
    // The requester may follow their own request; the audit roles any.
    if approval.requested_by.as_deref() != Some(caller.user.as_str()) {
        authorize(&caller, &Action::ReadAudit)?;
    }
    Ok(Json(approval))
}

/// `POST /approvals/{id}/approve` or `/reject`, with optional `{"notes": …}`.
async fn review(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path((id, verdict)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Approval>> {
    authorize(&caller, &Action::Approve)?;
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::NotFound("no such route".into())),
    };
    let notes = review_notes(&body)?;
    Ok(Json(rt.decide(&id, &caller, approve, notes).await?))
}

/// `{"notes": "..."}`, or an empty body.
fn review_notes(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(parse_json::<Review>(body)?.notes)
}

// ---------- MCP proxy ----------

/// Forwards `/servers/{id}/mcp` to the deployment's endpoint, streaming both
/// ways, so no host port is ever published. The hot path reads memory only;
/// the store is read just to explain a refusal.
async fn proxy_mcp(
    State(rt): State<AppState>,
    Extension(caller): Caller,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let Some(route) = rt.routes.lookup(&id) else {
        let d = operable(&rt, &caller, &id)?;
        return Err(ApiError::Unavailable(format!("deployment '{id}' is {:?}, not serving", d.status)));
    };
    authorize(&caller, &Action::Operate { owner: route.owner.as_deref() })?;
    rt.upstream.forward(&route, request).await.map_err(|e| ApiError::Upstream { error: e.to_string(), plugin: None })
}
