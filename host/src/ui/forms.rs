//! What the pages that edit a record as YAML share: reading it with the
//! field at fault named, the editor page (422 when it comes back with a
//! mistake), and the form that only carries the CSRF token.

use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Session, UiError, UiState};

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// A record posted as YAML, and the slug or name it had (empty for a new one).
#[derive(Deserialize)]
pub struct YamlForm {
    pub csrf: String,
    #[serde(default)]
    pub original: String,
    pub yaml: String,
}

/// The record the text holds, or the field at fault (`whole` for the text itself) and why.
pub fn read_yaml<T: DeserializeOwned>(yaml: &str, whole: &str) -> Result<T, (String, String)> {
    let de = serde_yaml_ng::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        (if field == "." { whole.to_string() } else { field }, e.into_inner().to_string())
    })
}

/// What an editor page is about.
pub struct Editing<'a> {
    /// `catalog` or `guardrails`.
    pub kind: &'a str,
    pub original: &'a str,
    pub yaml: &'a str,
}

/// The editor, with the mistake named when there is one.
pub fn editor(
    ui: &UiState,
    session: &Session,
    editing: Editing<'_>,
    error: Option<(String, String)>,
) -> Result<Response, UiError> {
    let (error_field, error_reason) = error.unzip();
    let failed = error_field.is_some();
    let context = minijinja::context! {
        kind => editing.kind, original => editing.original, yaml => editing.yaml,
        error_field => error_field, error_reason => error_reason,
    };
    let mut page = ui.page("yaml_edit.html", Some(session), context)?;
    if failed {
        *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

/// The confirmation before deleting a catalog entry or a profile.
pub fn confirm_delete(ui: &UiState, session: &Session, kind: &str, name: &str) -> Result<Response, UiError> {
    ui.page("delete.html", Some(session), minijinja::context! { kind => kind, name => name })
}
