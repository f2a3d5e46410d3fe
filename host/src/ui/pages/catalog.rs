//! `/admin/catalog`: cards with category, tags, badges and the backends each
//! entry runs on; a category filter and a search, as `GET /catalog` has them.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::catalog::{CatalogEntry, CatalogFilter, ServerSource};
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new().route("/admin/catalog", get(catalog))
}

#[derive(Deserialize, Default)]
struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    include_deprecated: Option<String>,
}

async fn catalog(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Query(search): Query<Search>,
) -> Result<Response, UiError> {
    let entries: Vec<CatalogEntry> = ui.services.catalog.all()?;
    let categories: BTreeSet<&str> = entries.iter().filter_map(|e| e.category.as_deref()).collect();
    let filter = CatalogFilter {
        q: Some(search.q.clone()).filter(|q| !q.trim().is_empty()),
        category: Some(search.category.clone()).filter(|c| !c.is_empty()),
        include_deprecated: search.include_deprecated.is_some(),
        ..Default::default()
    };
    let backends: Vec<String> = ui.services.deployments.backend_names().into_iter().map(|(name, _)| name).collect();
    let cards: Vec<minijinja::Value> = entries
        .iter()
        .filter(|e| e.matches(&filter))
        .map(|e| {
            let runs_on: Vec<&String> = backends.iter().filter(|b| e.runs_on(b)).collect();
            minijinja::context! {
                slug => e.slug, name => e.name, description => e.description, category => e.category,
                tags => e.tags, featured => e.featured, deprecated => e.deprecated,
                icon => e.icon.as_deref().filter(|i| i.starts_with("https://") || i.starts_with("http://")),
                source => e.source.type_name(), transport => e.transport,
                remote => matches!(e.source, ServerSource::Remote { .. }),
                requires_approval => e.requires_approval, profile => e.guardrails_profile,
                runs_on => runs_on, version => e.version,
            }
        })
        .collect();
    let context = minijinja::context! {
        cards => cards, categories => categories, q => search.q, category => search.category,
        include_deprecated => filter.include_deprecated, total => entries.len(),
    };
    ui.page("catalog.html", Some(&session), context)
}
