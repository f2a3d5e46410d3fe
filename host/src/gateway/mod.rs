//! Gateway integration: every deployment that reaches `connected`, and every
//! remote catalog entry the admin marks, is registered with the ContextForge
//! gateway and kept in line with it (remote entries: `remote`).
//!
//! The sync is level-triggered: one supervised task follows the event stream
//! (a deployment's state changed, or it was deleted), compares what the
//! deployment is with what its registration says, and makes the calls that
//! close the gap (`sync`). What fails for a reason that may pass (the
//! gateway down, a 5xx) is retried with a bounded backoff; every
//! `sync_interval_seconds` a full pass checks each record is still in the
//! gateway (a gateway restarted on a fresh database is noticed and
//! everything re-registered) and removes the records this host made for
//! deployments that are gone. The gateway never blocks a deployment: it
//! stays `connected` and serving whatever the registration's state.

mod client;
mod registration;
pub mod remote;
mod sync;

pub use client::{ContextForge, GatewayError};
pub use registration::{Registration, Status};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::events::{Event, EventData, GatewayOrphan, RegistrationSync};
use crate::store::{NewEvent, Store, Table};

/// How often the sync looks at what is due.
const TICK: Duration = Duration::from_millis(500);

pub struct GatewaySync {
    store: Arc<Store>,
    client: ContextForge,
    config: GatewayConfig,
    /// How the gateway reaches this host.
    public_url: String,
    /// This host's ownership label: its records in the gateway carry it as a tag.
    owner: String,
    auth: Arc<Authenticator>,
}

impl GatewaySync {
    pub fn new(
        store: Arc<Store>,
        config: GatewayConfig,
        // The address this host listens on: the gateway reaches it there unless told otherwise.
        listen: &str,
        owner: &str,
        auth: Arc<Authenticator>,
        http: reqwest::Client,
    ) -> GatewaySync {
        let public_url = config.public_url.clone().unwrap_or_else(|| default_public_url(listen));
        GatewaySync {
            store,
            client: ContextForge::new(&config, http),
            config,
            public_url: public_url.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            auth,
        }
    }

    fn stored(store: &Store, deployment: &str) -> Option<Registration> {
        store.get(Table::Gateway, deployment).ok().flatten()
    }

