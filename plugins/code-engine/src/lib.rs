//! IBM Cloud Code Engine backend: one deployment = one Code Engine app in the
//! configured project, managed through IAM and the v2 API over `wasi:http`.
//!
//! Code Engine has no "stopped" app, so here **stop** makes the app private to
//! its project (no public endpoint) and lets it scale to zero: it serves no
//! one outside the project and costs nothing while idle. **start** restores
//! its visibility and minimum scale. Both are PATCHes guarded by `If-Match`.

wit_bindgen::generate!({ world: "runtime-backend", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

mod client;
mod hosted_builds;
mod http;
mod limits;

use client::{ApiError, Client};
use exports::mcp_runtime::plugin::backend::{BackendError, Deployed, DeploymentStatus, Guest, Prepared, ResourceUsage};
use guest_kit::types::{
    BackendCapabilities, DeployRequest, DeploymentState, EffectiveGuardrails, IsolationLevel, LogLine, LogQuery,
    LogStream, ObservabilityType, Source, Transport, Visibility, Warning,
};
use mcp_runtime::plugin::key_value;
use mcp_runtime::plugin::logging::{log, Level};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Code Engine's defaults when nothing was asked (the host normally applies
/// `per_deployment_limits` first).
const DEFAULT_CPU_MILLIS: u32 = 1000;
const DEFAULT_MEMORY_BYTES: u64 = 4_000_000_000;
/// Code Engine's longest request: MCP streams may be long-lived.
const REQUEST_TIMEOUT_SECONDS: u32 = 600;
const BUILD_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What the host keeps for us between calls.
#[derive(Serialize, Deserialize)]
struct Handle {
    app: String,
    mcp_path: String,
    /// The server speaks the 2024-11-05 HTTP+SSE transport: the host bridges it.
    #[serde(default)]
    sse: bool,
}

/// What `start` restores after a `stop`, kept in the key-value store.
#[derive(Serialize, Deserialize)]
struct Running {
    min_instances: u32,
    domain: String,
}

struct CodeEngineBackend;

impl Guest for CodeEngineBackend {
    fn capabilities() -> BackendCapabilities {
        BackendCapabilities {
            supports_compose: false,
            supports_readonly_fs: false,
            supports_custom_capabilities: false,
            supports_capability_add: false,
            supports_build_cache: false,
            supports_egress_host_filtering: false,
            supports_pid_limits: false,
            supports_stdio: false,
            network_isolation_level: IsolationLevel::Project,
            observability_type: ObservabilityType::IbmCloud,
            max_cpu_millis: 12_000,
            max_memory_bytes: 48_000_000_000,
            max_timeout_seconds: REQUEST_TIMEOUT_SECONDS,
        }
    }

    fn validate(request: DeployRequest, g: EffectiveGuardrails) -> Result<Vec<Warning>, BackendError> {
        let settings = client::Settings::load().map_err(BackendError::Failed)?;
        let mut warnings = Vec::new();
        if hosted_builds::made_by_host(&request) {
            let build = &settings.build;
            warnings.extend(hosted_builds::check(
                &request,
                build.output_registry.as_deref(),
                build.output_secret.as_deref(),
            )?);
        }
        match &request.entry.source {
            Source::Compose(_) => {
                return Err(invalid(
                    "source.type",
                    "Code Engine runs no compose stacks: deploy each service as its own catalog entry",
                ));
            }
            Source::Github(_) => {
                if settings.build.output_registry.is_none() || settings.build.output_secret.is_none() {
                    return Err(invalid("source.type", "github sources need build.output_registry and build.output_secret in the ibm_code_engine backend"));
                }
                warnings.push(warn("source", "Code Engine builds have no cache: every build starts from scratch"));
            }
            Source::Image(_) => {}
        }
        let pair = resources(&g)?;
        if pair.rounded {
            let asked = format!(
                "{} millicores / {} MiB",
                g.cpu_millis.unwrap_or(DEFAULT_CPU_MILLIS),
                g.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES) >> 20
            );
            warnings.push(warn(
                "resources",
                &format!(
                    "Code Engine applies {} vCPU / {}, the smallest valid pair covering {asked}",
                    pair.cpu, pair.memory
                ),
            ));
        }
        if !g.network.egress_allowed {
            warnings.push(warn(
                "network.egress_allowed",
                "Code Engine controls egress per project, not per app: the project's setting applies",
            ));
        }
        if matches!(request.resources.visibility, Some(Visibility::Project)) {
            warnings.push(warn(
                "resources.visibility",
                "a project-only app is reachable from inside its project only, not through this runtime",
            ));
        }
        Ok(warnings)
    }

    fn prepare(request: DeployRequest) -> Result<Prepared, BackendError> {
        if hosted_builds::made_by_host(&request) {
            let settings = client::Settings::load().map_err(BackendError::Failed)?;
            let registry = settings.build.output_registry.as_deref().unwrap_or_default();
            return hosted_builds::prepare(&request, registry);
        }
        match request.entry.source {
            Source::Image(source) => Ok(Prepared { image: source.image, warnings: Vec::new(), build: None }),
            Source::Github(source) => build(&request.deployment_id, &source),
            Source::Compose(_) => Err(invalid("source.type", "Code Engine runs no compose stacks")),
        }
    }

    fn deploy(request: DeployRequest, g: EffectiveGuardrails, image: String) -> Result<Deployed, BackendError> {
        let client = Client::new().map_err(BackendError::Failed)?;
        let app = limits::app_name(&request.deployment_id);
        let pair = resources(&g)?;
        let asked = &request.resources;
        let min_instances = asked.min_scale.unwrap_or(client.settings.default_min_scale);
        let domain = match asked.visibility {
            Some(Visibility::Private) => "local_private",
            Some(Visibility::Project) => "local",
            _ => "local_public",
        };
        let bridged = hosted_builds::is_bridged(&request);
        let port = if bridged { hosted_builds::BRIDGE_PORT } else { request.entry.port };
        let probe = json!({"type": "tcp", "port": port, "interval": 10, "timeout": 1, "failure_threshold": 3});
        let secret = match &request.entry.source {
            Source::Image(s) if !hosted_builds::made_by_host(&request) => {
                s.registry_secret.clone().or(client.settings.registry_secret.clone())
            }
            _ => client.settings.build.output_secret.clone(),
        };
        let mut body = json!({
            "name": app,
            "image_reference": image,
            "image_port": port,
            "managed_domain_mappings": domain,
            "run_env_variables": request.env.iter().map(|(k, v)| json!({"type": "literal", "name": k, "value": v})).collect::<Vec<_>>(),
            // Set on every deployment: Code Engine has no self-service account defaults.
            "scale_cpu_limit": pair.cpu,
            "scale_memory_limit": pair.memory,
            "scale_min_instances": min_instances,
            "scale_max_instances": asked.max_scale.unwrap_or(client.settings.default_max_scale),
            "scale_request_timeout": REQUEST_TIMEOUT_SECONDS,
            "probe_readiness": probe,
            "probe_liveness": probe,
        });
        match &request.entry.command {
            Some(command) if bridged => body["run_commands"] = json!(hosted_builds::bridged_command(command)),
            Some(command) => body["run_commands"] = json!(command),
            None => {}
        }
        if let Some(args) = &request.entry.args {
            body["run_arguments"] = json!(args);
        }
        if let Some(secret) = secret {
            body["image_secret"] = secret.into();
        }
        client.call("POST", "/apps", Some(&body), None).map_err(api_error)?;
        remember(&app, &Running { min_instances, domain: domain.into() });
        log(Level::Info, &format!("created app {app}"));
        let sse = request.entry.transport == Transport::Sse;
        let mcp_path = if bridged { hosted_builds::BRIDGE_MCP_PATH.into() } else { request.entry.mcp_path };
        let handle = Handle { app, mcp_path, sse };
        Ok(Deployed { handle: serde_json::to_string(&handle).unwrap_or_default(), warnings: Vec::new() })
    }

    fn status(handle: String) -> Result<DeploymentStatus, BackendError> {
        let handle = parse(&handle)?;
        let client = Client::new().map_err(BackendError::Failed)?;
        let app = client.call("GET", &format!("/apps/{}", handle.app), None, None).map_err(api_error)?.body;
        let restart_count = restarts(&client, &handle.app);
        let reason = app["status_details"]["reason"].as_str().unwrap_or_default().to_string();
        let stopped = key_value::get(&stopped_key(&handle.app)).is_some();
        let (state, message) = match app["status"].as_str() {
            _ if stopped => (DeploymentState::Stopped, Some("private to its project and scaled to zero".into())),
            Some("ready") => (DeploymentState::Running, None),
            Some("warning") => (DeploymentState::Running, Some(format!("ready with a warning: {reason}"))),
            Some("failed") => (DeploymentState::Error, Some(format!("Code Engine reports the app failed: {reason}"))),
            _ => (DeploymentState::Starting, Some(reason).filter(|r| !r.is_empty())),
        };
        let base = app["endpoint"].as_str().filter(|e| !e.is_empty()).or(app["endpoint_internal"].as_str());
        let scheme = if handle.sse { "sse+" } else { "" };
        let endpoint = base.map(|b| format!("{scheme}{}{}", b.trim_end_matches('/'), handle.mcp_path));
        Ok(DeploymentStatus { state, message, endpoint, restart_count, exit_code: None, oom_killed: false })
    }

    fn stop(handle: String) -> Result<(), BackendError> {
        let handle = parse(&handle)?;
        patch_app(&handle.app, json!({"scale_min_instances": 0, "managed_domain_mappings": "local"}))?;
        let _ = key_value::set(&stopped_key(&handle.app), b"1");
        Ok(())
    }

    fn start(handle: String) -> Result<(), BackendError> {
        let handle = parse(&handle)?;
        let running: Running = key_value::get(&running_key(&handle.app))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Running { min_instances: 0, domain: "local_public".into() });
        patch_app(
            &handle.app,
            json!({"scale_min_instances": running.min_instances, "managed_domain_mappings": running.domain}),
        )?;
        let _ = key_value::delete(&stopped_key(&handle.app));
        Ok(())
    }

    fn remove(handle: String) -> Result<(), BackendError> {
        let handle = parse(&handle)?;
        let client = Client::new().map_err(BackendError::Failed)?;
        match client.call("DELETE", &format!("/apps/{}", handle.app), None, None) {
            Ok(_) | Err(ApiError::Status { status: 404, .. }) => {}
            Err(e) => return Err(api_error(e)),
        }
        let _ = key_value::delete(&running_key(&handle.app));
        let _ = key_value::delete(&stopped_key(&handle.app));
        Ok(())
    }

    /// A token from IAM (cached while fresh) and a read of the project.
    fn check() -> Result<(), BackendError> {
        let client = Client::new().map_err(BackendError::Unavailable)?;
        client.call("GET", "", None, None).map(drop).map_err(api_error)
    }

    /// The uptime, from when the running instance's container started; with
    /// an IBM Cloud Monitoring instance configured, the app's instances and
    /// requests from its platform metrics. Code Engine reports no CPU, memory
    /// or network figures, so those are absent.
    fn usage(handle: String) -> Result<ResourceUsage, BackendError> {
        let handle = parse(&handle)?;
        let client = Client::new().map_err(BackendError::Failed)?;
        let instances =
            client.call("GET", &format!("/apps/{}/instances", handle.app), None, None).map_err(api_error)?;
        let started_at = instances.body["instances"].as_array().into_iter().flatten().find_map(|i| {
            let state = &i["status_details"]["user_container"]["current_state"];
            state["started_at"].as_str().filter(|_| state["container_status"] == "running").map(String::from)
        });
        let mut usage = ResourceUsage {
            cpu_ns: None,
            memory_bytes: None,
            memory_limit_bytes: None,
            network_rx_bytes: None,
            network_tx_bytes: None,
            started_at,
            instances: None,
            requests_total: None,
        };
        if let Some((url, instance)) = client.settings.monitoring() {
            let of_app = |metric: &str| format!("sum({metric}{{ibm_codeengine_application_name=\"{}\"}})", handle.app);
            let read = |metric: &str| client.query_metric(&url, &instance, &of_app(metric)).map_err(api_error);
            usage.instances = read("ibm_codeengine_application_actual_instances")?.map(|n| n as u32);
            usage.requests_total = read("ibm_codeengine_application_requests_total")?.map(|n| n as u64);
        }
        Ok(usage)
    }

    fn logs(handle: String, query: LogQuery) -> Result<Vec<LogLine>, BackendError> {
        let handle = parse(&handle)?;
        let client = Client::new().map_err(BackendError::Failed)?;
        match client.settings.logs_query_url() {
            Some(url) => cloud_logs(&client, &url, &handle.app, query.tail),
            None => {
                let report = instances_report(&client, &handle.app)?;
                Ok(report.lines().map(|text| line(text.to_string(), None)).collect())
            }
        }
    }

    /// The project may hold apps that are not ours, and nothing marks ours
    /// beyond the name: leftovers are removed only for deployments the host
    /// still knows (`remove-leftovers`), never by listing the project.
    fn orphans(_known: Vec<String>) -> Result<Vec<String>, BackendError> {
        Ok(Vec::new())
    }

    /// The app and its build are named after the deployment, so they can be
    /// found without a handle.
    fn remove_leftovers(deployment_id: String) -> Result<(), BackendError> {
        let app = limits::app_name(&deployment_id);
        let client = Client::new().map_err(BackendError::Failed)?;
        for path in [format!("/apps/{app}"), format!("/builds/{app}-build")] {
            match client.call("DELETE", &path, None, None) {
                Ok(_) | Err(ApiError::Status { status: 404, .. }) => {}
                Err(e) => return Err(api_error(e)),
            }
        }
        let _ = key_value::delete(&running_key(&app));
        let _ = key_value::delete(&stopped_key(&app));
        Ok(())
    }
}

