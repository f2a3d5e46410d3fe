//! IBM Cloud Logs' synchronous query (`POST /v1/query`), as IBM's logs SDK
//! speaks it: a JSON `{query, metadata}` in, a server-sent event stream out
//! (`: success`, a `query_id` event, then `result.results[]` whose `user_data`
//! is the log record as a JSON string). Enough for Code Engine app logs: the
//! query names the app as `codeengine.component:"<app>"`, and the records are
//! the app container's real output when the fake runs apps on Docker.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::CeError;
use crate::Shared;

const SYNTAXES: &[&str] = &["lucene", "dataprime", "unspecified", "lucene_utf8_base64", "dataprime_utf8_base64"];

pub async fn query(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or_default();
    if query.is_empty() || query.len() > 4096 {
        return CeError::invalid("'query' is required, at most 4096 characters.").into_response();
    }
    let syntax = body["metadata"]["syntax"].as_str().unwrap_or("dataprime");
    if !SYNTAXES.contains(&syntax) {
        return CeError::invalid(format!("'metadata.syntax' must be one of {SYNTAXES:?}.")).into_response();
    }
    let limit = body["metadata"]["limit"].as_u64().unwrap_or(2000).clamp(1, 50_000);
    let app = query.split("codeengine.component:\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    let container = shared.lock().apps.get(app).and_then(|a| a.body["x_fake_container"].as_str().map(String::from));
    let lines = match container {
        Some(c) => crate::docker::logs(&c, limit).await,
        None => Vec::new(),
    };
    let results: Vec<Value> = lines
        .iter()
        .map(|line| {
            let record = json!({"message": line, "app": "codeengine", "codeengine": {"component": app}});
            json!({"metadata": [{"key": "severity", "value": "Info"}],
                   "labels": [{"key": "applicationname", "value": "codeengine"}, {"key": "subsystemname", "value": app}],
                   "user_data": record.to_string()})
        })
        .collect();
    let id = json!({"query_id": {"query_id": uuid::Uuid::new_v4().to_string()}});
    let result = json!({"result": {"results": results}});
    let stream = format!(": success\n\ndata: {id}\n\ndata: {result}\n\n");
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/event-stream")], stream).into_response()
}
