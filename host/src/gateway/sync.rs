//! One deployment's sync: what it is (connected, stopped or unhealthy, gone)
//! against what its registration says, and the gateway calls between them.

use chrono::Utc;
use std::time::Duration;

use super::client::{Endpoint, GatewayError, NewGateway};
use super::registration::{Registration, Status};
use super::GatewaySync;
use crate::auth::{gateway_principal, Role};
use crate::catalog::Transport;
use crate::deployment::{Deployment, State};
use crate::events::{EventData, RegistrationFailure, RegistrationRemoved, RegistrationSync};
use crate::store::Table;

/// Longest wait between retries of a sync that failed for a passing reason.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl GatewaySync {
    /// Brings one deployment's registration in line; when to try again, if it failed.
    pub(super) async fn sync(&self, id: &str) -> Option<Duration> {
        use tracing::Instrument;
        if let Some(slug) = super::remote::slug_of(id) {
            return self.sync_remote(id, slug).instrument(tracing::info_span!("gateway sync", remote = slug)).await;
        }
        self.sync_one(id).instrument(tracing::info_span!("gateway sync", deployment = id)).await
    }

    async fn sync_one(&self, id: &str) -> Option<Duration> {
        let deployment: Option<Deployment> = self.store.get(Table::Deployments, id).ok().flatten();
        let registration = Self::stored(&self.store, id);
        match (deployment, registration) {
            (None, None) => None,
            (None, Some(registration)) => self.forget(id, registration).await,
            // Never registered, and nothing to register yet.
            (Some(d), None) if d.status != State::Connected => None,
            (Some(d), registration) => {
                let registration = registration.unwrap_or_else(|| Registration::new(name_of(&d)));
                let mut updated = registration.clone();
                let aligned = self.align(&d, &mut updated).await;
                self.settle(id, &registration, updated, aligned)
            }
        }
    }

    /// Removes a registration's records from the gateway, then the registration.
    pub(super) async fn forget(&self, key: &str, registration: Registration) -> Option<Duration> {
        match self.deregister(&registration).await {
            Ok(()) => {
                let data = EventData::GatewayDeregistered(RegistrationRemoved {
                    gateway_id: registration.gateway_id,
                    server_id: registration.server_id,
                });
                let event = super::event_about(key, data);
                if let Err(e) = self.store.delete(Table::Gateway, key, event) {
                    tracing::warn!("cannot forget the registration: {e}");
                }
                None
            }
            Err(e) => self.failed(key, registration, e),
        }
    }

    /// Records what aligning a registration came to; when to retry, if it failed.
    pub(super) fn settle(
        &self,
        key: &str,
        before: &Registration,
        after: Registration,
        aligned: Result<Vec<&'static str>, GatewayError>,
    ) -> Option<Duration> {
        match aligned {
            Ok(done) if done.is_empty() && before.error.is_none() => None,
            Ok(done) => {
                self.succeeded(key, after, &done);
                None
            }
            Err(e) => self.failed(key, after, e),
        }
    }

    /// A virtual server holding the record's tools, when the config asks for one and it has none yet.
    pub(super) async fn ensure_virtual_server(
        &self,
        r: &mut Registration,
        tags: &[String],
        done: &mut Vec<&'static str>,
    ) -> Result<(), GatewayError> {
        let wanted = self.config.create_virtual_server && r.server_id.is_none();
        if let Some(gateway_id) = r.gateway_id.clone().filter(|_| wanted) {
            let tools = self.client.tool_ids(&gateway_id).await?;
            r.server_id = Some(self.client.create_server(&r.name, &tools, tags).await?);
            done.push("virtual server created");
        }
        Ok(())
    }

    /// The calls that make the gateway show `d` as it is; what they did.
    async fn align(&self, d: &Deployment, r: &mut Registration) -> Result<Vec<&'static str>, GatewayError> {
        let serving = d.status == State::Connected;
        let mut done = Vec::new();
        let mut lost = false;
        if let Some(gateway_id) = r.gateway_id.clone() {
            match self.follow(d, r, &gateway_id, &mut done).await {
                // The gateway lost the record (a fresh database): register anew.
                Err(GatewayError::NotFound) => {
                    r.forget_gateway_ids();
                    lost = true;
                }
                other => other?,
            }
        }
        if serving && r.gateway_id.is_none() {
            self.register(d, r).await?;
            done.push(if lost { "registered again" } else { "registered" });
        }
        // Made apart from the record, so one that failed is made at the next try.
        if serving {
            self.ensure_virtual_server(r, &self.tags_of(d), &mut done).await?;
        }
        Ok(done)
    }

    /// Brings an existing record in line with the deployment: active or not,
    /// its tools, this host's URL, a token renewed at half its lifetime.
    async fn follow(
        &self,
        d: &Deployment,
        r: &mut Registration,
        gateway_id: &str,
        done: &mut Vec<&'static str>,
    ) -> Result<(), GatewayError> {
        let serving = d.status == State::Connected;
        if serving && !r.active {
            // A fresh token with it: the old one may have run out meanwhile.
            let (url, token) = (self.url_of(d), self.token_for(d, r));
            self.client.update(gateway_id, &proxied(&url, &token)).await?;
            r.url = Some(url);
            self.client.set_active(gateway_id, true).await?;
            self.client.refresh_tools(gateway_id).await?;
            r.active = true;
            r.tools = d.tools.clone();
            done.push("activated");
        } else if !serving && r.active {
            self.client.set_active(gateway_id, false).await?;
            r.active = false;
            done.push("deactivated");
        }
        if serving && r.tools != d.tools {
            self.client.refresh_tools(gateway_id).await?;
            self.sync_server_tools(gateway_id, r).await?;
            r.tools = d.tools.clone();
            done.push("tools refreshed");
        }
        let ttl = chrono::Duration::days(i64::from(self.config.token_ttl_days));
        let url = self.url_of(d);
        if serving && r.url.as_deref() != Some(url.as_str()) {
            // This host moved (another public URL, another port).
            let token = self.token_for(d, r);
            self.client.update(gateway_id, &proxied(&url, &token)).await?;
            r.url = Some(url);
            done.push("url updated");
        } else if serving && r.token_minted_at.is_none_or(|at| Utc::now() - at > ttl / 2) {
            let token = self.token_for(d, r);
            self.client.update(gateway_id, &proxied(&url, &token)).await?;
            done.push("token renewed");
        }
        Ok(())
    }

    /// Registers the deployment.
    async fn register(&self, d: &Deployment, r: &mut Registration) -> Result<(), GatewayError> {
        let token = self.token_for(d, r);
        let tags = self.tags_of(d);
        let url = self.url_of(d);
        let description = format!("{} deployed by mcp-runtime ({})", d.slug, d.id);
        let new = NewGateway { name: &r.name, endpoint: proxied(&url, &token), description: &description, tags: &tags };
        r.gateway_id = Some(self.create_record(&new).await?);
        r.url = Some(url);
        r.active = true;
        r.tools = d.tools.clone();
        Ok(())
    }

    /// Makes the gateway record; its id.
    pub(super) async fn create_record(&self, new: &NewGateway<'_>) -> Result<String, GatewayError> {
        match self.client.register(new).await {
            Ok(id) => Ok(id),
            // Registered before, by a sync whose answer was lost: adopt the record.
            Err(GatewayError::Conflict(why)) => {
                let records = self.client.list().await?;
                let (id, _, _) =
                    records.into_iter().find(|(_, name, _)| name == new.name).ok_or(GatewayError::Conflict(why))?;
                self.client.update(&id, &new.endpoint).await?;
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn sync_server_tools(&self, gateway_id: &str, r: &Registration) -> Result<(), GatewayError> {
        let Some(server_id) = &r.server_id else { return Ok(()) };
        let tools = self.client.tool_ids(gateway_id).await?;
        self.client.set_server_tools(server_id, &tools).await
    }

    pub(super) async fn deregister(&self, r: &Registration) -> Result<(), GatewayError> {
        if let Some(server_id) = &r.server_id {
            self.client.delete_server(server_id).await?;
        }
        if let Some(gateway_id) = &r.gateway_id {
            self.client.delete(gateway_id).await?;
        }
        Ok(())
    }

    /// A token for the gateway to call this deployment's MCP endpoint with, and only that.
    fn token_for(&self, d: &Deployment, r: &mut Registration) -> String {
        r.token_minted_at = Some(Utc::now());
        let ttl = Duration::from_secs(u64::from(self.config.token_ttl_days) * 86_400);
        self.auth.mint(&gateway_principal(&d.id), &[Role::Gateway], ttl)
    }

    fn url_of(&self, d: &Deployment) -> String {
        format!("{}/servers/{}/mcp", self.public_url, d.id)
    }

    fn tags_of(&self, d: &Deployment) -> Vec<String> {
        self.tags(&d.slug, d.request.as_ref().and_then(|r| r.entry.category.as_deref()), &[])
    }

    /// The tags every record this host makes carries: its own, the owner's,
    /// the slug, `extra`, the category and the configured ones.
    pub(super) fn tags(&self, slug: &str, category: Option<&str>, extra: &[&str]) -> Vec<String> {
        let mut tags = vec!["mcp-runtime".to_string(), self.owner_tag(), slug.to_string()];
        tags.extend(extra.iter().map(|t| t.to_string()));
        tags.extend(category.map(String::from));
        tags.extend(self.config.tags.iter().cloned());
        tags.dedup();
        tags
    }

    pub(super) fn succeeded(&self, id: &str, mut r: Registration, done: &[&str]) {
        r.status = if r.active {
            Status::Registered
        } else if r.gateway_id.is_some() {
            Status::Inactive
        } else {
            Status::Pending
        };
        r.error = None;
        r.attempts = 0;
        r.next_attempt = None;
        r.last_sync = Some(Utc::now());
        let sync = RegistrationSync {
            done: done.iter().map(|d| d.to_string()).collect(),
            gateway_id: r.gateway_id.clone(),
            server_id: r.server_id.clone(),
            status: Some(r.status.name().into()),
        };
        let data = match done.iter().any(|d| d.starts_with("registered")) {
            true => EventData::GatewayRegistered(sync),
            false => EventData::GatewaySynced(sync),
        };
        tracing::info!(registration = id, done = ?done, "gateway in line");
        if let Err(e) = self.store.put(Table::Gateway, id, &r, super::event_about(id, data)) {
            tracing::warn!(deployment = id, "cannot record the registration: {e}");
        }
    }

    /// Records a failure; when to retry (a passing failure), if at all
    /// before the next full pass.
    pub(super) fn failed(&self, id: &str, mut r: Registration, e: GatewayError) -> Option<Duration> {
        r.attempts += 1;
        r.error = Some(e.to_string());
        r.last_sync = Some(Utc::now());
        let retry = e.is_transient().then(|| backoff(r.attempts));
        r.status = if retry.is_some() { Status::Pending } else { Status::Failed };
        r.next_attempt = retry.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| Utc::now() + d);
        tracing::warn!(registration = id, attempts = r.attempts, "gateway sync failed: {e}");
        let data = EventData::GatewaySyncFailed(RegistrationFailure {
            error: r.error.clone(),
            attempts: r.attempts,
            retried: retry.is_some(),
            next_attempt: r.next_attempt,
        });
        if let Err(e) = self.store.put(Table::Gateway, id, &r, super::event_about(id, data)) {
            tracing::warn!(deployment = id, "cannot record the failed sync: {e}");
        }
        retry
    }
}

/// A deployment as the gateway reaches it: through this host's proxy, with a token minted for it.
fn proxied<'a>(url: &'a str, token: &'a str) -> Endpoint<'a> {
    Endpoint { url, transport: Transport::StreamableHttp, token: Some(token) }
}

/// 1 s, 2 s, 4 s … up to `MAX_BACKOFF`.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

/// A unique, readable name: the slug and the deployment's short id.
fn name_of(d: &Deployment) -> String {
    format!("{}-{}", d.slug, &d.id[..d.id.len().min(8)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_bound() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
