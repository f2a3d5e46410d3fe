//! `/runtimes/{id}/logs` (search, or follow as server-sent events) and
//! `/runtimes/{id}/build-logs`.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{event_stream, operable, ServerSentEvent};
use crate::api::{parse_query, ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::catalog::ServerSource;
use crate::deployments::Runtime;
use crate::logs::{search, Entry, Filter, Level, Window, MAX_TAIL};
use crate::repositories::LogEvent;

/// How often a followed log is read again.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(runtime_logs)).routes(routes!(build_logs))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    /// The last lines that pass the filters (100 unless given).
    #[param(minimum = 0, maximum = 10000)]
    tail: Option<u32>,
    /// RFC 3339, or Unix seconds.
    since: Option<String>,
    until: Option<String>,
    /// This level and above (JSON lines that name one).
    level: Option<String>,
    /// Lines containing this, in any case.
    q: Option<String>,
    /// One service of a compose stack.
    service: Option<String>,
    /// `text` (the default) or `json`.
    format: Option<String>,
    /// Then each new line, as server-sent events.
    #[serde(default)]
    follow: bool,
}

fn time(field: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    let parsed = match value.parse::<i64>() {
        Ok(seconds) => DateTime::from_timestamp(seconds, 0),
        Err(_) => DateTime::parse_from_rfc3339(value).ok().map(|t| t.to_utc()),
    };
    parsed.ok_or_else(|| ApiError::Invalid {
        field: field.into(),
        reason: format!("'{value}' is neither an RFC 3339 time nor Unix seconds"),
    })
}

impl LogsQuery {
    fn filter(&self, rt: &Runtime, id: &str) -> ApiResult<Filter> {
        let level = match &self.level {
            None => None,
            Some(name) => Some(Level::parse(&serde_json::json!(name)).ok_or_else(|| ApiError::Invalid {
                field: "level".into(),
                reason: format!("'{name}' is not one of trace, debug, info, warn, error, fatal"),
            })?),
        };
        let filter = Filter {
            since: self.since.as_deref().map(|t| time("since", t)).transpose()?,
            until: self.until.as_deref().map(|t| time("until", t)).transpose()?,
            level,
            contains: self.q.clone().filter(|q| !q.is_empty()),
            service: self.service.clone(),
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since > until {
                return Err(ApiError::Invalid { field: "until".into(), reason: "is before since".into() });
            }
        }
        if let Some(service) = &filter.service {
            check_service(rt, id, service)?;
        }
        Ok(filter)
    }
}

/// A stack's service by name: 422 for a deployment that is not a stack, or a name it lacks.
fn check_service(rt: &Runtime, id: &str, service: &str) -> ApiResult<()> {
    let d = rt.get(id)?;
    let Some(ServerSource::Compose { compose_file, main_service }) = d.request.as_ref().map(|r| &r.entry.source) else {
        return Err(ApiError::Invalid { field: "service".into(), reason: "only a compose stack has services".into() });
    };
    let services = crate::compose::Stack::parse(compose_file, main_service).map(|s| s.services).unwrap_or_default();
    if !services.iter().any(|s| s.name == service) {
        let reason = format!("no service '{service}' in the stack");
        return Err(ApiError::Invalid { field: "service".into(), reason });
    }
    Ok(())
}

/// What the backend is asked for: every line it keeps when the host filters
/// further; with `received`, only those the engine received since then.
fn window(filter: &Filter, tail: u32, received: Option<DateTime<Utc>>) -> Window {
    let tail = if filter.narrows() || received.is_some() { MAX_TAIL } else { tail };
    Window { tail, since: received.map(|t| t.timestamp()), until: None }
}

#[utoipa::path(get, path = "/runtimes/{id}/logs", tag = "runtimes", params(("id" = String, Path), LogsQuery),
    extensions(("x-permission" = json!("operate"))),
    responses((status = 200, description = "The lines: text, JSON entries (`format=json`), or server-sent \
                                           events (`follow=true`: `event: line`, then `event: done`)",
               content((String = "text/plain"), (Vec<Entry> = "application/json"), (ServerSentEvent = "text/event-stream")))))]
