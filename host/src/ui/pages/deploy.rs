//! `/admin/catalog/{slug}/deploy`: the deploy dialog. The backend among those
//! this host runs, CPU and memory within the profile's maxima, the declared
//! environment (secrets masked), the profile with each field shown enforced
//! or ignored on the chosen backend (`/admin/compatibility`, refreshed as the
//! choice changes), and a notice when the deploy will wait for approval.
//! Errors come back on the form, by field, as the API names them.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::authz::Action;
use crate::catalog::{CatalogEntry, ServerSource};
use crate::deployment::{DeployBody, ResourceRequest};
use crate::deployments::RuntimeError;
use crate::deployments::Submitted;
use crate::guardrails::Profile;
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .route("/admin/catalog/{slug}/deploy", get(dialog).post(submit))
        .route("/admin/compatibility", get(compatibility))
}

fn deployable(ui: &UiState, session: &Session, slug: &str) -> Result<CatalogEntry, UiError> {
    if !session.may(&Action::Deploy) {
        return Err(UiError::Forbidden(format!("{} may not deploy", session.principal.user)));
    }
    let entry = ui.services.catalog.get(slug)?;
    if matches!(entry.source, ServerSource::Remote { .. }) {
        return Err(UiError::Invalid(format!("'{slug}' is hosted elsewhere: nothing to deploy")));
    }
    Ok(entry)
}

async fn dialog(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let entry = deployable(&ui, &session, &slug)?;
    render(&ui, &session, &entry, &BTreeMap::new(), None).await
}

async fn render(
    ui: &UiState,
    session: &Session,
    entry: &CatalogEntry,
    form: &BTreeMap<String, String>,
    error: Option<(String, String)>,
) -> Result<Response, UiError> {
    let rt = &ui.services.deployments;
    let backends: Vec<String> =
        rt.backend_names().into_iter().map(|(name, _)| name).filter(|b| entry.runs_on(b)).collect();
    let profiles: Vec<Profile> = ui.services.profiles.list()?;
    let chosen_profile = form.get("profile").cloned().unwrap_or_else(|| entry.guardrails_profile.clone());
    let chosen_backend =
        form.get("backend").cloned().or_else(|| Some(rt.backend_for(entry)).filter(|b| backends.contains(b)));
    let compat = match (profiles.iter().find(|p| p.name == chosen_profile), &chosen_backend) {
        (Some(profile), Some(backend)) => crate::deployments::compatibility(rt, profile, backend).await.ok(),
        _ => None,
    };
    let limits = profiles.iter().find(|p| p.name == chosen_profile).map(|p| &p.resources);
    let env: Vec<minijinja::Value> = entry
        .env_vars
        .iter()
        .map(|v| {
            minijinja::context! {
                name => v.name, description => v.description, required => v.required, secret => v.secret,
                default => v.default,
                value => if v.secret { None } else { form.get(&format!("env.{}", v.name)).cloned() },
            }
        })
        .collect();
    let (error_field, error_reason) = error.unzip();
    let mut page = ui.page(
        "deploy.html",
        Some(session),
        minijinja::context! {
            entry => minijinja::context! { slug => entry.slug, name => entry.name, description => entry.description,
                                           requires_approval => entry.requires_approval, transport => entry.transport },
            backends => backends, backend => chosen_backend,
            profiles => profiles.iter().map(|p| &p.name).collect::<Vec<_>>(), profile => chosen_profile,
            max_cpu => limits.and_then(|r| r.max_cpu.clone()), max_memory => limits.and_then(|r| r.max_memory.clone()),
            cpu => form.get("cpu"), memory => form.get("memory"),
            env => env, compat => compat.map(|c| c.fields).map(minijinja::Value::from_serialize),
            error_field => error_field, error_reason => error_reason,
        },
    )?;
    if error_field.is_some() {
        *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

async fn submit(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(slug): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    session.check_csrf(form.get("csrf").map(String::as_str).unwrap_or_default())?;
    let entry = deployable(&ui, &session, &slug)?;
    let given = |key: &str| form.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let env = form
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("env.")?.to_string(), value.clone())))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let body = DeployBody {
        slug: slug.clone(),
        backend: given("backend"),
        profile: given("profile"),
        env,
        resources: ResourceRequest { cpu: given("cpu"), memory: given("memory"), ..Default::default() },
        catalog_revision: None,
    };
    match ui.services.deployments.submit(&body, Some(session.principal.user.as_str())).await {
        Ok(Submitted::Accepted(d)) | Ok(Submitted::Held(d, _)) => {
            Ok(Redirect::to(&format!("/admin/runtimes/{}", d.id)).into_response())
        }
        Err(RuntimeError::Invalid { field, reason }) => {
            render(&ui, &session, &entry, &form, Some((field, reason))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CompatibilityQuery {
    profile: String,
    backend: String,
}

/// The compatibility table alone, for the dialog to swap in.
async fn compatibility(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Query(q): Query<CompatibilityQuery>,
) -> Result<Response, UiError> {
    let rt = &ui.services.deployments;
    let profile = ui
        .services
        .profiles
        .find(&q.profile)?
        .ok_or_else(|| UiError::Invalid(format!("profile: no guardrails profile '{}'", q.profile)))?;
    let compat = crate::deployments::compatibility(rt, &profile, &q.backend).await?;
    ui.page(
        "compat.html",
        Some(&session),
        minijinja::context! { compat => minijinja::Value::from_serialize(&compat.fields) },
    )
}
