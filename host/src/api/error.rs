//! One error type for the API: every module's error becomes an HTTP answer
//! here, always with a JSON body (`{"error": …}`, plus `field` when one input
//! is at fault).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::authz::Forbidden;
use crate::auth::AuthError;
use crate::catalog::CatalogError;
use crate::deployments::RuntimeError;
use crate::guardrails::GuardrailError;
use crate::plugins::PluginError;
use crate::store::StoreError;

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
    MethodNotAllowed(String),
    Conflict(String),
    TooLarge(String),
    Unavailable(String),
    /// A stateless MCP request whose headers contradict its body: answered as
    /// JSON-RPC, since an MCP client reads it.
    McpHeaders {
        id: Option<serde_json::Value>,
        reason: String,
    },
    /// A plugin or backend failed.
    Upstream {
        error: String,
        plugin: Option<String>,
    },
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

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
            ApiError::MethodNotAllowed(e) => (StatusCode::METHOD_NOT_ALLOWED, json!({"error": e})),
            ApiError::Conflict(e) => (StatusCode::CONFLICT, json!({"error": e})),
            ApiError::TooLarge(e) => (StatusCode::PAYLOAD_TOO_LARGE, json!({"error": e})),
            ApiError::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": e})),
            ApiError::McpHeaders { id, reason } => (
                StatusCode::BAD_REQUEST,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": crate::mcp::generation::HEADER_MISMATCH,
                       "message": reason}}),
            ),
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

impl From<crate::plugins::UploadError> for ApiError {
    fn from(e: crate::plugins::UploadError) -> Self {
        use crate::plugins::UploadError as U;
        match e {
            U::Invalid { field, reason } => ApiError::Invalid { field, reason },
            U::Conflict(e) => ApiError::Conflict(e),
            U::NotFound(e) => ApiError::NotFound(e),
            U::Store(e) => e.into(),
            U::Io(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::catalog_sources::ImportError> for ApiError {
    fn from(e: crate::catalog_sources::ImportError) -> Self {
        use crate::catalog_sources::ImportError as I;
        match e {
            I::Invalid { field, reason } => ApiError::Invalid { field, reason },
            // The remote catalog, not this host, failed: as a gateway would say.
            I::Unreachable(e) => ApiError::Unavailable(e),
            I::Store(e) => e.into(),
        }
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
