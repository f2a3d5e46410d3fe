//! What a deployment's egress proxy reports: every attempt counted, a
//! refused one recorded as an `egress.refused` event too.

use std::sync::Arc;
use std::time::Duration;

use crate::events::{EgressRefusal, EventData};
use crate::store::{NewEvent, Store};

/// Every egress attempt is counted; a refused one is an event too.
pub fn egress_reports(
    store: Arc<Store>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Arc<dyn Fn(crate::egress::Attempt) + Send + Sync> {
    // One event per destination refused per minute: a looping client must not flood the trail.
    let recent = std::sync::Mutex::new(std::collections::HashMap::<(String, String, u16), std::time::Instant>::new());
    Arc::new(move |attempt: crate::egress::Attempt| {
        metrics.egress_connection(&attempt.deployment_id, attempt.outcome.as_deref().ok());
        if let Err(reason) = &attempt.outcome {
            let key = (attempt.deployment_id.clone(), attempt.host.clone(), attempt.port);
            let mut recent = recent.lock().expect("egress report lock poisoned");
            recent.retain(|_, at| at.elapsed() < Duration::from_secs(60));
            if recent.insert(key, std::time::Instant::now()).is_some() {
                return;
            }
            drop(recent);
            tracing::info!(deployment = %attempt.deployment_id, host = %attempt.host, port = attempt.port, %reason, "egress refused");
            let data = EventData::EgressRefused(EgressRefusal {
                host: attempt.host.clone(),
                port: attempt.port,
                reason: reason.to_string(),
            });
            let event = NewEvent::for_deployment(&attempt.deployment_id, data);
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.record(event) {
                    tracing::warn!("recording a refused egress attempt: {e}");
                }
            });
        }
    })
}
