//! What a container wrote: its log lines, each marked with its stream and
//! the time the engine received it.

use bollard::container::LogOutput;
use bollard::query_parameters::{LogsOptions, StatsOptions};
use futures_util::StreamExt;

use super::{engine_error, ContainerEngine};
use crate::contract::container_engine::{ContainerStats, EngineError};
use crate::contract::types::{LogLine, LogQuery, LogStream};

impl ContainerEngine {
    pub async fn container_logs(&self, id: &str, query: &LogQuery) -> Result<Vec<LogLine>, EngineError> {
        self.ensure_container_owned(id).await?;
        // The engine takes whole seconds; `until` is exclusive there, so a second more.
        let seconds = |t: Option<i64>| t.map(|t| t.clamp(0, i32::MAX as i64) as i32).unwrap_or(0);
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: query.tail.to_string(),
            since: seconds(query.since),
            until: seconds(query.until.map(|t| t + 1)),
            ..Default::default()
        };
        let mut chunks = self.docker().logs(id, Some(options));
        let mut lines = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let (stream, bytes) = match chunk.map_err(engine_error)? {
                LogOutput::StdErr { message } => (LogStream::Stderr, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => (LogStream::Stdout, message),
                LogOutput::StdIn { .. } => continue,
            };
            for line in String::from_utf8_lossy(&bytes).lines() {
                lines.push(timed_line(stream, line));
            }
        }
        Ok(lines)
    }
}

impl ContainerEngine {
    /// One reading of the engine's counters (no second sample: the caller
    /// works out rates from successive readings).
    pub async fn container_usage(&self, id: &str) -> Result<ContainerStats, EngineError> {
        self.ensure_container_owned(id).await?;
        let options = StatsOptions { stream: false, one_shot: true };
        let mut readings = self.docker().stats(id, Some(options));
        let Some(reading) = readings.next().await else {
            return Err(EngineError::Failed(format!("the engine reported no figures for '{id}'")));
        };
        let stats = reading.map_err(engine_error)?;
        let memory = stats.memory_stats.unwrap_or_default();
        // As `docker stats` shows it: without the page cache the kernel may drop.
        let reclaimable = memory.stats.as_ref().and_then(|s| s.get("inactive_file").copied()).unwrap_or(0);
        let networks = stats.networks.unwrap_or_default();
        Ok(ContainerStats {
            cpu_ns: stats.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage).unwrap_or(0),
            memory_bytes: memory.usage.unwrap_or(0).saturating_sub(reclaimable),
            memory_limit_bytes: memory.limit,
            network_rx_bytes: networks.values().filter_map(|n| n.rx_bytes).sum(),
            network_tx_bytes: networks.values().filter_map(|n| n.tx_bytes).sum(),
        })
    }
}

/// `2026-11-24T15:36:35.606705426Z text` as the engine writes it with timestamps.
fn timed_line(stream: LogStream, line: &str) -> LogLine {
    let (time, text) = match line.split_once(' ') {
        Some((time, text)) if time.len() >= 20 && time.as_bytes()[4] == b'-' && time.ends_with('Z') => {
            (Some(time.to_string()), text)
        }
        _ => (None, line),
    };
    LogLine { stream, time, text: text.to_string(), service: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_timestamp_is_split_from_the_text() {
        let line = timed_line(LogStream::Stderr, "2026-11-24T15:36:35.606705426Z {\"level\":\"warn\"} x");
        assert_eq!(line.time.as_deref(), Some("2026-11-24T15:36:35.606705426Z"));
        assert_eq!(line.text, "{\"level\":\"warn\"} x");
        let plain = timed_line(LogStream::Stdout, "no time here");
        assert_eq!((plain.time, plain.text.as_str()), (None, "no time here"));
    }
}
