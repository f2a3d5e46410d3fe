use super::*;
use crate::deployment_state::State;
use crate::events::{Event, EventData, StateChange};

fn state_change(seq: u64, at_ms: i64, from: State, to: State) -> Event {
    Event {
        seq,
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        subject: "deployment/d1".into(),
        deployment: Some("d1".into()),
        actor: None,
        data: EventData::DeploymentState(StateChange { from, to, message: None }),
    }
}

#[test]
fn phases_are_timed_from_one_state_change_to_the_next_forward() {
    let metrics = Metrics::new();
    let mut phases = from_events::Phases::default();
    for (i, (at, from, to)) in [
        (0, State::Pending, State::Pulling),
        (1_500, State::Pulling, State::Starting),
        (1_750, State::Starting, State::Running),
        (2_000, State::Running, State::Connected),
        (9_000, State::Connected, State::Error),
    ]
    .into_iter()
    .enumerate()
    {
        phases.observe(&metrics, &state_change(i as u64, at, from, to));
    }
    let text = metrics.render(&Snapshot::default());
    assert!(text.contains("mcp_runtime_deploy_phase_duration_seconds_sum{phase=\"pull\"} 1.5"), "{text}");
    assert!(text.contains("mcp_runtime_deploy_phase_duration_seconds_sum{phase=\"start\"} 0.25"), "{text}");
    assert!(text.contains("mcp_runtime_deploy_phase_duration_seconds_count{phase=\"connect\"} 1"), "{text}");
    assert!(!text.contains("phase=\"build\""), "no build happened: {text}");
}

#[test]
fn client_chosen_strings_never_become_label_values() {
    assert_eq!(mcp_method(Some("tools/call")), "tools/call");
    assert_eq!(mcp_method(Some("x\"} 1\nevil")), "other");
    assert_eq!(mcp_method(None), "response");
    assert_eq!(policy_field("network.allowed_hosts"), "network");
    assert_eq!(policy_field("env.MY_SECRET_NAME"), "env");
    assert_eq!(policy_field("whatever-a-policy-says"), "other");
}

#[test]
fn the_exposition_holds_live_and_present_figures_and_ends_once() {
    let metrics = Metrics::new();
    metrics.mcp_request("d1", "tools/call", 200, Duration::from_micros(300));
    metrics.mcp_request("d1", "tools/call", 502, Duration::from_millis(2));
    metrics.plugin_calls.record("docker", "status", "ok", Duration::from_millis(3));
    let snapshot = Snapshot {
        deployments: vec![("docker".into(), "connected", 2)],
        per_deployment: vec![DeploymentFigures {
            deployment: "d1".into(),
            restarts: 3,
            memory_bytes: Some(1 << 20),
            ..Default::default()
        }],
        ..Default::default()
    };
    let text = metrics.render(&snapshot);
    for line in [
        "mcp_runtime_mcp_requests_total{deployment=\"d1\",method=\"tools/call\",outcome=\"ok\"} 1",
        "mcp_runtime_mcp_requests_total{deployment=\"d1\",method=\"tools/call\",outcome=\"failed\"} 1",
        "mcp_runtime_plugin_calls_total{plugin=\"docker\",function=\"status\",outcome=\"ok\"} 1",
        "mcp_runtime_deployments{backend=\"docker\",state=\"connected\"} 2",
        "mcp_runtime_deployment_restarts_total{deployment=\"d1\"} 3",
        "mcp_runtime_deployment_memory_bytes{deployment=\"d1\"} 1048576",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn a_deleted_deployments_series_go_with_it() {
    let metrics = Metrics::new();
    for id in ["d1", "d2"] {
        metrics.mcp_request(id, "tools/call", 200, std::time::Duration::from_millis(2));
        metrics.mcp_request(id, "other", 502, std::time::Duration::from_millis(2));
        metrics.health_check(id, "mcp-ping", true);
        metrics.egress_connection(id, Some("api.example.com"));
        metrics.egress_connection(id, None);
        metrics.oom_killed(id);
    }
    let mut phases = from_events::Phases::default();
    let deleted = Event {
        data: EventData::DeploymentDeleted(crate::events::DeletedDeployment { slug: "s".into() }),
        ..state_change(9, 0, State::Connected, State::Stopped)
    };
    phases.observe(&metrics, &deleted);
    let text = metrics.render(&Snapshot::default());
    assert!(!text.contains("deployment=\"d1\""), "{text}");
    for series in
        ["mcp_requests_total", "mcp_request_duration_seconds", "health_checks", "egress_connections", "oom_kills"]
    {
        assert!(
            text.contains(&format!("mcp_runtime_{series}")) && text.contains("deployment=\"d2\""),
            "{series}: {text}"
        );
    }
}
