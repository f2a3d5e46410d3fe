//! A store written by an earlier version still opens, and says what it said.
//! `tests/fixtures/store-v2.redb` was written by the host as of schema
//! version 2 (before the deployment model moved and the internal renames):
//! a profile, a catalog entry revised once, a deployment that failed on the
//! stub backend and one held for approval.

use crate::support::{repo_root, TestHost};
use serde_json::Value;

const FAILED: &str = "1671d74d2277485b9b00caabbe9c6b97";
const HELD: &str = "5245cdfe170440a9a1737c23771785b7";

#[tokio::test(flavor = "multi_thread")]
async fn a_store_of_schema_version_2_opens_with_everything_in_it() {
    let host = TestHost::in_process(|c| {
        // Its deployments are gone from the backend: the start need not wait to re-prove them.
        c.backends
            .get_mut(crate::support::in_process::STUB_BACKEND)
            .unwrap()
            .settings
            .insert("vanished".into(), true.into());
        std::fs::create_dir_all(&c.data_dir).unwrap();
        std::fs::copy(repo_root().join("tests/fixtures/store-v2.redb"), c.data_dir.join("runtime.redb")).unwrap();
    })
    .await;

    let (_, runtimes) = host.get("/runtimes").await;
    let ids: Vec<&str> = runtimes.as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert!(ids.contains(&FAILED) && ids.contains(&HELD), "{runtimes}");
    let (status, failed) = host.get(&format!("/runtimes/{FAILED}")).await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["slug"], "fixture");
    assert_eq!(failed["requested_by"], "admin@example.com");

    let (_, pending) = host.get("/approvals?status=pending").await;
    let held: Vec<&Value> = pending.as_array().unwrap().iter().filter(|a| a["deployment_id"] == HELD).collect();
    assert_eq!(held.len(), 1, "the held deployment's approval: {pending}");

    let (_, versions) = host.get("/catalog/fixture/versions").await;
    let revisions = versions["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "{versions}");
    assert_eq!(revisions[1]["entry"]["description"], "revised");
    assert_eq!(host.get("/guardrails/kept").await.0, 200);

    let (_, events) = host.get(&format!("/events?deployment={FAILED}")).await;
    let kinds = crate::support::pluck(&events, "/type");
    assert!(kinds.contains(&"deployment.requested") && kinds.contains(&"deployment.state"), "{kinds:?}");
    let failed_at = events.as_array().unwrap().iter().find(|e| e["data"]["to"] == "error");
    assert!(failed_at.is_some_and(|e| e["data"]["from"].is_string()), "{events}");

    // Every event the old version wrote reads as a typed event: one it could
    // not read would be left out, a gap in the sequence.
    let (_, all) = host.get("/events?limit=100000").await;
    let mut seqs: Vec<u64> = all.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{all}");
}
