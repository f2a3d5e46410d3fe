//! `/admin/catalog/manage` (admins): every entry with edit and delete, a new
//! entry, and imports from a remote catalog or a pasted document. An entry
//! is edited as the YAML the API takes; a mistake comes back on the form
//! naming the field, and nothing stored changes until it is right.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;

use crate::auth::authz::{authorize, Action};
use crate::catalog::import::{Format, ImportFilter};
use crate::catalog::{CatalogEntry, CatalogError, CatalogServiceError};
use crate::remote_catalogs::ImportRequest;
use crate::store::StoreError;
use crate::ui::forms::{self, editor, read_yaml, CsrfForm, Editing, YamlForm};
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .route("/admin/catalog/manage", get(manage))
        .route("/admin/catalog/new", get(new_entry))
        .route("/admin/catalog/save", post(save))
        .route("/admin/catalog/import", post(import))
        .route("/admin/catalog/{slug}/edit", get(edit))
        .route("/admin/catalog/{slug}/delete", get(confirm_delete).post(delete))
}

/// A new entry's starting point.
const NEW_ENTRY: &str = "name: My server\nslug: my-server\ndescription: What it does\ncategory: tools\ntags: []\n\
source:\n  type: docker\n  image: ghcr.io/example/my-server:1.0.0\ntransport: streamable-http\nport: 8080\n\
mcp_path: /mcp\nguardrails_profile: restricted\nrequires_approval: false\n";

fn admin(session: &Session) -> Result<(), UiError> {
    authorize(&session.principal, &Action::WriteCatalog)?;
    Ok(())
}

async fn manage(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    admin(&session)?;
    manage_page(&ui, &session, None).await
}

async fn manage_page(ui: &UiState, session: &Session, report: Option<serde_json::Value>) -> Result<Response, UiError> {
    let entries = ui.services.catalog.all()?;
    let rows: Vec<minijinja::Value> = entries
        .iter()
        .map(|e| {
            minijinja::context! {
                slug => e.slug, name => e.name, source => e.source.type_name(), deprecated => e.deprecated,
                origin => e.origin.as_ref().map(|o| o.source.clone()), profile => e.guardrails_profile,
            }
        })
        .collect();
    let sources = ui.services.remote_catalogs.sources()?;
    let context = minijinja::context! {
        rows => rows, report => report.map(minijinja::Value::from_serialize),
        sources => minijinja::Value::from_serialize(&sources),
    };
    ui.page("catalog_manage.html", Some(session), context)
}

async fn new_entry(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    admin(&session)?;
    editor(&ui, &session, Editing { kind: "catalog", original: "", yaml: NEW_ENTRY }, None)
}

async fn edit(State(ui): State<Arc<UiState>>, session: Session, Path(slug): Path<String>) -> Result<Response, UiError> {
    admin(&session)?;
    let entry = ui.services.catalog.get(&slug)?;
    let yaml = serde_yaml_ng::to_string(&entry).map_err(|e| UiError::Internal(e.to_string()))?;
    editor(&ui, &session, Editing { kind: "catalog", original: &slug, yaml: &yaml }, None)
}

/// The entry the form holds, or the field at fault and why.
fn read_entry(yaml: &str, original: &str) -> Result<CatalogEntry, (String, String)> {
    let value: serde_json::Value = read_yaml(yaml, "entry")?;
    let entry = crate::catalog::read_entry(value).map_err(|e| {
        let field = e.path().to_string();
        (if field == "." { "entry".into() } else { field }, e.into_inner().to_string())
    })?;
    if !original.is_empty() && entry.slug != original {
        return Err(("slug".into(), format!("must stay '{original}': make a new entry for another slug")));
    }
    Ok(entry)
}

async fn save(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Form(form): Form<YamlForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    admin(&session)?;
    let editing = Editing { kind: "catalog", original: &form.original, yaml: &form.yaml };
    let entry = match read_entry(&form.yaml, &form.original) {
        Ok(entry) => entry,
        Err(error) => return editor(&ui, &session, editing, Some(error)),
    };
    let user = &session.principal.user;
    let written = match form.original.is_empty() {
        true => ui.services.catalog.create(entry.clone(), user).await,
        false => ui.services.catalog.replace(entry.clone(), user).await,
    };
    match written {
        Ok(_) => Ok(Redirect::to("/admin/catalog/manage").into_response()),
        // A mistake goes back to the form, naming the field.
        Err(CatalogServiceError::Invalid(CatalogError::Invalid { field, reason })) => {
            editor(&ui, &session, editing, Some((field, reason)))
        }
        Err(CatalogServiceError::Package(e)) => {
            editor(&ui, &session, editing, Some((e.field().to_string(), e.reason().to_string())))
        }
        Err(CatalogServiceError::Store(StoreError::Conflict(_))) => {
            editor(&ui, &session, editing, Some(("slug".into(), format!("'{}' is taken", entry.slug))))
        }
        Err(e) => Err(e.into()),
    }
}

async fn confirm_delete(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    admin(&session)?;
    forms::confirm_delete(&ui, &session, "catalog", &slug)
}

async fn delete(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(slug): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    admin(&session)?;
    ui.services.catalog.delete(&slug, &session.principal.user)?;
    Ok(Redirect::to("/admin/catalog/manage").into_response())
}

#[derive(Deserialize)]
struct ImportForm {
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    document: String,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    dry_run: Option<String>,
}

async fn import(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Form(form): Form<ImportForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    admin(&session)?;
    let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let request = ImportRequest {
        url: given(&form.url),
        document: given(&form.document),
        format: form.format,
        filter: ImportFilter::default(),
        dry_run: form.dry_run.is_some(),
    };
    let report = ui.services.remote_catalogs.import(request, &session.principal.user).await?;
    manage_page(&ui, &session, Some(serde_json::json!(report))).await
}
