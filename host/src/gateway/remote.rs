//! Remote catalog entries in the gateway. An entry whose server is hosted
//! elsewhere and that the admin marked `register_with_gateway` is
//! registered at its own URL (no token: the server is open, and credentials
//! for it are the gateway's to hold); it follows the entry's URL and
//! transport, and is removed when the mark or the entry goes. Its
//! registration is stored under the entry's subject, `catalog/<slug>`.

use std::time::Duration;

use super::client::{Endpoint, GatewayError, NewGateway};
use super::registration::Registration;
use super::GatewaySync;
use crate::catalog::{CatalogEntry, ServerSource, Transport};
use crate::store::Table;

const PREFIX: &str = "catalog/";

/// The key a remote entry's registration is stored under.
pub fn key(slug: &str) -> String {
    format!("{PREFIX}{slug}")
}

/// The slug, when a registration key is a remote entry's.
pub fn slug_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)
}

/// The endpoint of an entry the admin wants registered.
fn wanted(entry: &CatalogEntry) -> Option<(&str, Transport)> {
    match &entry.source {
        ServerSource::Remote { url, auth: None } if entry.register_with_gateway => {
            Some((url.as_str(), entry.transport))
        }
        _ => None,
    }
}

impl GatewaySync {
    pub(super) async fn sync_remote(&self, key: &str, slug: &str) -> Option<Duration> {
        let entry: Option<CatalogEntry> = self.store.get(Table::Catalog, slug).ok().flatten();
        let registration = Self::stored(&self.store, key);
        let wanted = entry.as_ref().and_then(|e| wanted(e).map(|endpoint| (e, endpoint)));
        match (wanted, registration) {
            (None, None) => None,
            (None, Some(registration)) => self.forget(key, registration).await,
            (Some((entry, (url, transport))), registration) => {
                let registration = registration.unwrap_or_else(|| Registration::new(slug.to_string()));
                let mut updated = registration.clone();
                let endpoint = Endpoint { url, transport, token: None };
                let aligned = self.align_remote(entry, &endpoint, &mut updated).await;
                self.settle(key, &registration, updated, aligned)
            }
        }
    }

    async fn align_remote(
        &self,
        entry: &CatalogEntry,
        endpoint: &Endpoint<'_>,
        r: &mut Registration,
    ) -> Result<Vec<&'static str>, GatewayError> {
        let mut done = Vec::new();
        let moved = r.url.as_deref() != Some(endpoint.url) || r.transport != Some(endpoint.transport);
        if let Some(gateway_id) = r.gateway_id.clone().filter(|_| moved) {
            match self.client.update(&gateway_id, endpoint).await {
                Ok(()) => {
                    self.client.refresh_tools(&gateway_id).await?;
                    self.sync_server_tools(&gateway_id, r).await?;
                    done.push("url updated");
                }
                Err(GatewayError::NotFound) => r.forget_gateway_ids(),
                Err(e) => return Err(e),
            }
        }
        if r.gateway_id.is_none() {
            let description = format!("{} (hosted at {}), registered by mcp-runtime", entry.name, endpoint.url);
            let tags = self.remote_tags(entry);
            let new = NewGateway { name: &r.name, endpoint: *endpoint, description: &description, tags: &tags };
            r.gateway_id = Some(self.create_record(&new).await?);
            r.active = true;
            done.push("registered");
        }
        r.url = Some(endpoint.url.to_string());
        r.transport = Some(endpoint.transport);
        self.ensure_virtual_server(r, &self.remote_tags(entry), &mut done).await?;
        Ok(done)
    }

    fn remote_tags(&self, entry: &CatalogEntry) -> Vec<String> {
        self.tags(&entry.slug, entry.category.as_deref(), &["remote"])
    }
}
