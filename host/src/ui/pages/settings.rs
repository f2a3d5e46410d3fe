//! `/admin/settings`: the backends with their health and capabilities, and
//! every guardrail profile with what each backend enforces of it.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::Arc;

use crate::guardrails::Profile;
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new().route("/admin/settings", get(settings))
}

async fn settings(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    let rt = &ui.services.deployments;
    let backends = rt.backend_records()?;
    let live = rt.backend_names();
    let profiles: Vec<Profile> = ui.services.profiles.list()?;
    let mut matrix = Vec::new();
    for profile in &profiles {
        let mut per_backend = serde_json::Map::new();
        for (name, why) in &live {
            if why.is_none() {
                let compat = crate::deployments::compatibility(rt, profile, name).await?;
                per_backend.insert(name.clone(), json!(compat.fields));
            }
        }
        matrix.push(json!({"name": profile.name, "description": profile.description, "backends": per_backend}));
    }
    let context = minijinja::context! {
        backends => minijinja::Value::from_serialize(&backends),
        profiles => minijinja::Value::from_serialize(&matrix),
    };
    ui.page("settings.html", Some(&session), context)
}
