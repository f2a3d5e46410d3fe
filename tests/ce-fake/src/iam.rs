//! `POST /identity/token`: the API-key grant, with IAM's own error shape.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::Shared;

const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";

pub async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("grant_type").map(String::as_str) != Some(APIKEY_GRANT) {
        let body =
            json!({"errorCode": "BXNIM0109E", "errorMessage": "Property missing or empty: grant_type", "context": {}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let key = form.get("apikey").cloned().unwrap_or_default();
    if !shared.config.api_keys.contains(&key) {
        let body = json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                          "context": {"requestId": uuid::Uuid::new_v4().to_string()}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let ttl = shared.config.token_ttl;
    let access_token = format!("fake-iam-{}", uuid::Uuid::new_v4().simple());
    shared.lock().tokens.insert(access_token.clone(), Instant::now() + ttl);
    let expiration = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
    Json(json!({
        "access_token": access_token,
        "refresh_token": "not-used",
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "expiration": expiration,
        "scope": "ibm openid",
    }))
    .into_response()
}