    /// Follows the event stream until the host stops.
    pub async fn run(
        self: Arc<Self>,
        mut events: crate::events::Subscription,
        stop: tokio_util::sync::CancellationToken,
    ) {
        tracing::info!(gateway = %self.config.url, public_url = %self.public_url, "registering deployments with the gateway");
        let interval = Duration::from_secs(self.config.sync_interval_seconds);
        // Deployments to sync, and when.
        let mut due: BTreeMap<String, Instant> = BTreeMap::new();
        let mut next_pass = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                event = events.recv() => match event {
                    Ok(event) => {
                        if let Some(id) = relevant(&event) {
                            due.insert(id, Instant::now());
                        }
                    }
                    // Missed some: look at everything.
                    Err(RecvError::Lagged(_)) => next_pass = Instant::now(),
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if Instant::now() >= next_pass {
                        for id in self.full_pass().await {
                            due.insert(id, Instant::now());
                        }
                        next_pass = Instant::now() + interval;
                    }
                    let now = Instant::now();
                    let ready: Vec<String> = due.iter().filter(|(_, at)| **at <= now).map(|(id, _)| id.clone()).collect();
                    for id in ready {
                        due.remove(&id);
                        if let Some(retry) = self.sync(&id).await {
                            due.insert(id, Instant::now() + retry);
                        }
                    }
                }
            }
        }
    }

    /// Every deployment, marked remote entry and registration to sync now: records the gateway
    /// lost are forgotten (and so registered again), and records this host
    /// made for deployments that are gone are removed.
    async fn full_pass(&self) -> Vec<String> {
        let registrations: Vec<(String, Registration)> = match self.store.list_keyed(Table::Gateway) {
            Ok(registrations) => registrations,
            Err(e) => {
                tracing::warn!("cannot read the gateway registrations: {e}");
                return Vec::new();
            }
        };
        for (id, mut registration) in registrations.iter().cloned() {
            let Some(gateway_id) = registration.gateway_id.clone() else { continue };
            match self.client.exists(&gateway_id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(deployment = %id, gateway_id, "the gateway lost this registration: registering again");
                    registration.forget_gateway_ids();
                    registration.status = Status::Pending;
                    let data = EventData::GatewaySynced(RegistrationSync {
                        done: vec!["found missing in the gateway".into()],
                        gateway_id: Some(gateway_id),
                        server_id: None,
                        status: Some(Status::Pending.name().into()),
                    });
                    let event = event_about(&id, data);
                    if let Err(e) = self.store.put(Table::Gateway, &id, &registration, event) {
                        tracing::warn!(deployment = %id, "cannot record the lost registration: {e}");
                    }
                }
                // The gateway is down: the pass is over for now.
                Err(e) => {
                    tracing::debug!("gateway full pass cut short: {e}");
                    return Vec::new();
                }
            }
        }
        self.remove_orphans(&registrations).await;
        let mut ids: Vec<String> = registrations.into_iter().map(|(id, _)| id).collect();
        let deployments: Vec<crate::deployment::Deployment> = self.store.list(Table::Deployments).unwrap_or_default();
        ids.extend(deployments.into_iter().map(|d| d.id));
        let entries: Vec<crate::catalog::CatalogEntry> = self.store.list(Table::Catalog).unwrap_or_default();
        ids.extend(entries.iter().filter(|e| e.register_with_gateway).map(|e| remote::key(&e.slug)));
        ids.sort();
        ids.dedup();
        ids
    }

    /// Removes gateway records carrying this host's tag that no registration holds.
    async fn remove_orphans(&self, registrations: &[(String, Registration)]) {
        let ours = self.owner_tag();
        let Ok(records) = self.client.list().await else { return };
        for (gateway_id, name, tags) in records {
            let claimed = registrations.iter().any(|(_, r)| r.gateway_id.as_deref() == Some(gateway_id.as_str()));
            if claimed || !tags.iter().any(|t| t.eq_ignore_ascii_case(&ours)) {
                continue;
            }
            match self.client.delete(&gateway_id).await {
                Ok(()) => {
                    let subject = format!("gateway/{gateway_id}");
                    let data = EventData::GatewayOrphanRemoved(GatewayOrphan { gateway_id, name: name.clone() });
                    if let Err(e) = self.store.record(NewEvent::new(subject, data)) {
                        tracing::warn!("cannot record the removal of {name}: {e}");
                    }
                }
                Err(e) => tracing::warn!(gateway_id, "orphaned gateway record not removed: {e}"),
            }
        }
    }

    /// The tag every record this host makes carries, naming the host.
    fn owner_tag(&self) -> String {
        format!("mcp-runtime-owner:{}", self.owner.to_lowercase())
    }
}

/// The registrations as the API and the UI show them, read where the sync
/// writes them.
#[derive(Clone)]
pub struct Registrations {
    store: Arc<Store>,
}

impl Registrations {
    pub fn new(store: Arc<Store>) -> Registrations {
        Registrations { store }
    }

    /// The registration of a deployment (or of a remote catalog entry, by
    /// `remote::key`), if it has one.
    pub fn of(&self, key: &str) -> Option<Registration> {
        GatewaySync::stored(&self.store, key)
    }
}

/// The registration an event may change: a deployment's, or a remote entry's.
fn relevant(event: &Event) -> Option<String> {
    match event.data {
        EventData::DeploymentState(_) | EventData::DeploymentDeleted(_) => event.deployment.clone(),
        EventData::CatalogCreated(_) | EventData::CatalogUpdated(_) | EventData::CatalogDeleted(_) => {
            remote::slug_of(&event.subject).map(remote::key)
        }
        _ => None,
    }
}

/// An event about a registration, keyed as `relevant` keys them.
fn event_about(key: &str, data: EventData) -> NewEvent {
    match remote::slug_of(key) {
        Some(_) => NewEvent::new(key.to_string(), data),
        None => NewEvent::for_deployment(key, data),
    }
}

/// `http://<listen>`, with an unspecified address (`0.0.0.0`) as loopback.
fn default_public_url(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        _ => format!("http://{listen}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_public_url_defaults_to_an_address_the_gateway_can_use() {
        assert_eq!(super::default_public_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(super::default_public_url("10.1.2.3:9000"), "http://10.1.2.3:9000");
    }
}