fn line(text: String, time: Option<String>) -> LogLine {
    LogLine { stream: LogStream::Stdout, time, text, service: None }
}

/// The app's lines from IBM Cloud Logs, where Code Engine sends them (timed
/// when the result's metadata has a `timestamp`).
fn cloud_logs(client: &Client, url: &str, app: &str, tail: u32) -> Result<Vec<LogLine>, BackendError> {
    let query = json!({
        "query": format!("app:\"codeengine\" AND codeengine.component:\"{app}\""),
        "metadata": {"syntax": "lucene", "tier": "frequent_search", "limit": tail.max(1)},
    });
    let stream = client.query_logs(url, &query).map_err(api_error)?;
    let mut lines = Vec::new();
    for event in
        stream.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str::<Value>(d).ok())
    {
        if let Some(message) = event["error"]["message"].as_str() {
            return Err(BackendError::Failed(format!("IBM Cloud Logs: {message}")));
        }
        for result in event["result"]["results"].as_array().into_iter().flatten() {
            let raw = result["user_data"].as_str().unwrap_or_default();
            let record: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
            let metadata = result["metadata"].as_array().into_iter().flatten();
            let time = metadata.filter(|m| m["key"] == "timestamp").find_map(|m| m["value"].as_str()).map(String::from);
            lines.push(line(record["message"].as_str().unwrap_or(raw).to_string(), time));
        }
    }
    Ok(lines)
}

