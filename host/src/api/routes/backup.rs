//! `GET /backup`: the whole state of the running host as one archive (see
//! `backup`), streamed as it is written.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::backup::MEDIA_TYPE;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(backup))
}

#[utoipa::path(get, path = "/backup", tag = "service", extensions(("x-permission" = json!("backup"))),
    responses((status = 200, description = "A tar archive: `mcp-runtime-backup.json` (format, schema version, \
                                           each file's size and SHA-256), then a snapshot of the store and the \
                                           data directory's files. `mcp-runtime restore` reads it.",
               content((Vec<u8> = "application/x-tar"))),
              (status = 507, body = ErrorBody, description = "The data directory has no room to stage it")))]
/// A consistent backup, taken while the host serves.
async fn backup(State(services): State<AppState>, caller: Caller<may::Backup>) -> ApiResult<Response> {
    let staged = services.backups.take(&caller.0.user)?;
    let name = format!("mcp-runtime-{}.tar", staged.header().created_at.format("%Y%m%dT%H%M%SZ"));
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok((
        [(header::CONTENT_TYPE, MEDIA_TYPE.to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(staged.into_stream()),
    )
        .into_response())
}
