//! One service of a stack, in the host's terms: what runs, what it waits
//! for, and what it asks of the guardrails.

use docker_compose_types::{Command, Entrypoint, Environment, HealthcheckTest, Service, Tmpfs, Volumes};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::time::Duration;

use super::{dependencies, refuse, ComposeError, Stack};
use crate::guardrails::{parse_cpu, parse_memory, Profile};

/// What a service waits for of a dependency before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Docker's form: `CMD` and the program with its arguments, or `CMD-SHELL` and a command line.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackService {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub depends_on: Vec<(String, Condition)>,
    pub healthcheck: Option<HealthCheck>,
    /// Named volumes: (volume, path in the container).
    pub volumes: Vec<(String, String)>,
    pub tmpfs: Vec<String>,
    pub user: Option<String>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u32>,
    pub pids: Option<u32>,
}

impl StackService {
    pub(super) fn read(
        name: &str,
        s: &Service,
        raw: &Value,
        warnings: &mut Vec<(String, String)>,
    ) -> Result<StackService, ComposeError> {
        let at = |key: &str| format!("services.{name}.{key}");
        let image = s.image.clone().filter(|i| !i.trim().is_empty()).ok_or_else(|| refuse(at("image"), "required"))?;
        if !matches!(s.ports, docker_compose_types::Ports::Short(ref p) if p.is_empty()) {
            warnings.push((at("ports"), "not published: the MCP server is reached through the host".into()));
        }
        let environment = match &s.environment {
            Environment::List(items) => items
                .iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (item.clone(), String::new()),
                })
                .collect(),
            Environment::KvPair(map) => {
                map.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.to_string()).unwrap_or_default())).collect()
            }
        };
        let mut tmpfs = match &s.tmpfs {
            Some(Tmpfs::Simple(path)) => vec![path.clone()],
            Some(Tmpfs::List(paths)) => paths.clone(),
            None => Vec::new(),
        };
        let mut volumes = Vec::new();
        for volume in &s.volumes {
            match volume {
                Volumes::Simple(spec) => {
                    let mut parts = spec.split(':');
                    let (source, target) = (parts.next().unwrap_or_default(), parts.next());
                    let Some(target) = target else {
                        return Err(refuse(at("volumes"), format!("'{spec}' names no volume: use `name:/path`")));
                    };
                    volumes.push((named_volume(&at("volumes"), source)?, target.to_string()));
                }
                Volumes::Advanced(v) => match v._type.as_str() {
                    "volume" => {
                        let source = v.source.as_deref().unwrap_or_default();
                        volumes.push((named_volume(&at("volumes"), source)?, v.target.clone()));
                    }
                    "tmpfs" => tmpfs.push(v.target.clone()),
                    other => {
                        return Err(refuse(at("volumes"), format!("'{other}' mounts are refused: named volumes only")))
                    }
                },
            }
        }
        let (mut cpu_millis, mut memory_bytes) =
            (None, s.mem_limit.as_deref().map(|m| memory(&at("mem_limit"), m)).transpose()?);
        if let Some(cpus) = raw.get("cpus") {
            cpu_millis = Some(cpu(&at("cpus"), &scalar(cpus))?);
        }
        let pids = match raw.get("pids_limit") {
            Some(p) => Some(
                p.as_u64()
                    .filter(|p| (1..=u64::from(u32::MAX)).contains(p))
                    .ok_or_else(|| refuse(at("pids_limit"), "a positive whole number"))? as u32,
            ),
            None => None,
        };
        if let Some(deploy) = raw.get("deploy") {
            let (limit_cpu, limit_memory) = deploy_limits(&at("deploy"), deploy)?;
            cpu_millis = cpu_millis.or(limit_cpu);
            memory_bytes = memory_bytes.or(limit_memory);
        }
        Ok(StackService {
            name: name.into(),
            image,
            command: s.command.as_ref().map(|c| match c {
                Command::Simple(line) => line.split_whitespace().map(String::from).collect(),
                Command::Args(args) => args.clone(),
            }),
            entrypoint: s.entrypoint.as_ref().map(|e| match e {
                Entrypoint::Simple(line) => line.split_whitespace().map(String::from).collect(),
                Entrypoint::List(args) => args.clone(),
            }),
            environment,
            depends_on: dependencies(name, &s.depends_on)?,
            healthcheck: s.healthcheck.as_ref().map(|h| health(&at("healthcheck"), h)).transpose()?.flatten(),
            volumes,
            tmpfs,
            user: s.user.clone(),
            read_only: s.read_only,
            cap_add: s.cap_add.clone(),
            cap_drop: s.cap_drop.clone(),
            memory_bytes,
            cpu_millis,
            pids,
        })
    }
}

