use super::*;

const STACK: &str = r#"
services:
  mcp:
    image: 127.0.0.1:5000/mcp-fixture:test
    command: ["--sidecar-client"]
    environment: [SIDECAR=http://cache:8080, "MODE=fast"]
    depends_on:
      cache: {condition: service_healthy}
    read_only: true
    tmpfs: /tmp
    cap_drop: [ALL]
    mem_limit: 128m
    cpus: 0.25
    pids_limit: 32
    ports: ["8080:8080"]
  cache:
    image: 127.0.0.1:5000/mcp-fixture:test
    environment: {ROLE: cache}
    healthcheck: {test: ["CMD", "/mcp-fixture", "probe"], interval: 1s, timeout: 500ms, retries: 5}
    volumes: [cache-data:/data]
    deploy: {resources: {limits: {cpus: "0.5", memory: 64m}}}
volumes:
  cache-data:
"#;

fn at(text: &str, main: &str) -> String {
    match Stack::parse(text, main) {
        Err(e) => e.at,
        Ok(_) => "accepted".into(),
    }
}

/// The example stack with one service key replaced.
fn with(service_key: &str) -> String {
    STACK.replacen("    read_only: true\n", &format!("    read_only: true\n    {service_key}\n"), 1)
}

#[test]
fn a_stack_is_read_in_dependency_order() {
    let stack = Stack::parse(STACK, "mcp").unwrap();
    let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cache", "mcp"], "dependencies start first");
    let (cache, mcp) = (&stack.services[0], &stack.services[1]);
    assert_eq!(mcp.depends_on, [("cache".to_string(), Condition::Healthy)]);
    assert_eq!(mcp.environment["SIDECAR"], "http://cache:8080");
    assert_eq!(cache.environment["ROLE"], "cache");
    assert_eq!((mcp.cpu_millis, mcp.memory_bytes, mcp.pids), (Some(250), Some(128 << 20), Some(32)));
    assert_eq!((cache.cpu_millis, cache.memory_bytes), (Some(500), Some(64 << 20)), "deploy.resources.limits");
    assert_eq!(cache.volumes, [("cache-data".to_string(), "/data".to_string())]);
    let health = cache.healthcheck.as_ref().unwrap();
    assert_eq!((health.test.len(), health.interval, health.retries), (3, Duration::from_secs(1), 5));
    assert_eq!(health.test[0], "CMD");
    assert_eq!(health.timeout, Duration::from_millis(500));
    assert_eq!(mcp.tmpfs, ["/tmp"]);
    assert_eq!(stack.warnings.len(), 1, "ports are not published: {:?}", stack.warnings);
    assert_eq!(stack.images(), ["127.0.0.1:5000/mcp-fixture:test"]);
}

use std::time::Duration;

#[test]
fn what_would_loosen_the_guardrails_is_refused_naming_service_and_key() {
    for (key, expected) in [
        ("privileged: true", "services.mcp.privileged"),
        ("network_mode: host", "services.mcp.network_mode"),
        ("network_mode: \"container:other\"", "services.mcp.network_mode"),
        ("pid: host", "services.mcp.pid"),
        ("ipc: host", "services.mcp.ipc"),
        ("userns_mode: host", "services.mcp.userns_mode"),
        ("devices: [/dev/kvm]", "services.mcp.devices"),
        ("security_opt: [seccomp=unconfined]", "services.mcp.security_opt"),
        ("sysctls: {net.ipv4.ip_forward: 1}", "services.mcp.sysctls"),
        ("volumes: [/etc:/host-etc]", "services.mcp.volumes"),
        ("volumes: [./data:/data]", "services.mcp.volumes"),
        ("volumes: [{type: bind, source: /, target: /host}]", "services.mcp.volumes"),
        ("build: .", "services.mcp.build"),
        ("restart: always", "services.mcp.restart"),
        ("networks: [outside]", "services.mcp.networks"),
        ("deploy: {replicas: 3}", "services.mcp.deploy.replicas"),
        ("healthcheck: {test: [CURL, localhost]}", "services.mcp.healthcheck.test"),
    ] {
        assert_eq!(at(&with(key), "mcp"), expected, "{key}");
    }
}

#[test]
fn the_stack_hangs_together() {
    assert_eq!(at(STACK, "nobody"), "main_service");
    let unknown = STACK.replace("cache: {condition: service_healthy}", "ghost: {condition: service_started}");
    assert_eq!(at(&unknown, "mcp"), "services.mcp.depends_on");
    let cycle =
        STACK.replace("    environment: {ROLE: cache}", "    environment: {ROLE: cache}\n    depends_on: [mcp]");
    assert!(at(&cycle, "mcp").ends_with(".depends_on"), "a cycle is refused");
    assert_eq!(at("networks: {}\nservices: {a: {image: x}}", "a"), "networks");
    assert_eq!(at("services: {}", "a"), "services");
    assert_eq!(at("services: {a: {command: x}}", "a"), "services.a.image");
    assert_eq!(at("services: {a: {image: x}}\nvolumes: {v: {driver: nfs}}", "a"), "volumes.v.driver");
}

#[test]
fn a_stack_stays_within_its_profile() {
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "name": "restricted", "capabilities": {"drop_all": true, "add": ["NET_BIND_SERVICE"]},
        "resources": {"max_cpu": "0.5", "max_memory": "512m"}
    }))
    .unwrap();
    let over = Stack::parse(STACK, "mcp").unwrap();
    let refused = over.check_profile(&profile).unwrap_err();
    assert_eq!(refused.at, "services.mcp.cpus", "the service that tips it over: {refused}");
    let small = |text: String| text.replace("cpus: \"0.5\"", "cpus: \"0.1\"");
    let fits = Stack::parse(&small(STACK.to_string()), "mcp").unwrap();
    assert_eq!(fits.check_profile(&profile), Ok(()), "0.35 CPU and 192 MiB fit");
    let caps = Stack::parse(&small(with("cap_add: [SYS_ADMIN]")), "mcp").unwrap();
    assert_eq!(caps.check_profile(&profile).unwrap_err().at, "services.mcp.cap_add");
    let allowed = Stack::parse(&small(with("cap_add: [NET_BIND_SERVICE]")), "mcp").unwrap();
    assert_eq!(allowed.check_profile(&profile), Ok(()), "what the profile adds may be added");
}

use crate::guardrails::Profile;
