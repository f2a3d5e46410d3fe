//! Deploys in flight when the data directory fills up stop cleanly: what
//! the backend made for them is removed, since their record cannot say it
//! runs, and the failure the store refused is kept in memory and recorded
//! once the store takes writes again, so no deployment stays `starting`.

use super::{Runtime, RuntimeError};
use crate::store::StoreError;

/// Whether an error is the store refusing a write for want of space.
pub(super) fn is_no_space(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Store(StoreError::NoSpace(_)))
}

impl Runtime {
    /// Stops a deploy the store could not follow: removes what the backend
    /// made for it; the reason its record should give.
    pub(super) async fn stop_unrecordable(&self, id: &str, e: &RuntimeError) -> String {
        if let Ok(backend) = self.get(id).and_then(|d| self.backend(&d.backend)) {
            self.bridge.forget(id);
            self.remove_leftovers(&backend, id).await;
        }
        format!("stopped while the data directory was full: {e}")
    }

    /// Keeps a failure the store refused, to record when it can.
    pub(super) fn keep_unrecorded(&self, id: &str, reason: String) {
        let mut kept = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(kept_id, _)| kept_id != id);
        kept.push((id.to_string(), reason));
    }

    /// Records the failures kept while the store could not write, once it can.
    pub(super) fn record_unrecorded(&self) {
        // Every watch pass comes here: nothing kept, no need to ask the disk.
        let nothing_kept = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        if nothing_kept || self.store.writable().is_err() {
            return;
        }
        let kept = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        for (id, reason) in kept {
            tracing::info!(deployment = %id, "recording a failure the full data directory held back");
            self.fail(&id, reason);
        }
    }
}
