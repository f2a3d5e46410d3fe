//! `/catalog/{slug}/registration`: a remote entry in the gateway. Marking it
//! (`PUT`) or unmarking it (`DELETE`) is a change to the entry, kept in its
//! history like any other; the gateway sync does the registering.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::audit;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::catalog::{history, CatalogEntry};
use crate::events::EventKind;
use crate::gateway::{remote, GatewaySync};
use crate::store::{Presence, Table};

pub fn routes() -> Router<AppState> {
    Router::new().route("/catalog/{slug}/registration", get(show).put(register).delete(withdraw))
}

fn entry(rt: &AppState, slug: &str) -> ApiResult<CatalogEntry> {
    rt.store.get(Table::Catalog, slug)?.ok_or_else(|| ApiError::NotFound(format!("catalog entry '{slug}' not found")))
}

/// Whether the entry is marked, and its registration as the sync left it.
fn view(rt: &AppState, entry: &CatalogEntry) -> Value {
    let registration = GatewaySync::registration(&rt.store, &remote::key(&entry.slug));
    json!({
        "slug": entry.slug,
        "register_with_gateway": entry.register_with_gateway,
        "registration": registration.map(|r| r.public_view()),
    })
}

async fn show(State(rt): State<AppState>, _: Caller<may::Read>, Path(slug): Path<String>) -> ApiResult<Json<Value>> {
    let entry = entry(&rt, &slug)?;
    Ok(Json(view(&rt, &entry)))
}

async fn register(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if rt.config.gateway.is_none() {
        return Err(ApiError::Conflict("no gateway is configured (runtime.gateway) to register with".into()));
    }
    mark(rt, caller, slug, true).await
}

async fn withdraw(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    mark(rt, caller, slug, false).await
}

/// Sets the entry's mark; 202 when it changed (the sync follows), 200 when it already was.
async fn mark(
    rt: AppState,
    caller: crate::auth::Principal,
    slug: String,
    register: bool,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut entry = entry(&rt, &slug)?;
    if entry.register_with_gateway == register {
        return Ok((StatusCode::OK, Json(view(&rt, &entry))));
    }
    entry.register_with_gateway = register;
    super::catalog::check_entry(&rt, &entry)?;
    let event = audit(EventKind::CatalogUpdated, format!("catalog/{slug}"), json!(entry), &caller);
    history::write(&rt.store, &entry, Presence::Existing, event)?;
    Ok((StatusCode::ACCEPTED, Json(view(&rt, &entry))))
}