/// Without a Cloud Logs instance: say so, and show the instances and their restarts.
fn instances_report(client: &Client, app: &str) -> Result<String, BackendError> {
    let instances = client.call("GET", &format!("/apps/{app}/instances"), None, None).map_err(api_error)?.body;
    let mut out = String::from(
        "Code Engine keeps app logs in IBM Cloud Logs only: set observability.cloud_logs_instance_id in the \
         ibm_code_engine backend to read them here.\nInstances:\n",
    );
    for i in instances["instances"].as_array().into_iter().flatten() {
        let details = &i["status_details"];
        let state = &details["user_container"]["current_state"];
        out.push_str(&format!(
            "  {} ({}): {}, restarts {}{}\n",
            i["name"].as_str().unwrap_or("?"),
            i["revision_name"].as_str().unwrap_or("?"),
            i["status"].as_str().unwrap_or("?"),
            details["restarts"].as_u64().unwrap_or(0),
            state["reason"].as_str().map(|r| format!(", {r}")).unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// Build and build run, polled to the end; the image is pinned by digest.
fn build(deployment_id: &str, source: &guest_kit::types::GithubSource) -> Result<Prepared, BackendError> {
    let client = Client::new().map_err(BackendError::Failed)?;
    let build_settings = &client.settings.build;
    let (Some(registry), Some(secret)) = (&build_settings.output_registry, &build_settings.output_secret) else {
        return Err(invalid("source.type", "github sources need build.output_registry and build.output_secret"));
    };
    let app = limits::app_name(deployment_id);
    let url = if source.repo.contains("://") || source.repo.starts_with("git@") {
        source.repo.clone()
    } else {
        format!("https://github.com/{}", source.repo)
    };
    let output_image = format!("{}/{app}", registry.trim_end_matches('/'));
    let mut spec = json!({
        "name": format!("{app}-build"), "output_image": output_image, "output_secret": secret, "strategy_type": "dockerfile",
        "source_url": url, "strategy_spec_file": source.dockerfile, "timeout": build_settings.timeout_seconds,
    });
    if let Some(revision) = &source.revision {
        spec["source_revision"] = revision.clone().into();
    }
    if let Some(dir) = &source.context_dir {
        spec["source_context_dir"] = dir.clone().into();
    }
    client.call("POST", "/builds", Some(&spec), None).map_err(api_error)?;
    let run = client
        .call("POST", "/build_runs", Some(&json!({"build_name": format!("{app}-build")})), None)
        .map_err(api_error)?
        .body;
    let run_name = run["name"].as_str().unwrap_or_default().to_string();
    let polls = build_settings.timeout_seconds / BUILD_POLL.as_secs() as u32 + 1;
    for _ in 0..polls {
        let run = client.call("GET", &format!("/build_runs/{run_name}"), None, None).map_err(api_error)?.body;
        match run["status"].as_str() {
            Some("succeeded") => {
                let digest = run["status_details"]["output_digest"].as_str().unwrap_or_default();
                let image = if digest.is_empty() { output_image } else { format!("{output_image}@{digest}") };
                let warnings =
                    vec![warn("source", "Code Engine builds have no cache: every build starts from scratch")];
                return Ok(Prepared { image, warnings, build: None });
            }
            Some("failed") => {
                let reason = run["status_details"]["reason"].as_str().unwrap_or("unknown");
                return Err(BackendError::Failed(format!("build run {run_name} failed: {reason}")));
            }
            _ => std::thread::sleep(BUILD_POLL),
        }
    }
    Err(BackendError::Failed(format!("build run {run_name} did not finish within {}s", build_settings.timeout_seconds)))
}

/// Reads the app's entity tag and patches with it, so a concurrent change is never overwritten.
fn patch_app(app: &str, patch: Value) -> Result<(), BackendError> {
    let client = Client::new().map_err(BackendError::Failed)?;
    let current = client.call("GET", &format!("/apps/{app}"), None, None).map_err(api_error)?;
    let etag =
        current.etag.or_else(|| current.body["entity_tag"].as_str().map(String::from)).unwrap_or_else(|| "*".into());
    client.call("PATCH", &format!("/apps/{app}"), Some(&patch), Some(&etag)).map_err(api_error)?;
    Ok(())
}

fn restarts(client: &Client, app: &str) -> u32 {
    let instances =
        client.call("GET", &format!("/apps/{app}/instances"), None, None).map(|a| a.body).unwrap_or_default();
    let total: u64 = instances["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["status_details"]["restarts"].as_u64())
        .sum();
    total as u32
}

fn resources(g: &EffectiveGuardrails) -> Result<limits::Pair, BackendError> {
    let cpu = g.cpu_millis.unwrap_or(DEFAULT_CPU_MILLIS);
    let memory = g.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
    limits::pair_for(cpu, memory)
        .ok_or_else(|| invalid("resources", "above Code Engine's largest pair, 12 vCPU / 48 GB"))
}

fn remember(app: &str, running: &Running) {
    let _ = key_value::set(&running_key(app), &serde_json::to_vec(running).unwrap_or_default());
}

fn running_key(app: &str) -> String {
    format!("running:{app}")
}

fn stopped_key(app: &str) -> String {
    format!("stopped:{app}")
}

fn parse(handle: &str) -> Result<Handle, BackendError> {
    serde_json::from_str(handle).map_err(|e| BackendError::Failed(format!("unreadable handle: {e}")))
}

fn invalid(field: &str, reason: &str) -> BackendError {
    BackendError::Invalid(guest_kit::denial(field, reason))
}

fn warn(field: &str, message: &str) -> Warning {
    guest_kit::warning(field, message)
}

fn api_error(e: ApiError) -> BackendError {
    match e {
        ApiError::Status { status: 404, .. } => BackendError::NotFound(e.to_string()),
        ApiError::Status { status: 400 | 409 | 412 | 422, .. } => BackendError::Failed(e.to_string()),
        ApiError::Unavailable(_) => BackendError::Unavailable(e.to_string()),
        other => BackendError::Failed(other.to_string()),
    }
}

export!(CodeEngineBackend);
