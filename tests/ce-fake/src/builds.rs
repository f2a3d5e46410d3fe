//! Builds (201), build runs (202; `pending` → `running` → `succeeded` |
//! `failed` as they are polled) and secrets (201).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::{ce_error, now, page, CeError, PageQuery};
use crate::{validate, Resource, Shared};

fn bad(message: String) -> Response {
    CeError::invalid(message).into_response()
}

fn not_found() -> Response {
    CeError::not_found().into_response()
}

/// The stored resources that share plain get, list and delete.
#[derive(Clone, Copy)]
pub enum Collection {
    Builds,
    BuildRuns,
    Secrets,
}

impl Collection {
    fn key(self) -> &'static str {
        match self {
            Collection::Builds => "builds",
            Collection::BuildRuns => "build_runs",
            Collection::Secrets => "secrets",
        }
    }

    fn of(self, state: &mut crate::State) -> &mut std::collections::BTreeMap<String, Resource> {
        match self {
            Collection::Builds => &mut state.builds,
            Collection::BuildRuns => &mut state.build_runs,
            Collection::Secrets => &mut state.secrets,
        }
    }
}

pub async fn get_item(shared: Arc<Shared>, name: String, c: Collection) -> Response {
    c.of(&mut shared.lock()).get(&name).map(|r| Json(r.body.clone()).into_response()).unwrap_or_else(not_found)
}

pub async fn list_items(shared: Arc<Shared>, project_id: String, q: PageQuery, c: Collection) -> Response {
    let items = c.of(&mut shared.lock()).values().map(|r| r.body.clone()).collect();
    page(&shared, &format!("/v2/projects/{project_id}/{}", c.key()), c.key(), items, &q)
}

pub async fn delete_item(shared: Arc<Shared>, name: String, c: Collection) -> Response {
    let removed = c.of(&mut shared.lock()).remove(&name);
    match removed {
        Some(_) => StatusCode::ACCEPTED.into_response(),
        None => not_found(),
    }
}

/// A build's (or inline build run's) configuration with defaults, or a 400.
fn build_spec(body: &Value) -> Result<Value, CeError> {
    let mut spec = json!({"source_type": "git", "source_revision": "", "source_context_dir": "", "strategy_spec_file": "Dockerfile",
                          "strategy_size": "medium", "timeout": 600, "run_build_params": []});
    for (k, v) in body.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    for required in ["output_image", "output_secret", "strategy_type"] {
        if spec[required].as_str().is_none_or(str::is_empty) {
            return Err(CeError::invalid(format!("'{required}' is required.")));
        }
    }
    if !matches!(spec["strategy_type"].as_str(), Some("dockerfile" | "buildpacks")) {
        return Err(CeError::invalid("'strategy_type' must be dockerfile or buildpacks."));
    }
    if spec["source_type"] == "git"
        && spec["source_url"]
            .as_str()
            .is_none_or(|u| !(u.starts_with("https://") || u.starts_with("git@") || u.starts_with("ssh://")))
    {
        return Err(CeError::invalid("'source_url' must be an https or ssh git URL."));
    }
    if !spec["timeout"].as_i64().is_some_and(|t| (1..=3600).contains(&t)) {
        return Err(CeError::invalid("'timeout' must be 1-3600 seconds."));
    }
    if !matches!(spec["strategy_size"].as_str(), Some("small" | "medium" | "large" | "xlarge" | "xxlarge")) {
        return Err(CeError::invalid("'strategy_size' must be small, medium, large, xlarge or xxlarge."));
    }
    Ok(spec)
}

pub async fn create_build(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if !validate::build_name(&name) {
        return bad(format!("'name' must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, not '{name}'."));
    }
    let mut build = match build_spec(&body) {
        Ok(spec) => spec,
        Err(e) => return e.into_response(),
    };
    if shared.lock().builds.contains_key(&name) {
        return ce_error(StatusCode::CONFLICT, "conflict", &format!("A build named '{name}' already exists."));
    }
    build["name"] = name.clone().into();
    build["id"] = uuid::Uuid::new_v4().to_string().into();
    build["project_id"] = project_id.into();
    build["resource_type"] = "build_v2".into();
    build["created_at"] = now().into();
    build["entity_tag"] = shared.next_etag().into();
    build["status"] = "ready".into();
    build["status_details"] = json!({"reason": "registered"});
    shared.lock().builds.insert(name, Resource { body: build.clone(), polls_left: 0, failure: None });
    (StatusCode::CREATED, Json(build)).into_response()
}

