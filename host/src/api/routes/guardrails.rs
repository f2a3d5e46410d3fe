//! `/guardrails`: the guardrail profiles deployments run under.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiResult, AppState, Caller, JsonBody, QueryParams};
use crate::auth::authz::may;
use crate::deployments::Compatibility;
use crate::guardrails::Profile;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_guardrails, create_guardrails))
        .routes(routes!(get_guardrails, replace_guardrails, delete_guardrails))
        .routes(routes!(guardrails_compatibility))
}

#[utoipa::path(get, path = "/guardrails", tag = "guardrails", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<Profile>)))]
/// Every profile.
async fn list_guardrails(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Profile>>> {
    Ok(Json(rt.profiles.list()?))
}

#[utoipa::path(get, path = "/guardrails/{name}", tag = "guardrails", params(("name" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = Profile)))]
/// One profile.
async fn get_guardrails(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(name): Path<String>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(rt.profiles.get(&name)?))
}

#[utoipa::path(post, path = "/guardrails", tag = "guardrails", request_body = Profile,
    extensions(("x-permission" = json!("write_guardrails"))),
    responses((status = 201, body = Profile,
               links(("GetProfile" = (operation_id = "get_guardrails", parameters(("name" = "$response.body#/name")))),
                     ("DeleteProfile" = (operation_id = "delete_guardrails", parameters(("name" = "$response.body#/name")))))),
              (status = 409, body = ErrorBody, description = "The name is taken")))]
/// Adds a profile.
async fn create_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    JsonBody(profile): JsonBody<Profile>,
) -> ApiResult<(StatusCode, Json<Profile>)> {
    rt.profiles.create(&profile, &caller.user)?;
    Ok((StatusCode::CREATED, Json(profile)))
}

#[utoipa::path(put, path = "/guardrails/{name}", tag = "guardrails", params(("name" = String, Path)),
    request_body = Profile, extensions(("x-permission" = json!("write_guardrails"))),
    responses((status = 200, body = Profile)))]
/// Replaces a profile; `name` may be left out, and otherwise must match the path.
async fn replace_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    Path(name): Path<String>,
    JsonBody(profile): JsonBody<Profile>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(rt.profiles.replace(&name, profile, &caller.user)?))
}

#[utoipa::path(delete, path = "/guardrails/{name}", tag = "guardrails", params(("name" = String, Path)),
    extensions(("x-permission" = json!("write_guardrails"))),
    responses((status = 204, description = "Deleted"),
              (status = 409, body = ErrorBody, description = "Catalog entries or deployments still use it")))]
/// Deletes a profile nothing uses.
async fn delete_guardrails(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteGuardrails>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    rt.profiles.delete(&name, &caller.user)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BackendQuery {
    /// The backend to ask (the default backend when absent).
    backend: Option<String>,
}

#[utoipa::path(get, path = "/guardrails/{name}/compatibility", tag = "guardrails",
    params(("name" = String, Path), BackendQuery), extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Compatibility)))]
/// Which of the profile's guardrails a backend enforces, and what a deploy would warn.
async fn guardrails_compatibility(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(name): Path<String>,
    QueryParams(q): QueryParams<BackendQuery>,
) -> ApiResult<Json<Compatibility>> {
    let profile = rt.profiles.get(&name)?;
    let backend = q.backend.unwrap_or_else(|| rt.config.default_backend.clone());
    Ok(Json(crate::deployments::compatibility(&rt.deployments, &profile, &backend).await?))
}
