//! What a running deployment uses, as a background sampler last read it from
//! its backend (`runtime.health.usage_interval_ms`): reading a deployment
//! (`GET /runtimes/{id}`, the admin UI, each `/metrics` scrape) never waits
//! on an engine. CPU is a percentage of one core between two samples.

use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Runtime;
use crate::deployment::{Deployment, Glance};

/// Backends asked at once during a pass.
const AT_ONCE: usize = 8;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub uptime_seconds: Option<i64>,
    /// Percent of one core, between the last two samples.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub network_rx_bytes: Option<u64>,
    pub network_tx_bytes: Option<u64>,
    /// Instances serving now, where the platform scales them.
    pub instances: Option<u32>,
    /// HTTP requests the platform counted (Code Engine, through IBM Cloud Monitoring).
    pub requests_total: Option<u64>,
    /// When the sample was taken (RFC 3339), and how long ago.
    pub sampled_at: Option<String>,
    pub age_seconds: Option<f64>,
}

/// One deployment's last sample.
struct Sample {
    usage: Usage,
    started: Option<chrono::DateTime<chrono::Utc>>,
    taken: Instant,
    taken_at: chrono::DateTime<chrono::Utc>,
    /// The backend's CPU counter then, for the next sample's rate.
    cpu_ns: Option<u64>,
}

/// The last sample of each running deployment.
#[derive(Default)]
pub struct UsageBook {
    samples: Mutex<HashMap<String, Sample>>,
}

impl UsageBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sample>> {
        self.samples.lock().expect("usage book poisoned")
    }

    /// Keeps `figures` as `id`'s sample, its CPU a rate since the previous one.
    fn record(&self, id: &str, figures: crate::contract::backend::ResourceUsage, now: Instant) {
        let mut samples = self.lock();
        let cpu_percent = match (samples.get(id), figures.cpu_ns) {
            (Some(previous), Some(cpu_ns)) => previous.cpu_ns.and_then(|before| {
                let wall = now.duration_since(previous.taken).as_nanos() as f64;
                let percent = cpu_ns.saturating_sub(before) as f64 / wall * 100.0;
                (wall > 0.0).then_some((percent * 100.0).round() / 100.0)
            }),
            _ => None,
        };
        let started = figures.started_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let usage = Usage {
            cpu_percent,
            memory_bytes: figures.memory_bytes,
            memory_limit_bytes: figures.memory_limit_bytes,
            network_rx_bytes: figures.network_rx_bytes,
            network_tx_bytes: figures.network_tx_bytes,
            instances: figures.instances,
            requests_total: figures.requests_total,
            ..Usage::default()
        };
        let sample = Sample {
            usage,
            started: started.map(|t| t.to_utc()),
            taken: now,
            taken_at: chrono::Utc::now(),
            cpu_ns: figures.cpu_ns,
        };
        samples.insert(id.to_string(), sample);
    }

    /// `id`'s last sample, with its uptime and age as of now.
    fn latest(&self, id: &str) -> Option<Usage> {
        let samples = self.lock();
        let sample = samples.get(id)?;
        let now = chrono::Utc::now();
        let age = sample.taken.elapsed().as_secs_f64();
        Some(Usage {
            uptime_seconds: sample.started.map(|t| (now - t).num_seconds().max(0)),
            sampled_at: Some(sample.taken_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            age_seconds: Some((age * 10.0).round() / 10.0),
            ..sample.usage.clone()
        })
    }

    /// Drops the samples of deployments not in `running`.
    fn keep_only(&self, running: &std::collections::HashSet<&str>) {
        self.lock().retain(|id, _| running.contains(id.as_str()));
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

impl Runtime {
    /// A running deployment's figures as last sampled; `None` for one that is
    /// not running or not sampled yet.
    pub fn usage(&self, d: &Deployment) -> Option<Usage> {
        let runs = d.status.is_running() && d.handle.is_some();
        runs.then(|| self.usage_book.latest(&d.id)).flatten()
    }

    /// One pass of the sampler: every running deployment's figures, a few
    /// backends at a time; a backend that cannot answer keeps the last sample.
    pub async fn sample_usage_once(self: &Arc<Self>) {
        let deployments = match self.glance_all() {
            Ok(deployments) => deployments,
            Err(e) => return tracing::warn!("usage sampler: {e}"),
        };
        let running: Vec<Glance> = deployments.iter().filter(|d| d.runs()).cloned().collect();
        self.usage_book.keep_only(&running.iter().map(|d| d.id.as_str()).collect());
        // Owned futures (not borrowing `running`): the pass is spawned as a task.
        let samples: Vec<_> = running
            .into_iter()
            .map(|d| {
                let runtime = self.clone();
                async move { runtime.sample(d).await }
            })
            .collect();
        futures_util::stream::iter(samples).buffer_unordered(AT_ONCE).collect::<Vec<()>>().await;
    }

    async fn sample(&self, d: Glance) {
        let (Ok(backend), Some(handle)) = (self.backend(&d.backend), d.handle.as_deref()) else { return };
        match backend.usage(handle).await {
            Ok(Ok(figures)) => self.usage_book.record(&d.id, figures, Instant::now()),
            Ok(Err(e)) => tracing::debug!(deployment = %d.id, "usage unknown: {e:?}"),
            Err(e) => tracing::debug!(deployment = %d.id, "usage unknown: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::backend::ResourceUsage;

    fn reading(cpu_ns: u64) -> ResourceUsage {
        ResourceUsage {
            cpu_ns: Some(cpu_ns),
            memory_bytes: Some(1 << 20),
            memory_limit_bytes: None,
            network_rx_bytes: None,
            network_tx_bytes: None,
            started_at: None,
            instances: None,
            requests_total: None,
        }
    }

    #[test]
    fn cpu_is_a_rate_between_two_samples_and_each_sample_says_its_age() {
        let book = UsageBook::default();
        let start = Instant::now();
        book.record("d", reading(1_000), start);
        let first = book.latest("d").unwrap();
        assert_eq!((first.cpu_percent, first.memory_bytes), (None, Some(1 << 20)), "one sample gives no rate");
        assert!(first.sampled_at.is_some() && first.age_seconds.is_some_and(|a| a >= 0.0), "{first:?}");
        book.record("d", reading(1_000 + 1_000_000_000), start + std::time::Duration::from_secs(2));
        assert_eq!(book.latest("d").unwrap().cpu_percent, Some(50.0), "half a core");
        book.keep_only(&Default::default());
        assert!(book.latest("d").is_none(), "a deployment no longer running has no sample");
    }
}
