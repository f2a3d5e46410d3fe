//! Projects (read-only: the fake has one), apps and their instances.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

use crate::http::{ce_error, now, page, CeError, PageQuery};
use crate::{validate, Resource, Shared};

/// Every field an app may be created with, and its default.
fn app_defaults() -> Map<String, Value> {
    let defaults = json!({
        "image_port": 8080,
        "managed_domain_mappings": "local_public",
        "run_commands": [],
        "run_arguments": [],
        "run_env_variables": [],
        "run_as_user": 0,
        "run_service_account": "default",
        "run_volume_mounts": [],
        "run_compute_resource_token_enabled": false,
        "scale_cpu_limit": "1",
        "scale_memory_limit": "4G",
        "scale_ephemeral_storage_limit": "400M",
        "scale_min_instances": 0,
        "scale_max_instances": 10,
        "scale_initial_instances": 1,
        "scale_concurrency": 100,
        "scale_request_timeout": 300,
        "scale_down_delay": 0,
        "probe_readiness": {"type": "tcp", "port": 0, "interval": 10, "timeout": 1, "failure_threshold": 1},
    });
    let Value::Object(map) = defaults else { unreachable!("a JSON object literal") };
    map
}

const OPTIONAL_FIELDS: &[&str] = &["image_secret", "probe_liveness", "scale_concurrency_target"];

fn bad(message: String) -> Response {
    CeError::invalid(message).into_response()
}

/// The app's configuration with defaults filled in, or a 400 naming the field.
fn configure(body: &Value) -> Result<Map<String, Value>, CeError> {
    let Value::Object(given) = body else { return Err(CeError::invalid("The body must be a JSON object.")) };
    let mut config = app_defaults();
    for (key, value) in given {
        if key != "name"
            && key != "image_reference"
            && !config.contains_key(key)
            && !OPTIONAL_FIELDS.contains(&key.as_str())
        {
            return Err(CeError::invalid(format!("Unknown field '{key}'.")));
        }
        config.insert(key.clone(), value.clone());
    }
    let int = |key: &str, range: std::ops::RangeInclusive<i64>| -> Result<(), CeError> {
        match config.get(key).and_then(Value::as_i64) {
            Some(n) if range.contains(&n) => Ok(()),
            _ => Err(CeError::invalid(format!("'{key}' must be an integer in {range:?}."))),
        }
    };
    let image = config.get("image_reference").and_then(Value::as_str).unwrap_or_default();
    if image.is_empty() || image.len() > 256 || image.contains(char::is_whitespace) {
        return Err(CeError::invalid(
            "'image_reference' is required: [REGISTRY/]NAMESPACE/REPO[:TAG][@sha256:...], at most 256 characters.",
        ));
    }
    int("image_port", 0..=65535)?;
    int("scale_min_instances", 0..=250)?;
    int("scale_max_instances", 0..=250)?;
    int("scale_concurrency", 1..=1000)?;
    int("scale_request_timeout", 1..=600)?;
    int("scale_down_delay", 0..=3600)?;
    let domain = config["managed_domain_mappings"].as_str().unwrap_or_default();
    if !["local_public", "local_private", "local"].contains(&domain) {
        return Err(CeError::invalid(format!(
            "'managed_domain_mappings' must be local_public, local_private or local, not '{domain}'."
        )));
    }
    let (cpu, memory) = (
        config["scale_cpu_limit"].as_str().unwrap_or_default(),
        config["scale_memory_limit"].as_str().unwrap_or_default(),
    );
    if !validate::valid_pair(cpu, memory) {
        return Err(CeError::invalid(format!(
            "'scale_cpu_limit' {cpu} with 'scale_memory_limit' {memory} is not a valid combination."
        )));
    }
    for key in ["run_commands", "run_arguments"] {
        if !config[key].as_array().is_some_and(|items| items.iter().all(Value::is_string)) {
            return Err(CeError::invalid(format!("'{key}' must be a list of strings.")));
        }
    }
    for (i, var) in config["run_env_variables"].as_array().cloned().unwrap_or_default().iter().enumerate() {
        let kind = var["type"].as_str().unwrap_or("literal");
        let known = [
            "literal",
            "secret_key_reference",
            "config_map_key_reference",
            "secret_full_reference",
            "config_map_full_reference",
        ];
        if !known.contains(&kind) || (kind == "literal" && var["name"].as_str().is_none_or(str::is_empty)) {
            return Err(CeError::invalid(format!("'run_env_variables[{i}]' is not a valid environment variable.")));
        }
    }
    for probe in ["probe_readiness", "probe_liveness"] {
        if let Some(p) = config.get(probe) {
            if !matches!(p["type"].as_str(), Some("tcp" | "http")) {
                return Err(CeError::invalid(format!("'{probe}.type' must be tcp or http.")));
            }
        }
    }
    Ok(config)
}

fn endpoints(shared: &Shared, name: &str, domain: &str) -> (String, String) {
    let (sub, region) = (&shared.subdomain, &shared.config.region);
    let endpoint = match domain {
        "local_public" => format!("https://{name}.{sub}.{region}.codeengine.appdomain.cloud"),
        "local_private" => format!("https://{name}.{sub}.private.{region}.codeengine.appdomain.cloud"),
        _ => String::new(),
    };
    (endpoint, format!("http://{name}.{sub}.svc.cluster.local"))
}

