//! `GET /runtimes/{id}/egress`: where a deployment's server reached out to
//! through its egress proxy, and the allowlist that would let exactly that
//! through — ready to save as a profile (learn mode's answer).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operable;
use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::egress::{propose, Observed};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(runtime_egress))
}

/// Where a deployment's server reached out to, and the allowlist that would let exactly that through.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape the handler answers, for the document.
pub struct Egress {
    deployment: String,
    /// `off`, `audit`, `open` or `allowlist`.
    mode: String,
    /// Each host reached: how often, when last, whether it was let through.
    observed: Vec<Observed>,
    proposed_allowed_hosts: Vec<String>,
    /// A guardrail profile that allows exactly the observed hosts, ready to `POST /guardrails`.
    #[schema(value_type = Object)]
    profile: Value,
}

#[utoipa::path(get, path = "/runtimes/{id}/egress", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("operate"))), responses((status = 200, body = Egress)))]
/// The hosts the server reached through its egress proxy (learn mode's answer).
async fn runtime_egress(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = operable(&rt.deployments, &caller, &id)?;
    let network = &d.guardrails_applied.network;
    let mode = match (network.egress_allowed, network.egress_audit) {
        (false, _) => "off",
        (true, true) => "audit",
        (true, false) if network.allowed_hosts.is_empty() || network.allowed_hosts.iter().any(|h| h == "*") => "open",
        (true, false) => "allowlist",
    };
    let observed = rt.deployments.egress_observed(&id);
    let proposed = propose(&observed);
    let profile = json!({
        "name": format!("{}-observed", d.slug),
        "network": {"egress_allowed": true, "allowed_hosts": proposed},
    });
    Ok(Json(json!({"deployment": id, "mode": mode, "observed": observed, "proposed_allowed_hosts": proposed,
                   "profile": profile})))
}
