//! What the supply-chain gate adds to a deploy: reading what the image
//! installs from its package databases (its SBOM: the Debian base and the
//! npm tree of a package build, streamed from the engine), reading an OSV
//! directory of 10,000 records (at start, and on each reload) and judging
//! the packages against it, beside a cached deploy → connected of that
//! package measured in the same run. In-process host, the npm server from
//! the loopback mirror.

use mcp_runtime::capabilities::ContainerEngine;
use mcp_runtime::supply_chain::osv::{Advisories, Ecosystem};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::support::package_mirrors::{PackageMirrors, NPM_SERVER};
use crate::{support, verdict};

const RECORDS: usize = 10_000;
/// Judging must stay under a hundredth of a cached deploy.
const TARGET_RATIO: f64 = 0.01;

/// 10,000 OSV records in GitHub's layout: one per package, with a range;
/// some name packages of the lock (at versions it does not hold), the rest others.
fn osv_directory(lock: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..RECORDS {
        let name = match lock.get(i % (lock.len() * 4)) {
            Some((name, _)) => name.clone(),
            None => format!("bench-package-{i}"),
        };
        let record = json!({
            "schema_version": "1.4.0", "id": format!("GHSA-bench-{i:05}"), "modified": "2026-01-01T00:00:00Z",
            "aliases": [format!("CVE-2026-{i:05}")], "summary": "a benchmark record",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "npm", "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.0.1"}]}]}]
        });
        let path = dir.path().join(format!("advisories/{:03}/GHSA-bench-{i:05}.json", i % 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, record.to_string()).unwrap();
    }
    dir
}

pub async fn figures() {
    let mirrors = PackageMirrors::start().await;
    let npm = mirrors.npm.clone();
    let host = support::TestHost::start(move |c| c.builders.npm.registry = npm).await;
    let (name, version) = NPM_SERVER;
    let entry = json!({"name": "bench-gate", "slug": "bench-gate", "transport": "stdio", "guardrails_profile": "restricted",
                       "supported_backends": ["docker"],
                       "source": {"type": "package", "ecosystem": "npm", "name": name, "version": version}});
    assert_eq!(host.post("/catalog", entry).await.0, 201);
    let mut cached = Duration::ZERO;
    let mut lock: Vec<(String, String)> = Vec::new();
    let mut image = String::new();
    for _ in 0..2 {
        let start = Instant::now();
        let id = host.deploy(json!({"slug": "bench-gate"})).await;
        let d: Value = host.wait_for_within(&id, "connected", Duration::from_secs(600)).await;
        cached = start.elapsed();
        image = d["image"].as_str().unwrap().to_string();
        let packages = d["bill_of_materials"]["packages"].as_array().unwrap();
        lock = packages
            .iter()
            .map(|p| (p["name"].as_str().unwrap().into(), p["version"].as_str().unwrap().into()))
            .collect();
        host.delete(&format!("/runtimes/{id}")).await;
    }
    let dir = osv_directory(&lock);
    let started = Instant::now();
    let advisories = Advisories::load(Some(dir.path().to_path_buf())).unwrap();
    let loaded = started.elapsed();
    const ROUNDS: u32 = 50;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let report = advisories.judge(Ecosystem::Npm, lock.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
        assert!(report.findings.is_empty() && report.database.records == RECORDS);
    }
    let judged = started.elapsed() / ROUNDS;
    // The SBOM of the image, read afresh each round (the host keeps it by content after the first).
    let engine = ContainerEngine::new("unix:///var/run/docker.sock", "bench-sbom", Default::default()).unwrap();
    let local = engine.local_image(&image).await.unwrap().expect("the package's image");
    const READS: u32 = 5;
    let started = Instant::now();
    let mut installed = 0;
    for _ in 0..READS {
        installed = engine.read_installed(&local).await.unwrap().packages.len();
    }
    let read = started.elapsed() / READS;
    let sbom_ratio = read.as_secs_f64() / cached.as_secs_f64();
    // No target: the time is the engine's export of the image's files, paid once per content.
    println!(
        "supply-chain gate: the SBOM of the built image ({installed} packages read from its databases) {read:.2?} vs a cached deploy → connected {cached:.2?} = {sbom_ratio:.3}× (once per image content, then kept; the engine's export of the files is nearly all of it)"
    );
    let ratio = judged.as_secs_f64() / cached.as_secs_f64();
    println!(
        "supply-chain gate: judging the lock ({} packages) against {RECORDS} OSV records {judged:.2?} vs a cached deploy → connected {cached:.2?} = {ratio:.4}× (target ≤ {TARGET_RATIO}×, {}); reading the directory (at start, on reload) {loaded:.2?}",
        lock.len(),
        verdict(ratio <= TARGET_RATIO)
    );
}
