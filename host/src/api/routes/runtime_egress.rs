//! `GET /runtimes/{id}/egress`: where a deployment's server reached out to
//! through its egress proxy, and the allowlist that would let exactly that
//! through — ready to save as a profile (learn mode's answer).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::operable;
use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::egress::propose;

pub fn routes() -> Router<AppState> {
    Router::new().route("/runtimes/{id}/egress", get(runtime_egress))
}

async fn runtime_egress(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = operable(&rt, &caller, &id)?;
    let network = &d.guardrails_applied.network;
    let mode = match (network.egress_allowed, network.egress_audit) {
        (false, _) => "off",
        (true, true) => "audit",
        (true, false) if network.allowed_hosts.is_empty() || network.allowed_hosts.iter().any(|h| h == "*") => "open",
        (true, false) => "allowlist",
    };
    let observed = rt.egress_observed(&id);
    let proposed = propose(&observed);
    let profile = json!({
        "name": format!("{}-observed", d.slug),
        "network": {"egress_allowed": true, "allowed_hosts": proposed},
    });
    Ok(Json(json!({"deployment": id, "mode": mode, "observed": observed, "proposed_allowed_hosts": proposed,
                   "profile": profile})))
}
