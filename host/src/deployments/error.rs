//! What can go wrong with a deployment operation; the API maps each kind to one HTTP answer.

use crate::backends::BackendsError;
use crate::contract::backend::BackendError;
use crate::plugins::PluginError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("backend: {0}")]
    Backend(String),
    /// A package index could not answer for the field.
    #[error("{field}: {reason}")]
    IndexUnavailable { field: String, reason: String },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) fn invalid(field: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid { field: field.into(), reason: reason.into() }
}

impl From<crate::catalog::CatalogServiceError> for RuntimeError {
    fn from(e: crate::catalog::CatalogServiceError) -> Self {
        use crate::catalog::{CatalogError, CatalogServiceError};
        match e {
            CatalogServiceError::Invalid(CatalogError::Invalid { field, reason }) => invalid(&field, reason),
            CatalogServiceError::CustomEntriesDisabled => RuntimeError::Conflict(e.to_string()),
            CatalogServiceError::NotFound(what) => RuntimeError::NotFound(format!("catalog entry '{what}'")),
            CatalogServiceError::Store(e) => RuntimeError::Store(e),
            CatalogServiceError::Package(crate::packages::PackageError::Invalid { field, reason }) => {
                invalid(&field, reason)
            }
            CatalogServiceError::Package(crate::packages::PackageError::IndexUnavailable { field, reason }) => {
                RuntimeError::IndexUnavailable { field, reason }
            }
        }
    }
}

impl From<crate::approvals::ApprovalError> for RuntimeError {
    fn from(e: crate::approvals::ApprovalError) -> Self {
        use crate::approvals::ApprovalError;
        match e {
            ApprovalError::NotFound(what) => RuntimeError::NotFound(format!("approval '{what}'")),
            ApprovalError::Forbidden(why) => RuntimeError::Forbidden(why),
            ApprovalError::Conflict(why) => RuntimeError::Conflict(why),
            ApprovalError::Rule { .. } => RuntimeError::Backend(e.to_string()),
            ApprovalError::Plugin(e) => RuntimeError::Plugin(e),
            ApprovalError::Store(e) => RuntimeError::Store(e),
        }
    }
}

impl From<crate::profiles::ProfileError> for RuntimeError {
    fn from(e: crate::profiles::ProfileError) -> Self {
        use crate::guardrails::GuardrailError;
        use crate::profiles::ProfileError;
        match e {
            ProfileError::Invalid(GuardrailError::Invalid { field, reason }) => invalid(&field, reason),
            ProfileError::NotFound(what) => RuntimeError::NotFound(format!("guardrails profile '{what}'")),
            ProfileError::InUse(why) => RuntimeError::Conflict(why),
            ProfileError::Store(e) => RuntimeError::Store(e),
        }
    }
}

impl From<BackendsError> for RuntimeError {
    fn from(e: BackendsError) -> Self {
        match e {
            BackendsError::Unknown(_) => invalid("backend", e.to_string()),
            BackendsError::Unavailable { .. } => RuntimeError::Unavailable(e.to_string()),
            BackendsError::MissingPlugin { .. } => RuntimeError::NotFound(e.to_string()),
            BackendsError::Plugin(e) => RuntimeError::Plugin(e),
        }
    }
}

impl From<BackendError> for RuntimeError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Invalid(d) => RuntimeError::Invalid { field: d.field, reason: d.reason },
            BackendError::NotFound(m) => RuntimeError::Backend(format!("not found: {m}")),
            BackendError::Unavailable(m) => RuntimeError::Unavailable(m),
            BackendError::Failed(m) => RuntimeError::Backend(m),
        }
    }
}
