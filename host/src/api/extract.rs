//! What a handler takes from a request, in the order that protects the
//! service: first who is calling and whether they may (`Caller`), only then
//! their input (`QueryParams`, `JsonBody`), whose errors name the field at
//! fault. A caller without the right learns nothing about the schema.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

use super::error::{ApiError, ApiResult};
use crate::auth::authz::{authorize, Permission};
use crate::auth::Principal;

/// The authenticated caller, already authorized for `P`.
pub struct Caller<P>(pub Principal, pub PhantomData<P>);

impl<P: Permission, S: Send + Sync> FromRequestParts<S> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("no credentials".into()))?;
        if let Some(action) = P::ACTION {
            authorize(&principal, &action)?;
        }
        Ok(Caller(principal, PhantomData))
    }
}

/// A query string whose errors name the parameter at fault (`tail`).
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(QueryParams)
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> ApiResult<T> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let reason = e.into_inner().to_string();
        let field = if field == "." { named_field(&reason).unwrap_or(field) } else { field };
        ApiError::Invalid { field, reason }
    })
}

/// A JSON body whose errors name the field at fault (`resources.cpu`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + utoipa::ToSchema, S: Send + Sync> FromRequest<S> for JsonBody<T> {
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
        let bytes = body_bytes(req, state).await?;
        let body = parse_json(&bytes)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(field) = super::openapi::misplaced_array::<T>(&value) {
            let field = if field.is_empty() { "body".into() } else { field };
            return Err(ApiError::Invalid { field, reason: "an object is expected, not an array".into() });
        }
        Ok(JsonBody(body))
    }
}

/// A catalog entry's JSON body, with what depends on its source filled in
/// (`catalog::read_entry`); mistakes named as `JsonBody` names them.
pub struct EntryBody(pub crate::catalog::CatalogEntry);

impl<S: Send + Sync> FromRequest<S> for EntryBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::Invalid { field: "body".into(), reason: "a catalog entry is an object".into() });
        }
        crate::catalog::read_entry(value).map(EntryBody).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let field = if field == "." { named_field(&inner.to_string()).unwrap_or(field) } else { field };
            ApiError::Invalid { field, reason: inner.to_string() }
        })
    }
}

/// The whole body, within the configured limit.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(format!("request body too large: {}", e.body_text())),
        _ => ApiError::Malformed(e.body_text()),
    })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
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
