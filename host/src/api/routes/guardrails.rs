//! `/guardrails`: the guardrail profiles deployments run under.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit;
use crate::api::{ApiError, ApiResult, AppState, Caller, JsonBody, QueryParams};
use crate::auth::authz::may;
use crate::events::EventKind;
use crate::guardrails::Profile;
use crate::store::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardrails", get(list_guardrails).post(create_guardrails))
        .route("/guardrails/{name}", get(get_guardrails).put(replace_guardrails).delete(delete_guardrails))
        .route("/guardrails/{name}/compatibility", get(guardrails_compatibility))
}

async fn list_guardrails(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Profile>>> {
    Ok(Json(rt.store.list(Table::Guardrails)?))
}

async fn get_guardrails(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(name): Path<String>,
) -> ApiResult<Json<Profile>> {
    rt.profile(&name)?.map(Json).ok_or_else(|| ApiError::NotFound(format!("guardrails profile '{name}' not found")))
}

async fn create_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    JsonBody(profile): JsonBody<Profile>,
) -> ApiResult<(StatusCode, Json<Profile>)> {
    profile.validate()?;
    let event = audit(EventKind::GuardrailsCreated, format!("guardrails/{}", profile.name), json!(profile), &caller);
    rt.store.create(Table::Guardrails, &profile.name, &profile, event)?;
    Ok((StatusCode::CREATED, Json(profile)))
}

async fn replace_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    Path(name): Path<String>,
    JsonBody(mut profile): JsonBody<Profile>,
) -> ApiResult<Json<Profile>> {
    if profile.name.is_empty() {
        profile.name = name.clone();
    }
    if profile.name != name {
        return Err(ApiError::Invalid { field: "name".into(), reason: format!("must match the path ('{name}')") });
    }
    profile.validate()?;
    let event = audit(EventKind::GuardrailsUpdated, format!("guardrails/{name}"), json!(profile), &caller);
    rt.store.replace(Table::Guardrails, &name, &profile, event)?;
    Ok(Json(profile))
}

async fn delete_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let event = audit(EventKind::GuardrailsDeleted, format!("guardrails/{name}"), json!({}), &caller);
    rt.delete_profile(&name, event)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendQuery {
    backend: Option<String>,
}

async fn guardrails_compatibility(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(name): Path<String>,
    QueryParams(q): QueryParams<BackendQuery>,
) -> ApiResult<Json<Value>> {
    let profile =
        rt.profile(&name)?.ok_or_else(|| ApiError::NotFound(format!("guardrails profile '{name}' not found")))?;
    let backend = q.backend.unwrap_or_else(|| rt.config.default_backend.clone());
    Ok(Json(crate::deployments::compatibility(&rt, &profile, &backend).await?))
}