fn with_etag(body: &Value) -> Response {
    let etag = body["entity_tag"].as_str().unwrap_or_default().to_string();
    ([(header::ETAG, etag)], Json(body.clone())).into_response()
}

fn app_path(shared: &Shared, name: &str) -> String {
    format!("/v2/projects/{}/apps/{name}", shared.config.project_id)
}

fn project_body(shared: &Shared) -> Value {
    let id = &shared.config.project_id;
    json!({"id": id, "name": "mcp-runtimes", "account_id": "fake-account", "region": shared.config.region,
           "crn": format!("crn:v1:bluemix:public:codeengine:{}:a/fake-account:{id}::", shared.config.region),
           "href": format!("{}/v2/projects/{id}", shared.base), "resource_group_id": "default",
           "resource_type": "project_v2", "created_at": "2026-01-01T00:00:00Z", "status": "active"})
}

pub async fn list_projects(State(shared): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    page(&shared, "/v2/projects", "projects", vec![project_body(&shared)], &q)
}

pub async fn get_project(State(shared): State<Arc<Shared>>, Path(project_id): Path<String>) -> Response {
    let _ = project_id; // checked by the project-scope middleware
    Json(project_body(&shared)).into_response()
}

pub async fn create(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if !validate::app_name(&name) {
        return bad(format!("'name' must match ^[a-z]([-a-z0-9]*[a-z0-9])?$ (1-63 characters), not '{name}'."));
    }
    let config = match configure(&body) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if shared.lock().apps.contains_key(&name) {
        return ce_error(StatusCode::CONFLICT, "conflict", &format!("An app named '{name}' already exists."));
    }
    let failure = config["image_reference"]
        .as_str()
        .filter(|i| i.contains(&shared.config.bad_marker))
        .map(|_| "no_revision_ready".to_string());
    let (endpoint, endpoint_internal) =
        endpoints(&shared, &name, config["managed_domain_mappings"].as_str().unwrap_or_default());
    let mut app = Value::Object(config);
    let extra = json!({
        "id": uuid::Uuid::new_v4().to_string(), "name": name, "project_id": project_id, "region": shared.config.region,
        "resource_type": "app_v2", "href": format!("{}{}", shared.base, app_path(&shared, &name)), "created_at": now(),
        "entity_tag": shared.next_etag(), "endpoint": endpoint, "endpoint_internal": endpoint_internal,
        "status": "deploying", "computed_env_variables": [{"type": "literal", "name": "CE_APP", "value": name}],
        "status_details": {"latest_created_revision": format!("{name}-00001"), "reason": "deploying"},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        app[k] = v.clone();
    }
    let mut failure = failure;
    if let (Some(runner), None) = (&shared.config.run_apps, &failure) {
        let container = format!("cefake-{}-{name}", shared.subdomain);
        match crate::docker::run(runner, &container, &app).await {
            Ok(address) => {
                app["x_fake_container"] = container.into();
                app["x_fake_address"] = address.into();
                app["endpoint"] = exposed(&app);
            }
            Err(_) => failure = Some("no_revision_ready".into()),
        }
    }
    let polls_left = shared.config.polls_until_ready;
    shared.lock().apps.insert(name, Resource { body: app.clone(), polls_left, failure });
    (StatusCode::CREATED, with_etag(&public(app))).into_response()
}

/// A GET moves a deploying app one poll closer to its outcome.
fn observe(shared: &Shared, name: &str) -> Option<Value> {
    let mut state = shared.lock();
    let app = state.apps.get_mut(name)?;
    if app.body["status"] == "deploying" {
        app.polls_left = app.polls_left.saturating_sub(1);
        if app.polls_left == 0 {
            let revision = app.body["status_details"]["latest_created_revision"].clone();
            let (status, reason) = match &app.failure {
                Some(reason) => ("failed", reason.clone()),
                None => ("ready", "ready".to_string()),
            };
            app.body["status"] = status.into();
            app.body["status_details"]["reason"] = reason.into();
            if status == "ready" {
                app.body["status_details"]["latest_ready_revision"] = revision;
            }
        }
    }
    Some(app.body.clone())
}

/// The app as the API shows it, without the fake's own bookkeeping.
fn public(mut app: Value) -> Value {
    if let Some(map) = app.as_object_mut() {
        map.retain(|k, _| !k.starts_with("x_fake_"));
    }
    app
}

/// With a Docker runner, a visible app's endpoint is its container's address.
fn exposed(app: &Value) -> Value {
    match app["managed_domain_mappings"].as_str() {
        Some("local") => "".into(),
        _ => app["x_fake_address"].clone(),
    }
}

pub async fn get(State(shared): State<Arc<Shared>>, Path((_, name)): Path<(String, String)>) -> Response {
    match observe(&shared, &name) {
        Some(app) => with_etag(&public(app)),
        None => ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found."),
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let apps: Vec<Value> = shared.lock().apps.values().map(|a| public(a.body.clone())).collect();
    page(&shared, &format!("/v2/projects/{project_id}/apps"), "apps", apps, &q)
}

pub async fn patch(
    State(shared): State<Arc<Shared>>,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/merge-patch+json") {
        return ce_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Use Content-Type: application/merge-patch+json.",
        );
    }
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return ce_error(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "The If-Match header is required.",
        );
    };
    let Ok(Value::Object(patch)) = serde_json::from_str::<Value>(&body) else {
        return bad("The body must be a JSON object.".into());
    };
    if patch.contains_key("name") {
        return bad("'name' cannot be changed.".into());
    }
    let Some(current) = shared.lock().apps.get(&name).map(|a| a.body.clone()) else {
        return ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found.");
    };
    if if_match != "*" && if_match.trim_matches('"') != current["entity_tag"] {
        return ce_error(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "If-Match does not match the current entity tag.",
        );
    }
    // Merge into the creatable fields only, then validate like a create.
    let creatable = app_defaults().into_iter().map(|(k, _)| k).chain(OPTIONAL_FIELDS.iter().map(|k| k.to_string()));
    let mut merged: Map<String, Value> = creatable
        .chain(["image_reference".to_string()])
        .filter_map(|k| Some((k.clone(), current.get(&k)?.clone())))
        .collect();
    for (k, v) in patch {
        match v {
            Value::Null => {
                merged.remove(&k);
            }
            v => {
                merged.insert(k, v);
            }
        }
    }
    let config = match configure(&Value::Object(merged)) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let etag = shared.next_etag();
    let mut state = shared.lock();
    let Some(app) = state.apps.get_mut(&name) else {
        return ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found.");
    };
    let changed = config.iter().any(|(k, v)| app.body.get(k) != Some(v));
    for (k, v) in config {
        app.body[k.as_str()] = v;
    }
    if app.body.get("x_fake_address").is_some() {
        app.body["endpoint"] = exposed(&app.body);
    } else {
        let domain = app.body["managed_domain_mappings"].as_str().unwrap_or_default().to_string();
        app.body["endpoint"] = endpoints(&shared, &name, &domain).0.into();
    }
    if changed {
        let revision: u32 = app.body["status_details"]["latest_created_revision"]
            .as_str()
            .and_then(|r| r.rsplit('-').next()?.parse().ok())
            .unwrap_or(1);
        app.body["status_details"]["latest_created_revision"] = format!("{name}-{:05}", revision + 1).into();
        app.body["status"] = "deploying".into();
        app.body["status_details"]["reason"] = "deploying".into();
        app.body["entity_tag"] = etag.into();
        app.polls_left = shared.config.polls_until_ready;
        app.failure = app.body["image_reference"]
            .as_str()
            .filter(|i| i.contains(&shared.config.bad_marker))
            .map(|_| "no_revision_ready".into());
    }
    with_etag(&public(app.body.clone()))
}

