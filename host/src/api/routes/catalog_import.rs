//! `POST /catalog/import`: entries from a catalog document, posted inline or
//! fetched from a host the config lists, answered entry by entry.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

use super::audit;
use crate::api::{ApiError, ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::auth::Principal;
use crate::catalog::import::{self, Format, ImportFilter, Origin, Outcome};
use crate::catalog::CatalogEntry;
use crate::deployments::Runtime;
use crate::events::EventKind;
use crate::store::Table;

/// A fetched catalog larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 8 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Pages of the registry's `/v0/servers` followed at most.
const MAX_PAGES: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/catalog/import", post(import_catalog))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    url: Option<String>,
    document: Option<String>,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    filter: ImportFilter,
    #[serde(default)]
    dry_run: bool,
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid { field: field.into(), reason: reason.into() }
}

/// Remote catalogs come only from the hosts of `catalog.remote_catalogs`.
fn check_listed(rt: &Runtime, url: &reqwest::Url) -> ApiResult<()> {
    let authority = |u: &reqwest::Url| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)));
    let listed = rt.config.catalog.remote_catalogs.iter().filter_map(|c| c.get("url")?.as_str()?.parse().ok());
    let wanted = authority(url);
    if wanted.is_some() && listed.map(|u: reqwest::Url| authority(&u)).any(|a| a == wanted) {
        return Ok(());
    }
    Err(invalid("url", format!("{} is not a host listed in catalog.remote_catalogs", url.host_str().unwrap_or("?"))))
}

async fn fetch(rt: &Runtime, url: &reqwest::Url) -> ApiResult<String> {
    let failed = |why: String| ApiError::Unavailable(format!("fetching {url}: {why}"));
    let response = rt.http().get(url.clone()).timeout(FETCH_TIMEOUT).send().await.map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("answered {}", response.status())));
    }
    if response.content_length().is_some_and(|n| n as usize > MAX_DOCUMENT_BYTES) {
        return Err(invalid("url", format!("the catalog is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(invalid("url", format!("the catalog is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    String::from_utf8(body.to_vec()).map_err(|_| invalid("url", "the catalog is not UTF-8 text"))
}

/// Every page of the document at `url` (the registry's API pages by cursor).
async fn documents(rt: &Runtime, url: &reqwest::Url) -> ApiResult<Vec<String>> {
    let mut pages = vec![fetch(rt, url).await?];
    while let Some(cursor) = pages.last().and_then(|p| import::next_page(p)) {
        if pages.len() >= MAX_PAGES {
            break;
        }
        let mut next = url.clone();
        let kept: Vec<(String, String)> =
            url.query_pairs().filter(|(k, _)| k != "cursor").map(|(k, v)| (k.into(), v.into())).collect();
        next.query_pairs_mut().clear().extend_pairs(kept).append_pair("cursor", &cursor);
        pages.push(fetch(rt, &next).await?);
    }
    Ok(pages)
}

/// One upstream entry applied to the catalog (or not, on a dry run).
fn apply(rt: &Runtime, caller: &Principal, mut entry: CatalogEntry, dry_run: bool) -> ApiResult<Outcome> {
    let upstream_id = entry.origin.as_ref().map(|o| o.upstream_id.clone()).unwrap_or_default();
    let slug = entry.slug.clone();
    let skipped = |field: String, reason: String| Outcome::Skipped { upstream_id: upstream_id.clone(), field, reason };
    if let Err(crate::catalog::CatalogError::Invalid { field, reason }) =
        entry.validate(|p| matches!(rt.profile(p), Ok(Some(_))))
    {
        return Ok(skipped(field, reason));
    }
    let stored: Option<CatalogEntry> = rt.store.get(Table::Catalog, &slug)?;
    let merged = match import::merge(entry.clone(), stored.as_ref()) {
        Ok(merged) => merged,
        Err(skip) => return Ok(skipped(skip.field, skip.reason)),
    };
    let Some(merged) = merged else { return Ok(Outcome::Unchanged { upstream_id, slug }) };
    entry = merged;
    let subject = format!("catalog/{slug}");
    let added = stored.is_none();
    if !dry_run {
        if added {
            rt.store.create(
                Table::Catalog,
                &slug,
                &entry,
                audit(EventKind::CatalogCreated, subject, json!(entry), caller),
            )?;
        } else {
            rt.store.replace(
                Table::Catalog,
                &slug,
                &entry,
                audit(EventKind::CatalogUpdated, subject, json!(entry), caller),
            )?;
        }
    }
    Ok(if added { Outcome::Added { upstream_id, slug } } else { Outcome::Updated { upstream_id, slug } })
}

async fn import_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    JsonBody(body): JsonBody<ImportBody>,
) -> ApiResult<Json<Value>> {
    let (source, texts) = match (&body.url, &body.document) {
        (Some(url), None) => {
            let parsed: reqwest::Url = url.parse().map_err(|e| invalid("url", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid("url", "an http(s) URL"));
            }
            check_listed(&rt, &parsed)?;
            (url.clone(), documents(&rt, &parsed).await?)
        }
        (None, Some(document)) => ("document".to_string(), vec![document.clone()]),
        _ => return Err(invalid("url", "give either url or document")),
    };
    let mut format = body.format;
    let mut outcomes = Vec::new();
    for text in &texts {
        let (read_as, candidates) = import::read(text, format).map_err(|s| invalid(&s.field, s.reason))?;
        format = read_as;
        for candidate in candidates {
            let outcome = match candidate.entry {
                Err(skip) => {
                    Outcome::Skipped { upstream_id: candidate.upstream_id, field: skip.field, reason: skip.reason }
                }
                Ok(entry) if !body.filter.keeps(&entry) => continue,
                Ok(mut entry) => {
                    let origin = Origin {
                        source: source.clone(),
                        format,
                        upstream_id: candidate.upstream_id,
                        version: candidate.version,
                    };
                    entry.origin = Some(origin);
                    apply(&rt, &caller, entry, body.dry_run)?
                }
            };
            outcomes.push(outcome);
        }
    }
    let count = |kind: &str| outcomes.iter().filter(|o| json!(o)["outcome"] == kind).count();
    let counts = json!({"added": count("added"), "updated": count("updated"), "unchanged": count("unchanged"),
                        "skipped": count("skipped")});
    Ok(Json(json!({"format": format, "dry_run": body.dry_run, "counts": counts, "entries": outcomes})))
}