/// The last `tail` lines (100 unless given, at most 10,000) that pass the
/// filters, as text (`<service> | ` before a stack's lines) or JSON entries;
/// with `follow=true`, those and then each new one as server-sent events.
async fn runtime_logs(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    // Who may read these logs depends on the deployment's owner: check before reading the query.
    operable(&rt.deployments, &caller, &id)?;
    let q: LogsQuery = parse_query(query.as_deref().unwrap_or(""))?;
    let filter = q.filter(&rt.deployments, &id)?;
    let tail = q.tail.unwrap_or(100);
    if tail > MAX_TAIL {
        return Err(ApiError::Invalid { field: "tail".into(), reason: format!("at most {MAX_TAIL} lines") });
    }
    let as_json = match q.format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            let reason = format!("'{other}' is not text or json");
            return Err(ApiError::Invalid { field: "format".into(), reason });
        }
    };
    let entries = search(rt.deployments.logs(&id, window(&filter, tail, None)).await?, &filter, tail);
    if q.follow {
        return Ok(event_stream(follow(rt, id, filter, entries)));
    }
    if as_json {
        return Ok(Json(entries).into_response());
    }
    // One service's lines need no name before them.
    let text: String = match filter.service {
        Some(_) => entries.iter().map(|e| format!("{}\n", e.line)).collect(),
        None => entries.iter().map(Entry::as_text).collect(),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn line_event(entry: &Entry) -> Result<String, Infallible> {
    Ok(format!("event: line\ndata: {}\n\n", serde_json::to_string(entry).unwrap_or_default()))
}

/// The lines so far, then every second what the engine received since the
/// last one seen, until the deployment goes (`event: done`). Read only as
/// fast as the client reads, so a slow client holds at most one batch.
fn follow(
    rt: AppState,
    id: String,
    filter: Filter,
    so_far: Vec<Entry>,
) -> impl futures_util::Stream<Item = Result<String, Infallible>> {
    // The last time received, and the lines received at exactly that time (read again next time).
    let seen_at = |entries: &[Entry]| {
        let last = entries.iter().filter_map(|e| e.received).max();
        let lines: Vec<String> = entries.iter().filter(|e| e.received == last).map(|e| e.line.clone()).collect();
        (last.unwrap_or_else(Utc::now), lines)
    };
    let start = seen_at(&so_far);
    let past = futures_util::stream::iter(so_far.iter().map(line_event).collect::<Vec<_>>());
    let rest = futures_util::stream::unfold(Some(start), move |state| {
        let (rt, id, filter) = (rt.deployments.clone(), id.clone(), filter.clone());
        async move {
            let (last, at_last) = state?;
            loop {
                tokio::time::sleep(FOLLOW_POLL).await;
                let lines = match rt.logs(&id, window(&filter, MAX_TAIL, Some(last))).await {
                    Ok(lines) => lines,
                    Err(_) => return Some((Ok("event: done\ndata: {}\n\n".to_string()), None)),
                };
                let new: Vec<Entry> = search(lines, &filter, MAX_TAIL)
                    .into_iter()
                    .filter(|e| {
                        e.received.is_some_and(|t| t > last) || (e.received == Some(last) && !at_last.contains(&e.line))
                    })
                    .collect();
                if new.is_empty() {
                    continue;
                }
                let frames: String = new.iter().filter_map(|e| line_event(e).ok()).collect();
                return Some((Ok(frames), Some(seen_at(&new))));
            }
        }
    });
    futures_util::StreamExt::chain(past, rest)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BuildLogsQuery {
    /// The lines so far, then each as it comes, as server-sent events.
    #[serde(default)]
    follow: bool,
}

#[utoipa::path(get, path = "/runtimes/{id}/build-logs", tag = "runtimes",
    params(("id" = String, Path), BuildLogsQuery), extensions(("x-permission" = json!("operate"))),
    responses((status = 200, description = "The build's log (empty for an image source)",
               content((String = "text/plain"), (ServerSentEvent = "text/event-stream")))))]
/// The build's log: as text, or with `follow=true` as server-sent events,
/// the lines so far and then each as it comes until the build ends.
async fn build_logs(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    operable(&rt.deployments, &caller, &id)?;
    let q: BuildLogsQuery = parse_query(query.as_deref().unwrap_or(""))?;
    let (so_far, live) = rt.deployments.build_log(&id);
    if !q.follow {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], so_far).into_response());
    }
    let event = |line: &str| Ok::<_, Infallible>(format!("event: line\ndata: {line}\n\n"));
    let done = || Ok::<_, Infallible>("event: done\ndata: {}\n\n".to_string());
    let past = futures_util::stream::iter(so_far.lines().map(event).collect::<Vec<_>>());
    // `None` once done; `Some(None)` when the build is over already: only `done` is left to say.
    let rest = futures_util::stream::unfold(Some(live), move |state| async move {
        let Some(mut live) = state? else { return Some((done(), None)) };
        loop {
            match live.recv().await {
                Ok(LogEvent::Line(line)) => return Some((event(&line), Some(Some(live)))),
                Ok(LogEvent::Done) | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Some((done(), None))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            }
        }
    });
    Ok(event_stream(futures_util::StreamExt::chain(past, rest)))
}
