//! The approval workflow end to end, with the real Docker backend, the WASM
//! approval rules, and a webhook receiver on loopback that checks signatures.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use support::TestHost;

use support::webhook::{Receiver, WEBHOOK_SECRET};

async fn gated_host(receiver: &Receiver, tweak: impl FnOnce(&mut mcp_runtime::config::RuntimeConfig)) -> TestHost {
    let url = receiver.url.clone();
    let host = TestHost::start(|c| {
        c.approval.notification.webhook_url = Some(url);
        c.approval.notification.webhook_secret = Some(WEBHOOK_SECRET.into());
        tweak(c);
    })
    .await;
    let entry = json!({"name": "Gated", "slug": "gated", "requires_approval": true, "guardrails_profile": "restricted",
                       "source": {"type": "docker", "image": support::fixture_image()}, "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    host
}

async fn decide(host: &TestHost, token: &str, approval: &str, verb: &str) -> (StatusCode, Value) {
    let path = format!("/approvals/{approval}/{verb}");
    host.request_as(Some(token), Method::POST, &path, Some(json!({"notes": "ok"}))).await
}

async fn request_gated(host: &TestHost, token: &str) -> (String, String) {
    let (status, answer) =
        host.request_as(Some(token), Method::POST, "/runtimes/deploy", Some(json!({"slug": "gated"}))).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{answer}");
    (answer["id"].as_str().unwrap().to_string(), answer["approval_id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_request_deploys_by_itself_and_nobody_approves_their_own() {
    let receiver = Receiver::start(0).await;
    let host = gated_host(&receiver, |_| {}).await;
    let dave = host.token_in("dave", &[Role::Developer, Role::Approver], &["security-team"]);
    let bob = host.token_in("bob", &[Role::Approver], &["other-team"]);
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);

    let (id, approval) = request_gated(&host, &dave).await;
    let (_, d) = host.get(&format!("/runtimes/{id}")).await;
    assert_eq!(d["status"], "awaiting_approval");
    let (_, a) = host.request_as(Some(&dave), Method::GET, &format!("/approvals/{approval}"), None).await;
    assert_eq!(a["reasons"], json!(["catalog entry 'gated' requires approval"]), "{a}");
    assert_eq!(a["approvers"], json!(["group:security-team"]));
    assert_eq!((a["requested_by"].as_str(), a["status"].as_str()), (Some("dave"), Some("pending")));
    assert_eq!(a["guardrails_applied"]["profile"], "restricted", "approvers see the guardrails");
    let sent = receiver.received("approval.requested", 1).await;
    assert_eq!(sent[0]["approval"]["id"], approval.as_str());

    let (status, answer) = decide(&host, &bob, &approval, "approve").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bob is not in security-team: {answer}");
    let (status, answer) = decide(&host, &carol, &approval, "approve").await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("approved")), "{answer}");
    assert_eq!(decide(&host, &carol, &approval, "reject").await.0, StatusCode::CONFLICT, "decided once");

    host.wait_for(&id, "connected").await;
    let (_, events) = host.get(&format!("/events?deployment={id}")).await;
    let decided = events.as_array().unwrap().iter().find(|e| e["type"] == "approval.approved").unwrap();
    assert_eq!(decided["actor"], "carol");
    receiver.received("approval.approved", 1).await;
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejection_reaches_the_requester_and_a_race_has_one_winner() {
    let receiver = Receiver::start(0).await;
    let host = gated_host(&receiver, |_| {}).await;
    let alice = host.token("alice", &[Role::Developer]);
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);
    let erin = host.token_in("erin", &[Role::Approver], &["security-team"]);

    let (id, approval) = request_gated(&host, &alice).await;
    let path = format!("/approvals/{approval}/reject");
    let (status, _) =
        host.request_as(Some(&carol), Method::POST, &path, Some(json!({"notes": "image not vetted"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, d) = host.request_as(Some(&alice), Method::GET, &format!("/runtimes/{id}"), None).await;
    assert_eq!(d["status"], "rejected");
    assert_eq!(d["status_message"], "rejected by carol: image not vetted");
    let (_, rejected) = host.get("/approvals?status=rejected").await;
    assert_eq!(support::pluck(&rejected, "/id"), [approval.as_str()]);
    assert!(host.owned_containers().is_empty(), "nothing was deployed");

    for _ in 0..3 {
        let (id, approval) = request_gated(&host, &alice).await;
        let (approve_path, reject_path) =
            (format!("/approvals/{approval}/approve"), format!("/approvals/{approval}/reject"));
        let approve = host.request_as(Some(&carol), Method::POST, &approve_path, None);
        let reject = host.request_as(Some(&erin), Method::POST, &reject_path, None);
        let ((a, _), (r, _)) = tokio::join!(approve, reject);
        let mut outcomes = [a, r];
        outcomes.sort();
        assert_eq!(outcomes, [StatusCode::OK, StatusCode::CONFLICT], "exactly one decision wins");
        let (_, final_state) = host.get(&format!("/approvals/{approval}")).await;
        let expected = if a == StatusCode::OK { "connected" } else { "rejected" };
        assert_eq!(final_state["status"], if a == StatusCode::OK { "approved" } else { "rejected" });
        host.wait_for(&id, expected).await;
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_requests_survive_restarts_escalate_and_expire() {
    let receiver = Receiver::start(2).await;
    let mut host = gated_host(&receiver, |c| {
        c.approval.timeout_hours = 1.0;
        c.approval.escalate_before_hours = Some(0.25);
        c.approval.escalation = vec!["user:boss@example.com".into()];
    })
    .await;
    let alice = host.token("alice", &[Role::Developer]);
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);
    let (kept, kept_approval) = request_gated(&host, &alice).await;
    let (expiring, expiring_approval) = request_gated(&host, &alice).await;
    // The first two deliveries fail: retried with backoff, then recorded as delivered.
    receiver.received("approval.requested", 2).await;

    host.stop().await;
    host.resume().await;
    let (_, a) = host.get(&format!("/approvals/{kept_approval}")).await;
    assert_eq!(a["status"], "pending", "a pending approval survives a restart");
    let (status, _) =
        host.request_as(Some(&carol), Method::POST, &format!("/approvals/{kept_approval}/approve"), None).await;
    assert_eq!(status, StatusCode::OK);
    host.wait_for(&kept, "connected").await;

    // 50 minutes in: escalated (15 minutes before the deadline), still pending.
    let runtime = host.runtime().clone();
    host.clock.advance(Duration::from_secs(50 * 60));
    runtime.approvals_tick().await.unwrap();
    let escalated = receiver.received("approval.escalated", 1).await;
    assert_eq!(escalated[0]["recipients"], json!(["user:boss@example.com"]));
    assert_eq!(escalated[0]["approval"]["id"], expiring_approval.as_str());
    // 61 minutes in: expired, and the deployment ended rejected.
    host.clock.advance(Duration::from_secs(11 * 60));
    runtime.approvals_tick().await.unwrap();
    let (_, a) = host.get(&format!("/approvals/{expiring_approval}")).await;
    assert_eq!(a["status"], "expired");
    let d = host.wait_for(&expiring, "rejected").await;
    assert!(d["status_message"].as_str().unwrap().starts_with("approval expired"), "{d}");
    let (status, _) =
        host.request_as(Some(&carol), Method::POST, &format!("/approvals/{expiring_approval}/approve"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "too late to approve");

    let (_, events) = host.get("/events?type=approval.notified").await;
    assert!(events.as_array().unwrap().len() >= 2, "deliveries recorded: {events}");
    assert_eq!(host.delete(&format!("/runtimes/{kept}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_decide_and_a_faulty_rule_fails_closed() {
    let receiver = Receiver::start(0).await;
    let host = gated_host(&receiver, |c| {
        c.approval.rules = vec!["approval-default".into()];
        c.approval
            .rest
            .insert("required_for".into(), json!([{"guardrails_profile": "standard"}, {"cpu_millis_above": 300}]));
        c.approval.rest.insert("approvers".into(), json!([{"user": "carol"}]));
    })
    .await;
    let alice = host.token("alice", &[Role::Developer]);
    let (status, answer) = host
        .request_as(Some(&alice), Method::POST, "/runtimes/deploy", Some(json!({"slug": "fixture-standard"})))
        .await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{answer}");
    assert_eq!(answer["reasons"], json!(["guardrails_profile=standard", "cpu 500m above 300m"]));
    assert_eq!(answer["approvers"], json!(["user:carol"]));
    let (status, answer) =
        host.request_as(Some(&alice), Method::POST, "/runtimes/deploy", Some(json!({"slug": "fixture"}))).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending")),
        "restricted at 250m needs no approval: {answer}"
    );
    host.wait_for(answer["id"].as_str().unwrap(), "connected").await;

    // The example rule in policies/: more CPU than its limit needs the platform group.
    let custom = TestHost::start(|c| {
        c.approval.enabled = true;
        c.approval.rules = vec!["approval-large-cpu".into()];
        c.plugins.push(mcp_runtime::plugins::PluginManifest {
            id: "approval-large-cpu".into(),
            kind: mcp_runtime::plugins::PluginKind::ApprovalRule,
            path: "approval_large_cpu.wasm".into(),
            sha256: None,
            grants: vec![],
            allowed_hosts: vec![],
            limits: Default::default(),
            settings: json!({"max_cpu_millis": 200, "approvers": ["group:platform"]}),
        });
    })
    .await;
    let (status, answer) = custom.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (answer["reasons"].clone(), answer["approvers"].clone()),
        (json!(["cpu 250m above 200m"]), json!(["group:platform"]))
    );
    let (_, answer) = custom.post("/runtimes/deploy", json!({"slug": "fixture", "resources": {"cpu": "0.2"}})).await;
    assert_eq!(answer["status"], "pending", "within the limit: {answer}");
    custom.wait_for(answer["id"].as_str().unwrap(), "connected").await;

    for rule in ["fault-approval-trap", "fault-approval-loop"] {
        let faulty = TestHost::start(|c| {
            c.approval.enabled = true;
            c.approval.rules = vec![rule.to_string()];
        })
        .await;
        let (status, answer) = faulty.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{rule}: {answer}");
        assert_eq!(answer["plugin"], rule);
        assert_eq!(faulty.get("/runtimes").await.1, json!([]), "{rule}: nothing stored, nothing deployed");
    }
}

/// Debian's aiosmtpd on a free loopback port, printing every message it receives.
struct SmtpServer {
    port: u16,
    output: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("mail.txt");
        let port = crate::support::free_port();
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (.ci/run installs it)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        SmtpServer { port, output, child, _dir: dir }
    }

    /// Waits until a received message contains every one of `needles`.
    async fn received(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            let text = std::fs::read_to_string(&self.output).unwrap_or_default();
            let message =
                text.split("---------- MESSAGE FOLLOWS ----------").find(|m| needles.iter().all(|n| m.contains(n)));
            if let Some(m) = message {
                return m.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail with {needles:?}: {}", std::fs::read_to_string(&self.output).unwrap_or_default())
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn approvers_and_the_escalation_list_are_emailed_when_smtp_is_configured() {
    let smtp = SmtpServer::start().await;
    let receiver = Receiver::start(0).await;
    let port = smtp.port;
    let host = gated_host(&receiver, |c| {
        let n = &mut c.approval.notification;
        n.email_enabled = true;
        n.smtp = Some(mcp_runtime::config::SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: "mcp-runtime@example.com".into(),
            username: None,
            password: None,
        });
        n.group_emails.insert("security-team".into(), "security@example.com".into());
        c.approval.timeout_hours = 1.0;
        c.approval.escalation = vec!["user:boss@example.com".into()];
    })
    .await;
    let alice = host.token("alice", &[Role::Developer]);
    let (id, approval) = request_gated(&host, &alice).await;
    let mail = smtp
        .received(&["To: security@example.com", "Subject: [mcp-runtime] approval.requested: gated on docker"])
        .await;
    assert!(mail.contains(&format!("/approvals/{approval}/approve")), "{mail}");
    assert!(mail.contains("requested by alice"), "{mail}");

    host.clock.advance(Duration::from_secs(50 * 60));
    host.runtime().approvals_tick().await.unwrap();
    smtp.received(&["To: boss@example.com", "approval.escalated"]).await;
    let (_, events) = host.get(&format!("/events?deployment={id}&type=approval.emailed")).await;
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
}

/// The README's quick start: a deploy under `unrestricted` is held, and a
/// token from `mcp-runtime mint-token --groups security-team` approves it.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_minted_with_groups_completes_the_readme_flow() {
    let host = TestHost::start(|_| {}).await;
    let (status, held) = host.post("/runtimes/deploy", json!({"slug": "fixture", "profile": "unrestricted"})).await;
    assert_eq!((status, held["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{held}");
    assert_eq!(held["approvers"], json!(["group:security-team"]));

    let minted = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .args(["mint-token", "--user", "sec@example.com", "--roles", "approver", "--groups", "security-team"])
        .env("JWT_SECRET_KEY", support::TEST_JWT_SECRET)
        .env("RUNTIME_DATA_DIR", host.config.data_dir.as_os_str())
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let approver = String::from_utf8(minted.stdout).unwrap().trim().to_string();

    let approval = held["approval_id"].as_str().unwrap();
    let (status, answer) = decide(&host, &approver, approval, "approve").await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("approved")), "{answer}");
    let id = held["id"].as_str().unwrap();
    host.wait_for(id, "connected").await;
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}
