//! Who a browser is: the token it signed in with, kept in an HttpOnly,
//! SameSite=Strict cookie and verified on every request exactly as a bearer
//! token is — or ContextForge's own session cookie (`jwt_token`), signed with
//! the shared secret, so a person signed in to the gateway is signed in here.
//! Every form that changes state carries a CSRF token bound to the session.

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::sync::Arc;

use super::{UiError, UiState};
use crate::auth::authz::{authorize, Action};
use crate::auth::Principal;

/// This host's session cookie.
const COOKIE: &str = "mcp_runtime_session";
/// ContextForge's, when the gateway is on the same site.
const CONTEXTFORGE_COOKIE: &str = "jwt_token";

/// A signed-in person, and the CSRF token of their session.
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    pub fn may(&self, action: &Action<'_>) -> bool {
        authorize(&self.principal, action).is_ok()
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), UiError> {
        let (a, b) = (sent.as_bytes(), self.csrf.as_bytes());
        // Constant time, so the token cannot be guessed byte by byte.
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err(UiError::Forbidden(
                "the form is stale or was not made by this site: reload the page and try again".into(),
            ))
        }
    }
}

impl FromRequestParts<Arc<UiState>> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Arc<UiState>) -> Result<Self, Self::Rejection> {
        let token = [COOKIE, CONTEXTFORGE_COOKIE]
            .iter()
            .find_map(|name| cookie(&parts.headers, name))
            .ok_or(UiError::SignIn)?;
        let principal = ui.auth.verify(&token).map_err(|_| UiError::SignIn)?;
        Ok(Session { principal, csrf: ui.csrf_token(&token) })
    }
}

impl UiState {
    /// HMAC of the session token under a key made at start: a page from
    /// another site cannot know it.
    fn csrf_token(&self, session_token: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(session_token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

pub async fn sign_in_page(State(ui): State<Arc<UiState>>) -> Result<Response, UiError> {
    ui.page("login.html", None, minijinja::context! {})
}

pub async fn sign_in(State(ui): State<Arc<UiState>>, Form(form): Form<SignIn>) -> Result<Response, UiError> {
    let token = form.token.trim();
    match ui.auth.verify(token) {
        Ok(_) => {
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
            let mut answer = Redirect::to("/admin/catalog").into_response();
            answer.headers_mut().insert(header::SET_COOKIE, header_value(&cookie)?);
            Ok(answer)
        }
        Err(e) => {
            let mut page = ui.page("login.html", None, minijinja::context! { error => e.to_string() })?;
            *page.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(page)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn sign_out(session: Session, Form(form): Form<CsrfOnly>) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    let mut answer = Redirect::to("/admin/login").into_response();
    let cleared = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    answer.headers_mut().insert(header::SET_COOKIE, header_value(&cleared)?);
    Ok(answer)
}

fn header_value(text: &str) -> Result<HeaderValue, UiError> {
    // A token is base64url and dots; anything else is refused rather than echoed into a header.
    HeaderValue::from_str(text).map_err(|_| UiError::Invalid("token: not a token".into()))
}
