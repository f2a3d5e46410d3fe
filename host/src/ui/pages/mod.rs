//! One file per page, each saying which routes it serves.

mod approvals;
mod catalog;
mod catalog_manage;
mod deploy;
mod guardrails;
mod logs;
mod runtimes;
mod settings;

use axum::Router;
use std::sync::Arc;

use super::UiState;

pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .merge(catalog::routes())
        .merge(catalog_manage::routes())
        .merge(deploy::routes())
        .merge(runtimes::routes())
        .merge(logs::routes())
        .merge(approvals::routes())
        .merge(settings::routes())
        .merge(guardrails::routes())
}
