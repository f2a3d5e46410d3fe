//! `/admin/settings/guardrails` (admins): create, edit and delete guardrail
//! profiles, each edited as the YAML the API takes; a mistake comes back on
//! the form naming the field, and a profile in use is never deleted.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use std::sync::Arc;

use crate::auth::authz::{authorize, Action};
use crate::guardrails::{GuardrailError, Profile};
use crate::profiles::ProfileError;
use crate::store::StoreError;
use crate::ui::forms::{self, editor, read_yaml, CsrfForm, Editing, YamlForm};
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .route("/admin/settings/guardrails/new", get(new_profile))
        .route("/admin/settings/guardrails/save", post(save))
        .route("/admin/settings/guardrails/{name}/edit", get(edit))
        .route("/admin/settings/guardrails/{name}/delete", get(confirm_delete).post(delete))
}

/// A new profile's starting point: the `restricted` preset's shape.
const NEW_PROFILE: &str = "name: my-profile\ndescription: What it allows\nnetwork:\n  egress_allowed: false\n\
filesystem:\n  read_only_root: true\ncapabilities:\n  drop_all: true\nresources:\n  max_cpu: \"0.5\"\n  max_memory: 256m\n  max_pids: 64\n";

fn admin(session: &Session) -> Result<(), UiError> {
    authorize(&session.principal, &Action::WriteGuardrails)?;
    Ok(())
}

async fn new_profile(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    admin(&session)?;
    editor(&ui, &session, Editing { kind: "guardrails", original: "", yaml: NEW_PROFILE }, None)
}

async fn edit(State(ui): State<Arc<UiState>>, session: Session, Path(name): Path<String>) -> Result<Response, UiError> {
    admin(&session)?;
    let profile = ui.services.profiles.get(&name)?;
    let yaml = serde_yaml_ng::to_string(&profile).map_err(|e| UiError::Internal(e.to_string()))?;
    editor(&ui, &session, Editing { kind: "guardrails", original: &name, yaml: &yaml }, None)
}

/// The profile the form holds, or the field at fault and why.
fn read_profile(yaml: &str, original: &str) -> Result<Profile, (String, String)> {
    let profile: Profile = read_yaml(yaml, "profile")?;
    if !original.is_empty() && profile.name != original {
        return Err(("name".into(), format!("must stay '{original}': make a new profile for another name")));
    }
    Ok(profile)
}

async fn save(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Form(form): Form<YamlForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    admin(&session)?;
    let editing = Editing { kind: "guardrails", original: &form.original, yaml: &form.yaml };
    let profile = match read_profile(&form.yaml, &form.original) {
        Ok(profile) => profile,
        Err(error) => return editor(&ui, &session, editing, Some(error)),
    };
    let (profiles, user) = (&ui.services.profiles, &session.principal.user);
    let name = profile.name.clone();
    let written = match form.original.is_empty() {
        true => profiles.create(&profile, user),
        false => profiles.replace(&form.original, profile, user).map(|_| ()),
    };
    match written {
        Ok(()) => Ok(Redirect::to("/admin/settings").into_response()),
        // A mistake goes back to the form, naming the field.
        Err(ProfileError::Invalid(GuardrailError::Invalid { field, reason })) => {
            editor(&ui, &session, editing, Some((field, reason)))
        }
        Err(ProfileError::Store(StoreError::Conflict(_))) => {
            editor(&ui, &session, editing, Some(("name".into(), format!("'{name}' is taken"))))
        }
        Err(e) => Err(e.into()),
    }
}

async fn confirm_delete(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    admin(&session)?;
    forms::confirm_delete(&ui, &session, "guardrails", &name)
}

async fn delete(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    admin(&session)?;
    ui.services.profiles.delete(&name, &session.principal.user)?;
    Ok(Redirect::to("/admin/settings").into_response())
}
