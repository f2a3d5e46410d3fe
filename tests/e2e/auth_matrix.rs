//! The "own versus anyone's" rows of the authorization matrix, against one
//! real deployment (the rest of the matrix is walked in-process by
//! `tests/router/roles.rs`).

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::TestHost;

#[tokio::test(flavor = "multi_thread")]
async fn developers_operate_their_own_deployments_operators_anyones() {
    let host = TestHost::start(|_| {}).await;
    let alice = host.token("alice", &[Role::Developer]);
    let bob = host.token("bob", &[Role::Developer]);
    let viewer = host.token("vera", &[Role::Viewer]);
    let operator = host.token("otto", &[Role::Operator]);

    let (status, answer) =
        host.request_as(Some(&alice), Method::POST, "/runtimes/deploy", Some(json!({"slug": "fixture"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["requested_by"], "alice");

    let logs = format!("/runtimes/{id}/logs");
    let mcp = format!("/servers/{id}/mcp");
    // The gateway's token for this deployment reaches its MCP endpoint, and nothing else.
    let gateway = host.token(&mcp_runtime::auth::gateway_principal(&id), &[Role::Gateway]);
    let (status, _) = host.request_as(Some(&gateway), Method::POST, &mcp, Some(json!({}))).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "the gateway using the MCP endpoint it was given");
    let (status, _) = host.request_as(Some(&gateway), Method::GET, &logs, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the gateway reading logs");
    let elsewhere = host.token(&mcp_runtime::auth::gateway_principal("another"), &[Role::Gateway]);
    let (status, _) = host.request_as(Some(&elsewhere), Method::POST, &mcp, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a gateway token minted for another deployment");
    for (token, who, allowed) in
        [(&bob, "bob", false), (&viewer, "vera", false), (&alice, "alice", true), (&operator, "otto", true)]
    {
        let (status, _) = host.request_as(Some(token), Method::GET, &logs, None).await;
        assert_eq!(status == StatusCode::OK, allowed, "{who} reading logs: {status}");
        let (status, _) = host.request_as(Some(token), Method::POST, &mcp, Some(json!({}))).await;
        assert_eq!(status == StatusCode::FORBIDDEN, !allowed, "{who} using the MCP endpoint: {status}");
        if !allowed {
            for path in [format!("/runtimes/{id}/stop"), format!("/runtimes/{id}/start")] {
                assert_eq!(
                    host.request_as(Some(token), Method::POST, &path, Some(json!({}))).await.0,
                    StatusCode::FORBIDDEN,
                    "{who} {path}"
                );
            }
            assert_eq!(
                host.request_as(Some(token), Method::DELETE, &format!("/runtimes/{id}"), None).await.0,
                StatusCode::FORBIDDEN
            );
        }
    }
    let (status, d) =
        host.request_as(Some(&operator), Method::POST, &format!("/runtimes/{id}/stop"), Some(json!({}))).await;
    assert_eq!(
        (status, d["status"].as_str()),
        (StatusCode::OK, Some("stopped")),
        "an operator stops anyone's deployment"
    );
    let (status, _) = host.request_as(Some(&alice), Method::DELETE, &format!("/runtimes/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "alice deletes her own");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(host.get(&format!("/events?since={future}")).await.1, json!([]), "nothing happened after `since`");
    let (_, events) = host.get(&format!("/events?deployment={id}&actor=otto")).await;
    assert_eq!(support::pluck(&events, "/type"), ["deployment.state", "deployment.stop"], "{events}");
}