pub async fn delete(State(shared): State<Arc<Shared>>, Path((_, name)): Path<(String, String)>) -> Response {
    let removed = shared.lock().apps.remove(&name);
    match removed {
        Some(app) => {
            if let Some(container) = app.body["x_fake_container"].as_str() {
                crate::docker::remove(container).await;
            }
            StatusCode::ACCEPTED.into_response()
        }
        None => ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found."),
    }
}

pub async fn instances(
    State(shared): State<Arc<Shared>>,
    Path((project_id, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(app) = shared.lock().apps.get(&name).map(|a| a.body.clone()) else {
        return ce_error(StatusCode::NOT_FOUND, "resource_not_found", "Resource not found.");
    };
    let revision = app["status_details"]["latest_created_revision"].as_str().unwrap_or_default().to_string();
    let (status, container) = match app["status"].as_str() {
        Some("ready") => ("running", json!({"container_status": "running", "started_at": app["created_at"]})),
        Some("failed") => {
            ("failed", json!({"container_status": "pending", "reason": "fetch_image_failed_unknown_repository"}))
        }
        _ => ("pending", json!({"container_status": "pending", "reason": "creating"})),
    };
    let instance = json!({
        "id": uuid::Uuid::new_v4().to_string(), "name": format!("{revision}-deployment-6c9b5cf966-wjs44"),
        "app_name": name, "revision_name": revision, "project_id": project_id, "region": shared.config.region,
        "resource_type": "app_instance_v2", "href": format!("{}{}/instances", shared.base, app_path(&shared, &name)),
        "created_at": app["created_at"], "scale_cpu_limit": app["scale_cpu_limit"], "scale_memory_limit": app["scale_memory_limit"],
        "scale_ephemeral_storage_limit": app["scale_ephemeral_storage_limit"], "status": status,
        "status_details": {"restarts": app.get("x_fake_restarts").cloned().unwrap_or(json!(0)),
                           "user_container": {"current_state": container.clone(), "last_observed_state": container},
                           "system_container": {"current_state": {"container_status": "running"}}},
    });
    page(&shared, &format!("{}/instances", app_path(&shared, &name)), "instances", vec![instance], &q)
}
