//! A glance at a deployment: the few fields the background loops choose by
//! (its state, its handle, its health check), read from the stored record
//! without the rest. At hundreds of deployments, decoding every record in
//! full each second (the health checks' tick) was a large share of an idle
//! host's CPU; the deployments a loop then acts on are read in full.

use serde::Deserialize;

use super::State;
use crate::catalog::{HealthCheck, SessionMode};

/// Whether a deployment's server is health-checked: one of its own that
/// serves (connected, or unhealthy and being probed back), not one per session.
pub fn is_health_checked(status: State, has_handle: bool, per_session: bool) -> bool {
    matches!(status, State::Connected | State::Unhealthy) && has_handle && !per_session
}

#[derive(Debug, Clone, Deserialize)]
pub struct Glance {
    pub id: String,
    pub backend: String,
    pub status: State,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    request: Option<RequestGlance>,
}

#[derive(Debug, Clone, Deserialize)]
struct RequestGlance {
    entry: EntryGlance,
}

/// The entry's fields with the defaults `CatalogEntry` gives them.
#[derive(Debug, Clone, Deserialize)]
struct EntryGlance {
    #[serde(default)]
    session_mode: SessionMode,
    #[serde(default)]
    health_check: HealthCheck,
}

impl Glance {
    pub fn is_per_session(&self) -> bool {
        self.request.as_ref().is_some_and(|r| r.entry.session_mode == SessionMode::PerSession)
    }

    /// Its entry's health check; none for a record from before requests were kept.
    pub fn health_check(&self) -> Option<&HealthCheck> {
        self.request.as_ref().map(|r| &r.entry.health_check)
    }

    /// The health check its server is probed with, if it is health-checked.
    pub fn checked(&self) -> Option<&HealthCheck> {
        self.health_check().filter(|_| is_health_checked(self.status, self.handle.is_some(), self.is_per_session()))
    }

    /// A process of its own should be running.
    pub fn runs(&self) -> bool {
        self.status.is_running() && self.handle.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::Deployment;
    use serde_json::json;

    #[test]
    fn a_glance_reads_what_the_full_record_says() {
        let record = super::super::tests::v1_record();
        let migrated = crate::store::migrations::deployment_request_in_catalog_shape(record).unwrap();
        let mut full: Deployment = serde_json::from_value(migrated).unwrap();
        let entry = &mut full.request.as_mut().unwrap().entry;
        entry.session_mode = SessionMode::PerSession;
        entry.health_check.interval_seconds = 42;
        let bytes = serde_json::to_vec(&full).unwrap();
        let glance: Glance = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((glance.id.as_str(), glance.backend.as_str(), glance.status), ("d1", "docker", State::Connected));
        assert_eq!(glance.handle.as_deref(), Some("c1"));
        assert!(glance.is_per_session() && glance.runs());
        assert!(glance.checked().is_none(), "a per-session deployment's servers are its sessions'");
        assert_eq!(glance.health_check().map(|c| c.interval_seconds), Some(42));
        let bare: Glance = serde_json::from_value(json!({"id": "d2", "backend": "wasm", "status": "stopped"})).unwrap();
        assert!(!bare.is_per_session() && !bare.runs() && bare.health_check().is_none());
    }
}
