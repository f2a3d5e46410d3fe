//! Routing, authentication, fault injection, the error body and pagination:
//! what every endpoint shares.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

use crate::builds::Collection::{self, BuildRuns, Builds, Secrets};
use crate::{apps, builds, iam, Shared};

/// A fault the next matching request gets instead of its answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and a Code Engine error body.
    Status { status: u16, path_contains: String },
    /// Never answer (the client must time out).
    Hang { path_contains: String },
}

type Handler = axum::routing::MethodRouter<Arc<Shared>>;

fn list(c: Collection) -> Handler {
    get(move |State(s): State<Arc<Shared>>, Path(p): Path<String>, Query(q): Query<PageQuery>| {
        builds::list_items(s, p, q, c)
    })
}

fn one(c: Collection) -> Handler {
    get(move |State(s): State<Arc<Shared>>, Path((_, n)): Path<(String, String)>| builds::get_item(s, n, c))
}

fn remove(c: Collection) -> Handler {
    axum::routing::delete(move |State(s): State<Arc<Shared>>, Path((_, n)): Path<(String, String)>| {
        builds::delete_item(s, n, c)
    })
}

pub fn router(shared: Arc<Shared>) -> Router {
    let project = "/v2/projects/{project_id}";
    let api = Router::new()
        .route("/v2/projects", get(apps::list_projects))
        .route(project, get(apps::get_project))
        .route(&format!("{project}/apps"), get(apps::list).post(apps::create))
        .route(&format!("{project}/apps/{{name}}"), get(apps::get).patch(apps::patch).delete(apps::delete))
        .route(&format!("{project}/apps/{{name}}/instances"), get(apps::instances))
        .route(&format!("{project}/builds"), get(list(Builds)).post(builds::create_build))
        .route(&format!("{project}/builds/{{name}}"), get(one(Builds)).delete(remove(Builds)))
        .route(&format!("{project}/build_runs"), get(list(BuildRuns)).post(builds::create_run))
        .route(&format!("{project}/build_runs/{{name}}"), get(builds::get_run).delete(remove(BuildRuns)))
        .route(&format!("{project}/secrets"), get(list(Secrets)).post(builds::create_secret))
        .route(&format!("{project}/secrets/{{name}}"), get(one(Secrets)).delete(remove(Secrets)))
        .route("/v1/query", post(crate::logs::query))
        .route("/prometheus/api/v1/query", get(crate::monitoring::query))
        // Inner layer: runs after authentication, so a bad token is 401 before any 404.
        .layer(axum::middleware::from_fn_with_state(shared.clone(), project_scope))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), authenticate));
    Router::new()
        .route("/identity/token", post(iam::token))
        .merge(api)
        .fallback(|| async { ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found.") })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record_and_inject))
        .with_state(shared)
}

/// An error as Code Engine reports it.
#[derive(Debug)]
pub struct CeError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl CeError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> CeError {
        CeError { status, code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> CeError {
        CeError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    pub fn not_found() -> CeError {
        CeError::new(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found.")
    }
}

/// The Code Engine error body.
impl IntoResponse for CeError {
    fn into_response(self) -> Response {
        let trace = format!("codeengine-api-{}", uuid::Uuid::new_v4().simple());
        let body = json!({"errors": [{"code": self.code, "message": self.message}], "trace": trace,
                          "status_code": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

pub fn ce_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    CeError::new(status, code, message).into_response()
}

async fn record_and_inject(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let fault = {
        let mut state = shared.lock();
        state.requests.push(format!("{} {path}", request.method()));
        let position = state.faults.iter().position(|f| match f {
            Fault::Status { path_contains, .. } | Fault::Hang { path_contains } => {
                path.contains(path_contains.as_str())
            }
        });
        position.and_then(|i| state.faults.remove(i))
    };
    match fault {
        Some(Fault::Status { status, .. }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = if status == StatusCode::TOO_MANY_REQUESTS { "rate_limit_exceeded" } else { "internal_error" };
            ce_error(status, code, "Injected fault.")
        }
        Some(Fault::Hang { .. }) => std::future::pending().await,
        None => next.run(request).await,
    }
}

async fn authenticate(State(shared): State<Arc<Shared>>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let valid = token.is_some_and(|t| shared.lock().tokens.get(t).is_some_and(|expires| *expires > Instant::now()));
    if !valid {
        return ce_error(StatusCode::UNAUTHORIZED, "unauthorized", "A valid IAM access token is required.");
    }
    next.run(request).await
}

/// Every `/v2/projects/{project_id}/…` path names the fake's one project.
async fn project_scope(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let project = request
        .uri()
        .path()
        .strip_prefix("/v2/projects/")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_string());
    match project.map(|p| check_project(&shared, &p)) {
        Some(Err(e)) => e.into_response(),
        _ => next.run(request).await,
    }
}

/// Checks the `{project_id}` path segment.
fn check_project(shared: &Shared, project_id: &str) -> Result<(), CeError> {
    let well_formed = project_id.len() == 36
        && project_id.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
        && project_id.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
    if !well_formed {
        return Err(CeError::invalid("project_id must be a lowercase UUID."));
    }
    if project_id != shared.config.project_id {
        return Err(CeError::new(StatusCode::NOT_FOUND, "resource_not_found", "Project not found."));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    limit: Option<usize>,
    start: Option<String>,
}

/// `{key: [...], limit, first:{href}, next?:{href,start}}`; `start` is an opaque offset.
pub fn page(shared: &Shared, path: &str, key: &str, items: Vec<Value>, q: &PageQuery) -> Response {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return ce_error(StatusCode::BAD_REQUEST, "invalid_parameter", "limit must be between 1 and 100.");
    }
    let offset = match q.start.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return ce_error(StatusCode::BAD_REQUEST, "invalid_parameter", "start is not a valid token."),
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let href = |start: Option<usize>| {
        let start = start.map(|s| format!("&start={s}")).unwrap_or_default();
        format!("{}{path}?limit={limit}{start}", shared.base)
    };
    let mut body = json!({key: page, "limit": limit, "first": {"href": href(None)}});
    if offset + limit < total {
        body["next"] = json!({"href": href(Some(offset + limit)), "start": (offset + limit).to_string()});
    }
    Json(body).into_response()
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
