//! The store's one error type, and what redb's errors become: a write the
//! disk had no room for is `NoSpace` wherever redb met it.

use super::space;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("store schema version {found} is newer than this build's {supported}")]
    SchemaTooNew { found: u64, supported: u64 },
    #[error("store: {0}")]
    Db(String),
    #[error("store migration to version {to} cannot read record '{key}': {reason}")]
    Migration { to: u64, key: String, reason: String },
    #[error("store record is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "the store {path} is damaged: {why}. `mcp-runtime store check` reports what redb finds; \
             `mcp-runtime store check --repair` repairs what it can (back the file up first)"
    )]
    Damaged { path: String, why: String },
    #[error("the store {path} is open in another process (a running host): stop it first")]
    InUse { path: String },
    /// The data directory cannot take a write (`space`).
    #[error("{0}")]
    NoSpace(String),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_errors!(redb::TableError);

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::Storage(e) => e.into(),
            e => StoreError::Db(e.to_string()),
        }
    }
}

/// A write the disk had no room for says so (and answers 507), whatever redb met it in.
impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) if space::is_full(&io) => StoreError::NoSpace(format!("the disk is full: {io}")),
            e => StoreError::Db(e.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(e) => e.into(),
            e => StoreError::Db(e.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(e) => e.into(),
            e => StoreError::Db(e.to_string()),
        }
    }
}
