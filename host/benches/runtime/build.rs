//! deploy → connected from a repository: the first deploy of a commit
//! (fetch and build) against a second deploy of the same commit, which
//! reuses the image. In-process host, Git served on loopback.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::support::git_server::{fixture_repo, GitServer};
use crate::{support, verdict};

/// A cache hit should cost at most half of a build.
const TARGET_RATIO: f64 = 0.5;

/// From approval to connected.
async fn deploy(host: &support::TestHost) -> Duration {
    let (_, held) = host.post("/runtimes/deploy", json!({"slug": "bench-build"})).await;
    let approver = host.token_in("bench-approver", &[mcp_runtime::auth::Role::Approver], &["security-team"]);
    let approve = format!("/approvals/{}/approve", held["approval_id"].as_str().expect("held for approval"));
    let start = Instant::now();
    let (status, _) = host.request_as(Some(&approver), reqwest::Method::POST, &approve, Some(json!({}))).await;
    assert!(status.is_success(), "approve: {status}");
    let id = held["id"].as_str().unwrap();
    host.wait_for(id, "connected").await;
    let elapsed = start.elapsed();
    host.delete(&format!("/runtimes/{id}")).await;
    elapsed
}

pub async fn figures() {
    let git = GitServer::start("bench-token").await;
    git.create("bench/fixture", &fixture_repo());
    let base = git.base.clone();
    let host = support::TestHost::start(move |c| c.sources.git_base_url = base).await;
    let entry = json!({"name": "bench build", "slug": "bench-build", "guardrails_profile": "restricted",
                       "source": {"type": "github", "repo": "bench/fixture"}, "supported_backends": ["docker"]});
    host.post("/catalog", entry).await;
    let first = deploy(&host).await;
    let second = deploy(&host).await;
    let ratio = second.as_secs_f64() / first.as_secs_f64();
    println!(
        "deploy from git, same commit again (cache hit) vs first (fetch + build): {second:.2?} vs {first:.2?} = {ratio:.2}× (target ≤ {TARGET_RATIO}×, {})",
        verdict(ratio <= TARGET_RATIO)
    );
}