impl Stack {
    /// What the profile allows: capabilities added only where the profile
    /// adds them, and the stack as a whole within the profile's CPU and
    /// memory (a stack that cannot fit is refused naming the service that
    /// tips it over).
    pub fn check_profile(&self, profile: &Profile) -> Result<(), ComposeError> {
        let max_cpu = profile.resources.max_cpu.as_deref().and_then(parse_cpu);
        let max_memory = profile.resources.max_memory.as_deref().and_then(parse_memory);
        let (mut cpu, mut memory) = (0u64, 0u64);
        for s in &self.services {
            for cap in &s.cap_add {
                let allowed = !profile.capabilities.drop_all
                    || profile.capabilities.add.iter().any(|a| a.eq_ignore_ascii_case(cap.trim_start_matches("CAP_")));
                if !allowed {
                    let reason = format!("'{cap}' is beyond what profile '{}' allows", profile.name);
                    return Err(refuse(format!("services.{}.cap_add", s.name), reason));
                }
            }
            cpu += u64::from(s.cpu_millis.unwrap_or(0));
            memory += s.memory_bytes.unwrap_or(0);
            if max_cpu.is_some_and(|max| cpu > u64::from(max)) {
                let reason = format!(
                    "the stack's CPU comes to {cpu}m, beyond profile '{}' ({}m)",
                    profile.name,
                    max_cpu.unwrap_or(0)
                );
                return Err(refuse(format!("services.{}.cpus", s.name), reason));
            }
            if max_memory.is_some_and(|max| memory > max) {
                let reason = format!("the stack's memory comes to {memory} bytes, beyond profile '{}'", profile.name);
                return Err(refuse(format!("services.{}.mem_limit", s.name), reason));
            }
        }
        Ok(())
    }
}

/// A named volume's name; a host path is refused.
fn named_volume(at: &str, source: &str) -> Result<String, ComposeError> {
    let is_name = !source.is_empty()
        && source.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && source.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !is_name {
        return Err(refuse(at, format!("'{source}' is a host path: only named volumes are mounted")));
    }
    Ok(source.to_string())
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn cpu(at: &str, text: &str) -> Result<u32, ComposeError> {
    parse_cpu(text).ok_or_else(|| refuse(at, format!("'{text}' is not a CPU quantity such as 0.5")))
}

fn memory(at: &str, text: &str) -> Result<u64, ComposeError> {
    parse_memory(text).ok_or_else(|| refuse(at, format!("'{text}' is not a memory quantity such as 256m")))
}

/// `deploy.resources.limits` (cpus, memory); any other `deploy` key is refused.
fn deploy_limits(at: &str, deploy: &Value) -> Result<(Option<u32>, Option<u64>), ComposeError> {
    let only = |value: &Value, at: &str, allowed: &[&str]| -> Result<(), ComposeError> {
        let map = value.as_mapping().ok_or_else(|| refuse(at, "must be a mapping"))?;
        match map.keys().filter_map(Value::as_str).find(|k| !allowed.contains(k)) {
            Some(key) => Err(refuse(format!("{at}.{key}"), format!("not supported (only {})", allowed.join(", ")))),
            None => Ok(()),
        }
    };
    only(deploy, at, &["resources"])?;
    let Some(resources) = deploy.get("resources") else { return Ok((None, None)) };
    only(resources, &format!("{at}.resources"), &["limits"])?;
    let Some(limits) = resources.get("limits") else { return Ok((None, None)) };
    let at = format!("{at}.resources.limits");
    only(limits, &at, &["cpus", "memory"])?;
    let cpus = limits.get("cpus").map(|c| cpu(&format!("{at}.cpus"), &scalar(c))).transpose()?;
    let memory = limits.get("memory").map(|m| memory(&format!("{at}.memory"), &scalar(m))).transpose()?;
    Ok((cpus, memory))
}

/// A health check in Docker's form; `None` when disabled (`NONE`).
fn health(at: &str, h: &docker_compose_types::Healthcheck) -> Result<Option<HealthCheck>, ComposeError> {
    let test = match &h.test {
        Some(HealthcheckTest::Multiple(parts)) => parts.clone(),
        Some(HealthcheckTest::Single(line)) => vec!["CMD-SHELL".into(), line.clone()],
        None => return Err(refuse(format!("{at}.test"), "required")),
    };
    match test.split_first() {
        Some((kind, _)) if kind == "NONE" => return Ok(None),
        Some((kind, rest)) if (kind == "CMD" || kind == "CMD-SHELL") && !rest.is_empty() => {}
        _ => {
            let reason = "[\"CMD\", program, args…], [\"CMD-SHELL\", command line], a command line, or [\"NONE\"]";
            return Err(refuse(format!("{at}.test"), reason));
        }
    }
    let duration = |value: &Option<String>, key: &str, default: u64| match value {
        None => Ok(Duration::from_secs(default)),
        Some(text) => parse_duration(text)
            .ok_or_else(|| refuse(format!("{at}.{key}"), format!("'{text}' is not a duration such as 5s"))),
    };
    Ok(Some(HealthCheck {
        test,
        interval: duration(&h.interval, "interval", 30)?,
        timeout: duration(&h.timeout, "timeout", 30)?,
        retries: u32::try_from(h.retries).ok().filter(|r| *r > 0).unwrap_or(3),
    }))
}

/// Compose durations: `1m30s`, `5s`, `250ms`.
fn parse_duration(text: &str) -> Option<Duration> {
    let (mut total, mut number) = (Duration::ZERO, String::new());
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = std::mem::take(&mut number).parse().ok()?;
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * unit);
    }
    number.is_empty().then_some(total).filter(|d| !d.is_zero())
}
