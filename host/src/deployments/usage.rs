//! What a running deployment uses: the backend's counters, read when asked
//! (by `GET /runtimes/{id}` and each `/metrics` scrape), with CPU as a
//! percentage of one core between two readings.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Runtime, RuntimeError};
use crate::deployment::{Deployment, State};

/// Readings closer than this give no rate: a second one is taken after it.
const SHORTEST_SPAN: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub uptime_seconds: Option<i64>,
    /// Percent of one core, since the previous reading.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub network_rx_bytes: Option<u64>,
    pub network_tx_bytes: Option<u64>,
    /// Instances serving now, where the platform scales them.
    pub instances: Option<u32>,
    /// HTTP requests the platform counted (Code Engine, through IBM Cloud Monitoring).
    pub requests_total: Option<u64>,
}

/// The last CPU reading of each deployment.
#[derive(Default)]
pub struct UsageBook {
    last_cpu: Mutex<HashMap<String, (Instant, u64)>>,
}

impl UsageBook {
    /// The rate since the previous reading, if that was long enough ago; keeps this one.
    fn cpu_percent(&self, id: &str, now: Instant, cpu_ns: u64) -> Option<f64> {
        let mut last = self.last_cpu.lock().expect("usage book poisoned");
        let previous = last.get(id).copied();
        match previous {
            Some((at, _)) if now.duration_since(at) < SHORTEST_SPAN => None,
            _ => {
                last.insert(id.to_string(), (now, cpu_ns));
                let (at, before) = previous?;
                let wall = now.duration_since(at).as_nanos() as f64;
                Some(cpu_ns.saturating_sub(before) as f64 / wall * 100.0)
            }
        }
    }

    pub fn forget(&self, id: &str) {
        self.last_cpu.lock().expect("usage book poisoned").remove(id);
    }
}

impl Runtime {
    /// A running deployment's figures; `None` for one that is not running.
    /// The caller has the record already: it is not read again.
    pub async fn usage(&self, d: &Deployment) -> Result<Option<Usage>, RuntimeError> {
        let id = d.id.as_str();
        let running = matches!(d.status, State::Running | State::Connected | State::Unhealthy);
        let Some(handle) = d.handle.as_deref().filter(|_| running) else { return Ok(None) };
        let backend = self.backend(&d.backend)?;
        let mut figures = backend.usage(handle).await??;
        let mut cpu_percent = None;
        if let Some(cpu_ns) = figures.cpu_ns {
            cpu_percent = self.usage_book.cpu_percent(id, Instant::now(), cpu_ns);
            if cpu_percent.is_none() {
                // No reading long enough ago: take a second one.
                tokio::time::sleep(SHORTEST_SPAN).await;
                figures = backend.usage(handle).await??;
                cpu_percent = figures.cpu_ns.and_then(|ns| self.usage_book.cpu_percent(id, Instant::now(), ns));
            }
        }
        let started = figures.started_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        Ok(Some(Usage {
            uptime_seconds: started.map(|t| (chrono::Utc::now() - t.to_utc()).num_seconds().max(0)),
            cpu_percent: cpu_percent.map(|p| (p * 100.0).round() / 100.0),
            memory_bytes: figures.memory_bytes,
            memory_limit_bytes: figures.memory_limit_bytes,
            network_rx_bytes: figures.network_rx_bytes,
            network_tx_bytes: figures.network_tx_bytes,
            instances: figures.instances,
            requests_total: figures.requests_total,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_a_rate_between_readings_far_enough_apart() {
        let book = UsageBook::default();
        let start = Instant::now();
        assert_eq!(book.cpu_percent("d", start, 1_000), None, "one reading gives no rate");
        assert_eq!(book.cpu_percent("d", start + Duration::from_millis(10), 5_000), None, "too close");
        let half_a_core = book.cpu_percent("d", start + Duration::from_secs(2), 1_000 + 1_000_000_000).unwrap();
        assert!((half_a_core - 50.0).abs() < 1e-9, "{half_a_core}");
    }
}
