//! Log search: a server's lines as its backend reports them (stream, time,
//! text, service), read as structured where they are JSON — the common
//! `level`/`severity`, `msg`/`message` and `time`/`ts`/`timestamp` keys — so
//! level and time filters work on them; a plain line keeps the engine's time.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Most lines one request may ask for.
pub const MAX_TAIL: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = LogStream)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A line as the backend reported it.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Stream,
    /// When the engine received it (RFC 3339), if it knows.
    pub time: Option<String>,
    pub text: String,
    /// The compose service (or per-session server) that wrote it.
    pub service: Option<String>,
}

/// Which lines the backend is asked for: a coarse window, narrowed here.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub tail: u32,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(as = LogLevel)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// As loggers write it: a name in any case (`WARNING`, `err`, `critical`),
    /// or a number as pino and bunyan write it (10 trace … 60 fatal).
    pub fn parse(value: &serde_json::Value) -> Option<Level> {
        if let Some(n) = value.as_u64() {
            return Some(match n {
                0..=19 => Level::Trace,
                20..=29 => Level::Debug,
                30..=39 => Level::Info,
                40..=49 => Level::Warn,
                50..=59 => Level::Error,
                _ => Level::Fatal,
            });
        }
        Some(match value.as_str()?.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" | "information" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "critical" | "crit" | "alert" | "emergency" | "panic" => Level::Fatal,
            _ => return None,
        })
    }
}

/// A line read: what it says and, where it says so, its level and time.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = LogEntry)]
pub struct Entry {
    pub time: Option<DateTime<Utc>>,
    pub stream: Stream,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub level: Option<Level>,
    pub message: String,
    /// The line as written.
    pub line: String,
    /// When the engine received it: what following a log goes by.
    #[serde(skip)]
    pub received: Option<DateTime<Utc>>,
}

impl Entry {
    pub fn read(line: Line) -> Entry {
        let engine_time = line.time.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
        let json: Option<serde_json::Map<String, serde_json::Value>> =
            line.text.trim_start().starts_with('{').then(|| serde_json::from_str(line.text.trim()).ok()).flatten();
        let Some(fields) = json else {
            return Entry {
                time: engine_time,
                stream: line.stream,
                service: line.service,
                level: None,
                message: line.text.clone(),
                line: line.text,
                received: engine_time,
            };
        };
        let first = |keys: &[&str]| keys.iter().find_map(|k| fields.get(*k));
        let level = first(&["level", "severity", "lvl", "log.level"]).and_then(Level::parse);
        let message = first(&["msg", "message"]).and_then(|m| m.as_str()).unwrap_or(&line.text).to_string();
        let time = first(&["time", "ts", "timestamp", "@timestamp"]).and_then(json_time).or(engine_time);
        Entry {
            time,
            stream: line.stream,
            service: line.service,
            level,
            message,
            line: line.text,
            received: engine_time,
        }
    }

    /// As `GET /runtimes/{id}/logs` writes it as text: the line, after its service.
    pub fn as_text(&self) -> String {
        match &self.service {
            Some(service) => format!("{service} | {}\n", self.line),
            None => format!("{}\n", self.line),
        }
    }
}

/// RFC 3339, or Unix seconds (or milliseconds, when that large).
fn json_time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    if let Some(text) = value.as_str() {
        return DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc());
    }
    let n = value.as_f64()?;
    let millis = if n > 1e11 { n } else { n * 1e3 };
    DateTime::from_timestamp_millis(millis as i64)
}

/// What a search keeps.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// This level and above; a line without a level is left out.
    pub level: Option<Level>,
    /// Case-insensitive, anywhere in the line.
    pub contains: Option<String>,
    pub service: Option<String>,
}

impl Filter {
    /// Whether it narrows what the backend returns: then all it has is asked
    /// for. (Times are not handed down: a JSON line's own time may differ
    /// from when the engine received it.)
    pub fn narrows(&self) -> bool {
        self.level.is_some()
            || self.contains.is_some()
            || self.service.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }

    pub fn keeps(&self, entry: &Entry) -> bool {
        let in_window = |bound: Option<DateTime<Utc>>, after: bool| match (bound, entry.time) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(bound), Some(t)) => (t >= bound) == after || t == bound,
        };
        in_window(self.since, true)
            && in_window(self.until, false)
            && self.level.is_none_or(|min| entry.level.is_some_and(|l| l >= min))
            && self.service.as_ref().is_none_or(|s| entry.service.as_ref() == Some(s))
            && self.contains.as_ref().is_none_or(|q| entry.line.to_lowercase().contains(&q.to_lowercase()))
    }
}

/// Reads, filters and keeps the last `tail`, oldest first.
pub fn search(lines: Vec<Line>, filter: &Filter, tail: u32) -> Vec<Entry> {
    let mut kept: Vec<Entry> = lines.into_iter().map(Entry::read).filter(|e| filter.keeps(e)).collect();
    // A stack's services come one after another: in time order where every line has one.
    if kept.iter().all(|e| e.time.is_some()) {
        kept.sort_by_key(|e| e.time);
    }
    let skip = kept.len().saturating_sub(tail as usize);
    kept.split_off(skip)
}

#[cfg(test)]
mod tests;
