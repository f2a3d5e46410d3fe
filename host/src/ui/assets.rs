//! The UI's templates, stylesheet and script, embedded at build time.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../ui/templates/base.html")),
    ("login.html", include_str!("../../ui/templates/login.html")),
    ("catalog.html", include_str!("../../ui/templates/catalog.html")),
    ("catalog_manage.html", include_str!("../../ui/templates/catalog_manage.html")),
    ("deploy.html", include_str!("../../ui/templates/deploy.html")),
    ("compat.html", include_str!("../../ui/templates/compat.html")),
    ("runtimes.html", include_str!("../../ui/templates/runtimes.html")),
    ("runtime.html", include_str!("../../ui/templates/runtime.html")),
    ("confirm.html", include_str!("../../ui/templates/confirm.html")),
    ("logs.html", include_str!("../../ui/templates/logs.html")),
    ("approvals.html", include_str!("../../ui/templates/approvals.html")),
    ("settings.html", include_str!("../../ui/templates/settings.html")),
    ("yaml_edit.html", include_str!("../../ui/templates/yaml_edit.html")),
    ("delete.html", include_str!("../../ui/templates/delete.html")),
];

const STYLESHEET: &str = include_str!("../../ui/assets/app.css");
const SCRIPT: &str = include_str!("../../ui/assets/app.js");

pub async fn serve(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "app.css" => ("text/css; charset=utf-8", STYLESHEET),
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}
