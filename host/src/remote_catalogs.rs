//! Remote catalogs: fetched from the hosts the config lists, imported entry
//! by entry (`catalog::import`), and kept in sync — `catalog.remote_catalogs`
//! on start and every `sync_interval_hours`, each source's last sync recorded
//! for `GET /catalog/sources`. An entry its source no longer lists becomes
//! `deprecated`; it is never deleted by a sync.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use std::sync::Arc;

use crate::catalog::import::{self, Format, ImportFilter, Origin, Outcome, PackageKind};
use crate::catalog::{Catalog, CatalogEntry, CatalogError, CatalogServiceError};
use crate::config::RemoteCatalog;
use crate::events::{CatalogSync, EventData, ImportCounts};
use crate::store::{NewEvent, Store, StoreError, Table};

/// A fetched catalog larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 8 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Pages of the registry's `/v0/servers` followed at most.
const MAX_PAGES: usize = 50;
/// Who the events of a scheduled sync name.
const SYNC_ACTOR: &str = "catalog-sync";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The catalog refused a write the importer had checked (the store failed).
impl From<CatalogServiceError> for ImportError {
    fn from(e: CatalogServiceError) -> Self {
        match e {
            CatalogServiceError::Invalid(CatalogError::Invalid { field, reason }) => {
                ImportError::Invalid { field, reason }
            }
            CatalogServiceError::Store(e) => ImportError::Store(e),
            other => ImportError::Invalid { field: "entries".into(), reason: other.to_string() },
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Invalid { field: field.into(), reason: reason.into() }
}

/// What to import: a document, or the catalog at a listed URL (the body of
/// `POST /catalog/import`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub url: Option<String>,
    pub document: Option<String>,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub filter: ImportFilter,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub format: Format,
    pub dry_run: bool,
    pub counts: ImportCounts,
    pub entries: Vec<Outcome>,
}

/// A configured source's last sync (`GET /catalog/sources`), stored as its
/// `catalog.synced` event says it.
pub type SourceStatus = CatalogSync;

/// The importer and the sync of the configured remote catalogs: the one
/// place their sync status is written; entries go through the catalog.
pub struct RemoteCatalogs {
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    /// `catalog.remote_catalogs`: the only hosts imported from by URL.
    sources: Vec<RemoteCatalog>,
    /// `catalog.package_preference`: which of a server's packages becomes its entry.
    preference: Vec<PackageKind>,
    http: reqwest::Client,
}

impl RemoteCatalogs {
    pub fn new(
        store: Arc<Store>,
        catalog: Arc<Catalog>,
        config: &crate::config::CatalogConfig,
        http: reqwest::Client,
    ) -> Self {
        let (sources, preference) = (config.remote_catalogs.clone(), config.package_preference.clone());
        RemoteCatalogs { store, catalog, sources, preference, http }
    }

