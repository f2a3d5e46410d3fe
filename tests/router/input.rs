//! Bad input is answered 4xx with a JSON body naming the field, and nothing
//! is stored; plugin faults fail the one request, closed. Through the real
//! router in-process, with the stub backend as the default.

use crate::support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{refused, TestHost};

#[tokio::test(flavor = "multi_thread")]
async fn catalog_and_guardrails_crud_validate_and_keep_what_is_stored() {
    let host = TestHost::in_process(|_| {}).await;

    let (status, all) = host.get("/catalog").await;
    assert_eq!(status, StatusCode::OK);
    let slugs = support::pluck(&all, "/slug");
    assert!(slugs.contains(&"fixture"));
    let (_, found) = host.get("/catalog?q=PROBE&backend=docker&tag=test").await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");

    let entry = json!({"name": "New", "slug": "new-entry", "source": {"type": "docker", "image": "ghcr.io/x/y:1"}, "guardrails_profile": "airgapped"});
    assert_eq!(host.post("/catalog", entry.clone()).await.0, StatusCode::CREATED);
    assert_eq!(host.post("/catalog", entry.clone()).await.0, StatusCode::CONFLICT);
    let mut bad = entry.clone();
    bad["guardrails_profile"] = json!("ghost");
    assert_eq!(refused(&host, "/catalog", bad).await.1, "guardrails_profile");
    assert_eq!(
        refused(&host, "/catalog", json!({"name": "x", "slug": "x", "source": {"type": "ftp"}})).await.1,
        "source.type"
    );
    // A compose file is a security boundary: what would loosen the guardrails is refused by service and key.
    let stack = |service: &str| {
        json!({"name": "Stack", "slug": "stack", "source": {"type": "compose", "main_service": "mcp",
               "compose_file": format!("services:\n  mcp: {{image: x/mcp:1}}\n  helper: {{image: x/h:1, {service}}}\n")}})
    };
    for (key, field) in [
        ("privileged: true", "source.compose_file.services.helper.privileged"),
        ("network_mode: host", "source.compose_file.services.helper.network_mode"),
        ("volumes: ['/:/host']", "source.compose_file.services.helper.volumes"),
        ("depends_on: [ghost]", "source.compose_file.services.helper.depends_on"),
    ] {
        assert_eq!(refused(&host, "/catalog", stack(key)).await.1, field, "{key}");
    }
    assert_eq!(host.get("/catalog/stack").await.0, StatusCode::NOT_FOUND, "nothing refused is stored");
    // A remote entry: an http(s) URL, and only it may be marked for the gateway.
    let remote =
        json!({"name": "Hosted", "slug": "hosted", "source": {"type": "remote", "url": "https://mcp.example/mcp"}});
    let mut bad = remote.clone();
    bad["source"]["url"] = json!("file:///etc/passwd");
    assert_eq!(refused(&host, "/catalog", bad).await.1, "source.url");
    let mut marked = entry.clone();
    marked["register_with_gateway"] = json!(true);
    assert_eq!(refused(&host, "/catalog", marked).await.1, "register_with_gateway");
    assert_eq!(host.post("/catalog", remote).await.0, StatusCode::CREATED);
    let (status, body) = host.request(reqwest::Method::PUT, "/catalog/hosted/registration", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "no gateway configured: {body}");
    let (status, view) = host.get("/catalog/hosted/registration").await;
    assert_eq!((status, &view["registration"]), (StatusCode::OK, &Value::Null), "{view}");
    assert_eq!(host.get("/catalog/ghost/registration").await.0, StatusCode::NOT_FOUND);
    let mut changed = entry.clone();
    changed["deprecated"] = json!(true);
    let (status, _) = host.request(reqwest::Method::PUT, "/catalog/new-entry", Some(changed)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, visible) = host.get("/catalog").await;
    assert!(!visible.to_string().contains("new-entry"), "deprecated entries are hidden");
    let (_, hidden) = host.get("/catalog?include_deprecated=true").await;
    assert!(hidden.to_string().contains("new-entry"));

    let (_, presets) = host.get("/guardrails").await;
    let names = support::pluck(&presets, "/name");
    assert_eq!(names, ["airgapped", "restricted", "standard", "unrestricted"]);
    let (status, _) = host.delete("/guardrails/airgapped").await;
    assert_eq!(status, StatusCode::CONFLICT, "a profile in use is kept");
    let profile = json!({"name": "tight", "resources": {"max_memory": "64m", "max_cpu": "0.1"}, "network": {"egress_allowed": false}});
    assert_eq!(host.post("/guardrails", profile).await.0, StatusCode::CREATED);
    assert_eq!(
        refused(&host, "/guardrails", json!({"name": "bad", "resources": {"max_memory": "64 apples"}})).await.1,
        "resources.max_memory"
    );
    assert_eq!(
        refused(&host, "/guardrails", json!({"name": "bad", "capabilities": {"add": ["net_admin"]}})).await.1,
        "capabilities.add[0]"
    );

    let (_, compat) = host.get("/guardrails/standard/compatibility?backend=stub").await;
    assert_eq!(compat["fields"]["filesystem.read_only_root"]["status"], "enforced", "{compat}");
    assert_eq!(compat["fields"]["network.allowed_hosts"]["status"], "enforced", "{compat}");
    let (status, _) = host.get("/guardrails/standard/compatibility?backend=nowhere").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, plugins) = host.get("/plugins").await;
    let docker = plugins.as_array().unwrap().iter().find(|p| p["id"] == "docker").expect("docker plugin listed");
    assert_eq!(docker["world"], "runtime-backend");
    assert_eq!(docker["grants"], json!(["logging", "key-value", "container-engine", "source"]));
    assert_eq!(docker["sha256"].as_str().unwrap().len(), 64);
    let (_, backends) = host.get("/backends").await;
    assert_eq!(backends[0]["name"], "docker");
    assert_eq!(backends[0]["capabilities"]["supports_readonly_fs"], true, "{backends}");

    let (_, events) = host.get("/events?type=catalog").await;
    let kinds = support::pluck(&events, "/type");
    assert!(kinds.contains(&"catalog.created") && kinds.contains(&"catalog.updated"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_faulty_policy_fails_its_request_and_the_host_keeps_serving() {
    for (plugin, expected) in
        [("fault-trap", "trapped"), ("fault-loop", "CPU budget"), ("fault-memory", "memory limit")]
    {
        let host = TestHost::in_process(|c| c.policy_chain = vec![plugin.to_string()]).await;
        let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
        assert_eq!(answer["plugin"], plugin);
        assert!(answer["error"].as_str().unwrap().contains(expected), "{answer}");
        // Fail closed: nothing stored, nothing created; and the host still answers.
        assert_eq!(host.get("/runtimes").await.1, json!([]));
        assert!(host.owned_containers().is_empty());
        let (status, compat) = host.get("/guardrails/restricted/compatibility?backend=stub").await;
        assert_eq!(status, StatusCode::OK, "the default evaluator still works: {compat}");
    }
}

/// A caller without the right is refused before their input is read; every
/// refusal is JSON, whatever rejected it; profiles are validated in full.
#[tokio::test(flavor = "multi_thread")]
async fn roles_come_before_input_and_every_error_is_json() {
    let host = TestHost::in_process(|c| c.api.max_body_bytes = 16 * 1024).await;
    let viewer = host.token("viewer@example.com", &[mcp_runtime::auth::Role::Viewer]);
    for (path, body) in [
        ("/catalog", json!({"name": "no slug"})),
        ("/guardrails", json!({"capabilities": {"add": ["NOT_A_CAP"]}})),
        ("/runtimes/deploy", json!({"colour": "red"})),
        ("/approvals/any/approve", json!({"notes": 7})),
    ] {
        let (status, answer) = host.request_as(Some(&viewer), reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("may not"), "{path}: {answer}");
    }

    // Query strings, routes and methods: 4xx with a JSON body naming what is wrong.
    for (path, status, field) in [
        ("/events?since=yesterday", StatusCode::UNPROCESSABLE_ENTITY, Some("since")),
        ("/events?limit=-3", StatusCode::UNPROCESSABLE_ENTITY, Some("limit")),
        ("/catalog?colour=red", StatusCode::UNPROCESSABLE_ENTITY, Some("colour")),
        ("/approvals?status=sleepy", StatusCode::UNPROCESSABLE_ENTITY, Some("status")),
        ("/no/such/route", StatusCode::NOT_FOUND, None),
    ] {
        let (got, answer) = host.get(path).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: not JSON: {answer}");
        assert_eq!(answer["field"].as_str(), field, "{path}: {answer}");
    }
    let (status, answer) = host.request(reqwest::Method::PATCH, "/catalog", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    assert!(answer["error"].is_string(), "not JSON: {answer}");

    // Guardrail profiles: every field checked, and nothing stored when refused.
    for (profile, field) in [
        (json!({"name": "p1", "capabilities": {"add": ["NOT_A_CAP"]}}), "capabilities.add[0]"),
        (json!({"name": "p2", "seccomp": "whatever"}), "seccomp"),
        (json!({"name": "p3", "apparmor": "no spaces allowed"}), "apparmor"),
        (json!({"name": "p4", "filesystem": {"allowed_mounts": ["/data/../etc"]}}), "filesystem.allowed_mounts[0]"),
        (json!({"name": "p5", "network": {"allowed_hosts": ["bad host"]}}), "network.allowed_hosts[0]"),
        (json!({"name": "p6", "network": {"ingress_ports": [0]}}), "network.ingress_ports[0]"),
        (json!({"name": "p7", "network": {"ingress_ports": [70000]}}), "network.ingress_ports[0]"),
    ] {
        let name = profile["name"].as_str().unwrap().to_string();
        assert_eq!(refused(&host, "/guardrails", profile).await.1, field);
        assert_eq!(host.get(&format!("/guardrails/{name}")).await.0, StatusCode::NOT_FOUND, "{name} was stored");
    }
    let mut restricted = host.get("/guardrails/restricted").await.1;
    restricted["capabilities"]["add"] = json!(["SYS_ADMINISTRATOR"]);
    let (status, _) = host.request(reqwest::Method::PUT, "/guardrails/restricted", Some(restricted)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an update is validated like a create");
    assert_eq!(host.get("/guardrails/restricted").await.1["capabilities"]["add"], json!([]), "the stored one is kept");

    // Limits: an oversized body is 413 JSON; deep nesting is refused cleanly; the host keeps serving.
    let big = json!({"name": "x".repeat(32 * 1024), "slug": "big"});
    let (status, answer) = host.post("/catalog", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"].is_string(), "not JSON: {answer}");
    for nested in [
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        format!("{{\"slug\": \"deep\", \"name\": {}{}}}", "[".repeat(5000), "]".repeat(5000)),
    ] {
        let (status, answer) = host.post_raw("/catalog", &nested).await;
        assert!(status.is_client_error(), "{status} {answer}");
        assert!(answer["error"].is_string(), "not JSON: {answer}");
    }
    assert_eq!(host.get("/catalog/fixture").await.0, StatusCode::OK);
}

/// With custom entries off, only the seed and imports add entries; what is
/// stored can still be replaced, and the refusal names the setting.
#[tokio::test(flavor = "multi_thread")]
async fn custom_entries_can_be_turned_off() {
    let host = TestHost::in_process(|c| c.catalog.allow_custom_entries = false).await;
    let entry = json!({"name": "New", "slug": "new-entry", "source": {"type": "docker", "image": "ghcr.io/x/y:1"}});
    let (status, answer) = host.post("/catalog", entry).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("catalog.allow_custom_entries"), "{answer}");
    assert_eq!(host.get("/catalog/new-entry").await.0, StatusCode::NOT_FOUND, "nothing refused is stored");

    let mut fixture = host.get("/catalog/fixture").await.1;
    fixture["description"] = json!("changed");
    let (status, answer) = host.request(reqwest::Method::PUT, "/catalog/fixture", Some(fixture)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, versions) = host.get("/catalog/fixture/versions").await;
    let revisions = versions["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "the seed's and the replacement: {versions}");
    assert_eq!(revisions[1]["by"], "admin@example.com");
    assert_eq!(revisions[1]["entry"]["description"], "changed");
}

/// Learn mode travels as a guardrail option, not as an allowlist entry: a
/// backend that filters egress by host learns; one that cannot says that
/// nothing is recorded, and no filter it was never given is "dropped".
#[tokio::test(flavor = "multi_thread")]
async fn learn_mode_is_an_option_each_backend_answers_for() {
    for filters in [true, false] {
        let host = TestHost::in_process(|c| {
            let stub = c.backends.get_mut(support::in_process::STUB_BACKEND).unwrap();
            stub.settings.insert("filters_egress_hosts".into(), filters.into());
        })
        .await;
        let learning = json!({"name": "learning", "network": {"egress_allowed": true, "egress_audit": true}});
        assert_eq!(host.post("/guardrails", learning).await.0, StatusCode::CREATED);
        let (_, compat) = host.get("/guardrails/learning/compatibility?backend=stub").await;
        let expected = if filters { "enforced" } else { "ignored" };
        assert_eq!(compat["fields"]["network.egress_audit"]["status"], expected, "{compat}");
        assert_eq!(compat["fields"]["network.allowed_hosts"]["status"], "not_set", "{compat}");

        let (status, d) = host.post("/runtimes/deploy", json!({"slug": "fixture", "profile": "learning"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{d}");
        let network = &d["guardrails_applied"]["network"];
        let learning = network["egress_audit"].as_bool().unwrap_or(false);
        assert_eq!(learning, filters, "learning only where the backend sees egress: {d}");
        assert_eq!(network["allowed_hosts"], json!([]), "{d}");
        let warned = support::pluck(&d["guardrails_warnings"], "/field");
        assert_eq!(warned.contains(&"network.egress_audit"), !filters, "{d}");
        assert!(!warned.contains(&"network.allowed_hosts"), "{d}");
    }
}
