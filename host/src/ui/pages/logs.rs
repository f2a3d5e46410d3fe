//! `/admin/runtimes/{id}/logs`: a deployment's log with level, time range and
//! text filters (the same `logs::search` the API runs); follow mode reloads
//! the lines every two seconds while it is ticked.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

use crate::auth::authz::{authorize, Action};
use crate::logs::{search, Filter, Level, Window, MAX_TAIL};
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new().route("/admin/runtimes/{id}/logs", get(logs))
}

#[derive(Deserialize, Default)]
struct LogsForm {
    #[serde(default)]
    level: String,
    #[serde(default)]
    q: String,
    /// `datetime-local` inputs, read as UTC.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    follow: Option<String>,
}

fn time(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, UiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let parsed = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| UiError::Invalid(format!("{field}: '{value}' is not a date and time")))?;
    Ok(Some(parsed.and_utc()))
}

async fn logs(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(id): Path<String>,
    Query(form): Query<LogsForm>,
) -> Result<Response, UiError> {
    let d = ui.services.deployments.get(&id)?;
    authorize(&session.principal, &Action::Operate { owner: d.requested_by.as_deref() })?;
    let level = match form.level.as_str() {
        "" => None,
        name => Some(
            Level::parse(&serde_json::json!(name))
                .ok_or_else(|| UiError::Invalid(format!("level: '{name}' is not a level")))?,
        ),
    };
    let filter = Filter {
        since: time("since", &form.since)?,
        until: time("until", &form.until)?,
        level,
        contains: Some(form.q.clone()).filter(|q| !q.is_empty()),
        service: None,
    };
    let tail = 500;
    let window = Window { tail: if filter.narrows() { MAX_TAIL } else { tail }, since: None, until: None };
    let entries = search(ui.services.deployments.logs(&id, window).await?, &filter, tail);
    let context = minijinja::context! {
        d => minijinja::context! { id => d.id, slug => d.slug, status => d.status },
        entries => minijinja::Value::from_serialize(&entries),
        level => form.level, q => form.q, since => form.since, until => form.until,
        follow => form.follow.is_some(),
        levels => ["trace", "debug", "info", "warn", "error", "fatal"],
    };
    ui.page("logs.html", Some(&session), context)
}
