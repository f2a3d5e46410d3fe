//! One error type for the API: every module's error becomes an HTTP answer
//! here, always with a JSON body (`{"error": …}`, plus `field` when one input
//! is at fault).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::approvals::ApprovalError;
use crate::auth::authz::Forbidden;
use crate::auth::AuthError;
use crate::catalog::{CatalogError, CatalogServiceError};
use crate::deployments::RuntimeError;
use crate::guardrails::GuardrailError;
use crate::plugins::PluginError;
use crate::profiles::ProfileError;
use crate::store::StoreError;

/// Every error's body, as the OpenAPI document describes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// The input at fault (`resources.cpu`, `tail`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The plugin that failed, when one did (502).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

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
    /// The data directory cannot take the write (507): reads go on.
    InsufficientStorage(String),
    /// A stateless MCP request whose headers contradict its body: answered as
    /// JSON-RPC, since an MCP client reads it.
    McpHeaders {
        id: Option<serde_json::Value>,
        reason: String,
    },
    /// A service the host asked on the caller's behalf (a package index)
    /// could not be reached; names the field that needed it.
    UpstreamField {
        field: String,
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

impl ApiError {
    /// The HTTP status this error answers with (the admin UI shows it too).
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) | ApiError::McpHeaders { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Upstream { .. } | ApiError::UpstreamField { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person reads.
    pub fn message(&self) -> String {
        match self {
            ApiError::Malformed(e)
            | ApiError::Unauthorized(e)
            | ApiError::Forbidden(e)
            | ApiError::NotFound(e)
            | ApiError::MethodNotAllowed(e)
            | ApiError::Conflict(e)
            | ApiError::TooLarge(e)
            | ApiError::Unavailable(e)
            | ApiError::InsufficientStorage(e)
            | ApiError::Internal(e) => e.clone(),
            ApiError::Invalid { field, reason } | ApiError::UpstreamField { field, reason } => {
                format!("{field}: {reason}")
            }
            ApiError::McpHeaders { reason, .. } => reason.clone(),
            ApiError::Upstream { error, .. } => error.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Unauthorized(e) => {
                let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
                return (status, challenge, Json(json!({"error": e}))).into_response();
            }
            ApiError::Invalid { field, .. } | ApiError::UpstreamField { field, .. } => {
                json!({"error": self.message(), "field": field})
            }
            ApiError::McpHeaders { id, reason } => json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": crate::mcp::generation::HEADER_MISMATCH, "message": reason}}),
            ApiError::Upstream { error, plugin } => json!({"error": error, "plugin": plugin}),
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e}");
                json!({"error": e})
            }
            _ => json!({"error": self.message()}),
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
            StoreError::NoSpace(why) => ApiError::InsufficientStorage(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::backup::BackupError> for ApiError {
    fn from(e: crate::backup::BackupError) -> Self {
        match e {
            crate::backup::BackupError::Store(e) => e.into(),
            crate::backup::BackupError::Io { path, error } if crate::store::space::is_full(&error) => {
                ApiError::InsufficientStorage(format!("no room to stage the backup: {path}: {error}"))
            }
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(CatalogError::Invalid { field, reason }: CatalogError) -> Self {
        ApiError::Invalid { field, reason }
    }
}

/// The services' errors map to HTTP once, through the deployments service's
/// error (which the same services' errors reach it as).
impl From<CatalogServiceError> for ApiError {
    fn from(e: CatalogServiceError) -> Self {
        RuntimeError::from(e).into()
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        RuntimeError::from(e).into()
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        RuntimeError::from(e).into()
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
            U::Io(e) if crate::store::space::is_full(&e) => ApiError::InsufficientStorage(e.to_string()),
            U::Io(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::remote_catalogs::ImportError> for ApiError {
    fn from(e: crate::remote_catalogs::ImportError) -> Self {
        use crate::remote_catalogs::ImportError as I;
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
            RuntimeError::IndexUnavailable { field, reason } => ApiError::UpstreamField { field, reason },
            RuntimeError::Plugin(e) => e.into(),
            RuntimeError::Store(e) => e.into(),
        }
    }
}