    /// Whether any remote catalog is configured (the sync loop runs only then).
    pub fn any(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Remote catalogs come only from the hosts of `catalog.remote_catalogs`.
    fn check_listed(&self, url: &reqwest::Url) -> Result<(), ImportError> {
        let authority =
            |u: &reqwest::Url| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)));
        let wanted = authority(url);
        let listed = self.sources.iter().filter_map(|c| c.url.parse::<reqwest::Url>().ok());
        if wanted.is_some() && listed.map(|u| authority(&u)).any(|a| a == wanted) {
            return Ok(());
        }
        Err(invalid(
            "url",
            format!("{} is not a host listed in catalog.remote_catalogs", url.host_str().unwrap_or("?")),
        ))
    }

    async fn fetch(&self, url: &reqwest::Url) -> Result<String, ImportError> {
        let failed = |why: String| ImportError::Unreachable(format!("fetching {url}: {why}"));
        let response =
            self.http.get(url.clone()).timeout(FETCH_TIMEOUT).send().await.map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        let too_large = || invalid("url", format!("the catalog is larger than {MAX_DOCUMENT_BYTES} bytes"));
        if response.content_length().is_some_and(|n| n as usize > MAX_DOCUMENT_BYTES) {
            return Err(too_large());
        }
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        String::from_utf8(body.to_vec()).map_err(|_| invalid("url", "the catalog is not UTF-8 text"))
    }

    /// Every page of the document at `url` (the registry's API pages by cursor).
    async fn documents(&self, url: &reqwest::Url) -> Result<Vec<String>, ImportError> {
        let mut pages = vec![self.fetch(url).await?];
        while let Some(cursor) = pages.last().and_then(|p| import::next_page(p)) {
            if pages.len() >= MAX_PAGES {
                break;
            }
            let mut next = url.clone();
            let kept: Vec<(String, String)> =
                url.query_pairs().filter(|(k, _)| k != "cursor").map(|(k, v)| (k.into(), v.into())).collect();
            next.query_pairs_mut().clear().extend_pairs(kept).append_pair("cursor", &cursor);
            pages.push(self.fetch(&next).await?);
        }
        Ok(pages)
    }

    /// One upstream entry applied to the catalog (or not, on a dry run); a
    /// package entry's version is resolved and its executable chosen first,
    /// so what is compared with the stored entry is what would be written.
    async fn apply(&self, actor: &str, entry: CatalogEntry, dry_run: bool) -> Result<Outcome, ImportError> {
        let upstream_id = entry.origin.as_ref().map(|o| o.upstream_id.clone()).unwrap_or_default();
        let slug = entry.slug.clone();
        let skipped =
            |field: String, reason: String| Outcome::Skipped { upstream_id: upstream_id.clone(), field, reason };
        match self.catalog.check(&entry) {
            Err(CatalogServiceError::Invalid(CatalogError::Invalid { field, reason })) => {
                return Ok(skipped(field, reason))
            }
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        let entry = match self.catalog.resolve(entry).await {
            Ok(entry) => entry,
            Err(CatalogServiceError::Package(e)) => return Ok(skipped(e.field().into(), e.reason().into())),
            Err(e) => return Err(e.into()),
        };
        let stored: Option<CatalogEntry> = self.catalog.find(&slug)?;
        let merged = match import::merge(entry, stored.as_ref()) {
            Ok(Some(merged)) => merged,
            Ok(None) => return Ok(Outcome::Unchanged { upstream_id, slug }),
            Err(skip) => return Ok(skipped(skip.field, skip.reason)),
        };
        let added = stored.is_none();
        if !dry_run {
            self.catalog.write_imported(&merged, added, actor)?;
        }
        Ok(if added { Outcome::Added { upstream_id, slug } } else { Outcome::Updated { upstream_id, slug } })
    }

    /// Imports a document or the catalog at a listed URL, entry by entry.
    pub async fn import(&self, request: ImportRequest, actor: &str) -> Result<ImportReport, ImportError> {
        let (source, texts) = match (&request.url, &request.document) {
            (Some(url), None) => {
                let parsed: reqwest::Url = url.parse().map_err(|e| invalid("url", format!("not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("url", "an http(s) URL"));
                }
                self.check_listed(&parsed)?;
                (url.clone(), self.documents(&parsed).await?)
            }
            (None, Some(document)) => ("document".to_string(), vec![document.clone()]),
            _ => return Err(invalid("url", "give either url or document")),
        };
        // A configured source's defaults: an import never guards its entries less.
        let configured = self.sources.iter().find(|c| c.url == source);
        let mut format = request.format;
        let mut entries = Vec::new();
        for text in &texts {
            let (read_as, candidates) =
                import::read(text, format, &self.preference).map_err(|s| invalid(&s.field, s.reason))?;
            format = read_as;
            for candidate in candidates {
                let outcome = match candidate.entry {
                    Err(skip) => {
                        Outcome::Skipped { upstream_id: candidate.upstream_id, field: skip.field, reason: skip.reason }
                    }
                    Ok(entry) if !request.filter.keeps(&entry) => continue,
                    Ok(mut entry) => {
                        let (upstream_id, version) = (candidate.upstream_id, candidate.version);
                        entry.origin = Some(Origin { source: source.clone(), format, upstream_id, version });
                        if let Some(defaults) = configured {
                            if let Some(profile) = &defaults.guardrails_profile {
                                entry.guardrails_profile = profile.clone();
                            }
                            entry.requires_approval |= defaults.requires_approval;
                        }
                        self.apply(actor, entry, request.dry_run).await?
                    }
                };
                entries.push(outcome);
            }
        }
        let count = |f: fn(&Outcome) -> bool| entries.iter().filter(|o| f(o)).count();
        let counts = ImportCounts {
            added: count(|o| matches!(o, Outcome::Added { .. })),
            updated: count(|o| matches!(o, Outcome::Updated { .. })),
            unchanged: count(|o| matches!(o, Outcome::Unchanged { .. })),
            skipped: count(|o| matches!(o, Outcome::Skipped { .. })),
            deprecated: 0,
        };
        Ok(ImportReport { format, dry_run: request.dry_run, counts, entries })
    }

    /// Marks deprecated the entries `url` gave before and does not list now.
    fn deprecate_removed(&self, url: &str, report: &ImportReport) -> Result<usize, ImportError> {
        let listed: Vec<&str> = report
            .entries
            .iter()
            .map(|o| match o {
                Outcome::Added { upstream_id, .. }
                | Outcome::Updated { upstream_id, .. }
                | Outcome::Unchanged { upstream_id, .. }
                | Outcome::Skipped { upstream_id, .. } => upstream_id.as_str(),
            })
            .collect();
        let mut deprecated = 0;
        for entry in self.catalog.all()? {
            let gone =
                entry.origin.as_ref().is_some_and(|o| o.source == url && !listed.contains(&o.upstream_id.as_str()));
            if gone && !entry.deprecated {
                self.catalog.deprecate(entry, format!("{url} no longer lists it"), SYNC_ACTOR)?;
                deprecated += 1;
            }
        }
        Ok(deprecated)
    }

    /// Syncs every configured source that is due (all of them when `force`).
    pub async fn sync_due(&self, force: bool) {
        for source in &self.sources {
            let last: Option<SourceStatus> = self.store.get(Table::CatalogSources, &source.url).ok().flatten();
            let interval = chrono::Duration::hours(i64::from(source.sync_interval_hours.max(1)));
            if !force && last.as_ref().is_some_and(|s| chrono::Utc::now() - s.last_sync < interval) {
                continue;
            }
            let request = ImportRequest {
                url: Some(source.url.clone()),
                document: None,
                format: source.format,
                filter: source.filter.clone(),
                dry_run: false,
            };
            let outcome = match self.import(request, SYNC_ACTOR).await {
                Ok(mut report) => self.deprecate_removed(&source.url, &report).map(|n| {
                    report.counts.deprecated = n;
                    report.counts
                }),
                Err(e) => Err(e),
            };
            let (counts, error) = match outcome {
                Ok(counts) => (Some(counts), None),
                Err(e) => {
                    tracing::warn!(url = %source.url, "catalog sync failed: {e}");
                    (None, Some(e.to_string()))
                }
            };
            let status = SourceStatus { url: source.url.clone(), last_sync: chrono::Utc::now(), counts, error };
            let event =
                NewEvent::new(format!("catalog-source/{}", source.url), EventData::CatalogSynced(status.clone()));
            if let Err(e) = self.store.put(Table::CatalogSources, &source.url, &status, event.by(Some(SYNC_ACTOR))) {
                tracing::warn!(url = %source.url, "recording a catalog sync: {e}");
            }
        }
    }

    /// Every configured source with its last sync, if it had one.
    pub fn sources(&self) -> Result<Vec<serde_json::Value>, ImportError> {
        let mut listed = Vec::new();
        for source in &self.sources {
            let status: Option<SourceStatus> = self.store.get(Table::CatalogSources, &source.url)?;
            listed.push(serde_json::json!({"url": source.url, "format": source.format,
                                           "sync_interval_hours": source.sync_interval_hours, "last": status}));
        }
        Ok(listed)
    }
}
