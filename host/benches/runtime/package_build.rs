//! deploy → connected from a package: the first deploy of a version (lock,
//! install, commit) against a second deploy of the same entry, which reuses
//! the image. In-process host, the npm and PyPI servers from the loopback
//! mirrors (`scripts/package-mirrors.sh`).

use serde_json::json;
use std::time::{Duration, Instant};

use crate::support::package_mirrors::{PackageMirrors, NPM_SERVER, PYPI_SERVER};
use crate::{support, verdict};

/// The image step of a cached deploy should cost at most a hundredth of a build.
const TARGET_RATIO: f64 = 0.01;

/// deploy → connected, and of it the image step (`building` until `starting`).
async fn deploy(host: &support::TestHost, slug: &str) -> (Duration, Duration) {
    let start = Instant::now();
    let id = host.deploy(json!({"slug": slug})).await;
    let d = host.wait_for_within(&id, "connected", Duration::from_secs(600)).await;
    let elapsed = start.elapsed();
    let at = |to: &str| {
        let events = d["recent_events"].as_array().unwrap();
        let change = events.iter().find(|e| e["type"] == "deployment.state" && e["data"]["to"] == to).unwrap();
        chrono::DateTime::parse_from_rfc3339(change["at"].as_str().unwrap()).unwrap()
    };
    let image_step = (at("starting") - at("building")).to_std().unwrap();
    host.delete(&format!("/runtimes/{id}")).await;
    (elapsed, image_step)
}

pub async fn figures() {
    let mirrors = PackageMirrors::start().await;
    let (npm, pypi) = (mirrors.npm.clone(), mirrors.pypi.clone());
    let host = support::TestHost::start(move |c| {
        c.builders.npm.registry = npm;
        c.builders.pypi.index_url = pypi;
    })
    .await;
    for (slug, ecosystem, (name, version)) in [("bench-npm", "npm", NPM_SERVER), ("bench-pypi", "pypi", PYPI_SERVER)] {
        let entry = json!({"name": slug, "slug": slug, "transport": "stdio", "guardrails_profile": "restricted",
                           "supported_backends": ["docker"],
                           "source": {"type": "package", "ecosystem": ecosystem, "name": name, "version": version}});
        assert_eq!(host.post("/catalog", entry).await.0, 201);
        let (first, built) = deploy(&host, slug).await;
        let (cached, reused) = deploy(&host, slug).await;
        let ratio = reused.as_secs_f64() / built.as_secs_f64();
        println!(
            "deploy from {ecosystem} ({name}): image step cached vs first build (lock + install): {reused:.2?} vs {built:.2?} = {ratio:.3}× (target ≤ {TARGET_RATIO}×, {}); deploy → connected {cached:.2?} vs {first:.2?} (the server's own start-up the rest)",
            verdict(ratio <= TARGET_RATIO)
        );
    }
}
