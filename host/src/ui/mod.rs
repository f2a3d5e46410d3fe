//! The admin UI under `/admin`: pages rendered on the server from templates
//! embedded in the binary (with the stylesheet and the one small script, so
//! it works offline), readable and usable without JavaScript; the script
//! only adds live updates (server-sent events) and copy buttons. Pages call
//! the same services as the API and ask the same authorization matrix, so
//! what a role cannot do is neither offered nor accepted.

mod assets;
mod forms;
mod pages;
mod session;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use std::sync::Arc;

use crate::api::ApiError;
use crate::auth::authz::Action;
use crate::auth::Authenticator;
pub use session::Session;

pub struct UiState {
    pub services: Arc<crate::services::Services>,
    auth: Arc<Authenticator>,
    /// Signs CSRF tokens; made at start, so a restart asks forms to be reloaded.
    csrf_key: [u8; 32],
    templates: Environment<'static>,
}

pub fn router(services: Arc<crate::services::Services>, auth: Arc<Authenticator>) -> Router {
    let mut csrf_key = [0u8; 32];
    csrf_key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    csrf_key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let ui = Arc::new(UiState { services, auth, csrf_key, templates: templates() });
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/catalog") }))
        .route("/admin/login", get(session::sign_in_page).post(session::sign_in))
        .route("/admin/logout", post(session::sign_out))
        .route("/admin/assets/{name}", get(assets::serve))
        .merge(pages::routes())
        .with_state(ui)
}

/// Every template, compiled into the binary.
fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in assets::TEMPLATES {
        env.add_template(name, source).expect("embedded templates parse");
    }
    env
}

impl UiState {
    /// A whole page: the template with the signed-in person's navigation.
    pub fn page(&self, name: &str, session: Option<&Session>, context: minijinja::Value) -> Result<Response, UiError> {
        let me = session.map(|s| {
            minijinja::context! {
                user => s.principal.user,
                roles => s.principal.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
                csrf => s.csrf,
                may_deploy => s.may(&Action::Deploy),
                may_write_catalog => s.may(&Action::WriteCatalog),
                may_write_guardrails => s.may(&Action::WriteGuardrails),
                may_approve => s.may(&Action::Approve),
                may_audit => s.may(&Action::ReadAudit),
            }
        });
        let template = self.templates.get_template(name).map_err(|e| UiError::Internal(e.to_string()))?;
        let html = template
            .render(minijinja::context! { me => me, page => name.trim_end_matches(".html"), ..context })
            .map_err(|e| UiError::Internal(format!("{name}: {e:#}")))?;
        Ok(Html(html).into_response())
    }
}

/// What a page can fail with; each is a page of its own, never a panic.
#[derive(Debug)]
pub enum UiError {
    /// No session, or one that no longer verifies.
    SignIn,
    Forbidden(String),
    Invalid(String),
    Api(ApiError),
    Internal(String),
}

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(e: E) -> Self {
        UiError::Api(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            UiError::SignIn => return Redirect::to("/admin/login").into_response(),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            UiError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            UiError::Api(e) => (e.status(), e.message()),
            UiError::Internal(m) => {
                tracing::error!("admin UI: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be made; the host's log says why".into())
            }
        };
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · mcp-runtime</title>\
             <link rel=\"stylesheet\" href=\"/admin/assets/app.css\"></head><body><main class=\"error\">\
             <h1>{code}</h1><p role=\"alert\">{message}</p><p><a href=\"/admin/catalog\">Back to the catalog</a></p>\
             </main></body></html>",
            code = status.as_u16(),
            message = escape(&message)
        );
        (status, Html(page)).into_response()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