pub async fn create_run(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let (build_name, spec) = match body["build_name"].as_str() {
        Some(build) => match shared.lock().builds.get(build) {
            Some(b) => (build.to_string(), b.body.clone()),
            None => return ce_error(StatusCode::NOT_FOUND, "build_not_found", &format!("Build '{build}' not found.")),
        },
        None => match build_spec(&body) {
            Ok(spec) => (String::new(), spec),
            Err(e) => return e.into_response(),
        },
    };
    let name = match body["name"].as_str() {
        Some(n) if validate::build_name(n) => n.to_string(),
        Some(n) => return bad(format!("'name' must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, not '{n}'.")),
        None => format!(
            "{}-run-{}",
            if build_name.is_empty() { "build" } else { &build_name },
            chrono::Utc::now().format("%y%m%d-%H%M%S")
        ),
    };
    if shared.lock().build_runs.contains_key(&name) {
        return ce_error(StatusCode::CONFLICT, "conflict", &format!("A build run named '{name}' already exists."));
    }
    let failing = spec["source_url"].as_str().is_some_and(|u| u.contains(&shared.config.bad_marker));
    let run = json!({
        "name": name, "id": uuid::Uuid::new_v4().to_string(), "project_id": project_id, "build_name": build_name,
        "resource_type": "build_run_v2", "service_account": "default", "created_at": now(), "status": "pending",
        "source_url": spec["source_url"], "source_revision": spec["source_revision"], "output_image": spec["output_image"],
        "output_secret": spec["output_secret"], "strategy_type": spec["strategy_type"], "timeout": spec["timeout"],
        "status_details": {"reason": "pending"},
    });
    let failure = failing.then(|| "failed".to_string());
    let polls_left = shared.config.polls_until_ready;
    shared.lock().build_runs.insert(name, Resource { body: run.clone(), polls_left, failure });
    (StatusCode::ACCEPTED, Json(run)).into_response()
}

/// A GET moves a build run along: pending → running → succeeded | failed.
pub async fn get_run(State(shared): State<Arc<Shared>>, Path((_, name)): Path<(String, String)>) -> Response {
    let produced = advance_run(&shared, &name);
    if let (Some(output), Some(source)) = (produced, &shared.config.build_produces) {
        crate::docker::tag(source, &output).await;
    }
    shared.lock().build_runs.get(&name).map(|r| Json(r.body.clone()).into_response()).unwrap_or_else(not_found)
}

/// Moves a run one step; the output image when it just succeeded.
fn advance_run(shared: &Shared, name: &str) -> Option<String> {
    let mut state = shared.lock();
    let run = state.build_runs.get_mut(name)?;
    match run.body["status"].as_str() {
        Some("pending") => {
            run.body["status"] = "running".into();
            run.body["status_details"] = json!({"reason": "running", "start_time": now()});
        }
        Some("running") => {
            run.polls_left = run.polls_left.saturating_sub(1);
            if run.polls_left == 0 {
                let details = &mut run.body["status_details"];
                details["completion_time"] = now().into();
                match &run.failure {
                    Some(reason) => {
                        run.body["status"] = "failed".into();
                        run.body["status_details"]["reason"] = reason.clone().into();
                    }
                    None => {
                        details["reason"] = "succeeded".into();
                        let hex = || format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                        details["output_digest"] = format!("sha256:{}", hex()).into();
                        details["git_commit_sha"] = hex()[..40].into();
                        run.body["status"] = "succeeded".into();
                        return run.body["output_image"].as_str().map(String::from);
                    }
                }
            }
        }
        _ => {}
    }
    None
}

const SECRET_FORMATS: &[&str] = &[
    "generic",
    "registry",
    "ssh_auth",
    "tls",
    "basic_auth",
    "hmac_auth",
    "other",
    "service_access",
    "service_operator",
];

pub async fn create_secret(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if !validate::secret_name(&name) {
        return bad(format!("'name' must be a DNS subdomain of at most 253 characters, not '{name}'."));
    }
    let format = body["format"].as_str().unwrap_or_default();
    if !SECRET_FORMATS.contains(&format) {
        return bad(format!("'format' must be one of {SECRET_FORMATS:?}."));
    }
    if format == "registry" && ["server", "username", "password"].iter().any(|k| body["data"][k].as_str().is_none()) {
        return bad("A registry secret's 'data' needs server, username and password.".into());
    }
    if shared.lock().secrets.contains_key(&name) {
        return ce_error(StatusCode::CONFLICT, "conflict", &format!("A secret named '{name}' already exists."));
    }
    let secret = json!({"name": name, "id": uuid::Uuid::new_v4().to_string(), "project_id": project_id, "format": format,
                        "data": body["data"], "generated_by": "user", "resource_type": format!("secret_{format}_v2"),
                        "created_at": now(), "entity_tag": shared.next_etag()});
    shared.lock().secrets.insert(name, Resource { body: secret.clone(), polls_left: 0, failure: None });
    (StatusCode::CREATED, Json(secret)).into_response()
}
