//! IBM Cloud Monitoring's Prometheus-compatible query API
//! (`GET /prometheus/api/v1/query?query=<PromQL>`, with the IAM token and an
//! `IBMInstanceID` header naming the instance), answering the Code Engine
//! platform metrics a query names for one app: `sum(<metric>{
//! ibm_codeengine_application_name="<app>"})`. Instances count the running
//! app's (one while it is ready); requests are what a test set.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::Shared;

const METRICS: &[&str] = &["ibm_codeengine_application_actual_instances", "ibm_codeengine_application_requests_total"];

#[derive(Deserialize)]
pub struct PromQuery {
    query: String,
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"status": "error", "errorType": kind, "error": message}))).into_response()
}

pub async fn query(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Query<PromQuery>) -> Response {
    let instance = headers.get("ibminstanceid").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if instance != shared.config.monitoring_instance_id {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "IBMInstanceID does not name an instance you may read");
    }
    let Some(metric) = METRICS.iter().find(|m| q.query.contains(&format!("{m}{{"))) else {
        // A metric Code Engine does not send: an empty vector, as Prometheus answers.
        return Json(json!({"status": "success", "data": {"resultType": "vector", "result": []}})).into_response();
    };
    let Some(app) = q.query.split("ibm_codeengine_application_name=\"").nth(1).and_then(|rest| rest.split('"').next())
    else {
        return error(StatusCode::BAD_REQUEST, "bad_data", "the fake answers per application only");
    };
    let value = {
        let state = shared.lock();
        match (state.apps.get(app), *metric) {
            (None, _) => None,
            (Some(a), "ibm_codeengine_application_actual_instances") => Some(u64::from(a.body["status"] == "ready")),
            (Some(a), _) => Some(a.body["x_fake_requests"].as_u64().unwrap_or(0)),
        }
    };
    let result: Vec<serde_json::Value> = value
        .map(|v| json!({"metric": {}, "value": [chrono::Utc::now().timestamp(), v.to_string()]}))
        .into_iter()
        .collect();
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}})).into_response()
}
