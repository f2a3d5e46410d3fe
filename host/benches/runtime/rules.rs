//! The pinned-images rule written in Rust, Python and JavaScript: each one's
//! time per call and the smallest memory limit it passes its cases under,
//! against the Rust rule's, all through `plugin test`'s runner (the host's
//! sandbox: a fresh instance per call).

use std::time::Duration;

use mcp_runtime::plugins::{run_cases, CaseFile};

use crate::support::{guest_dir, repo_root};

const RUNS: u32 = 200;
/// Memory limits tried, in MB, smallest first.
const LIMITS_MB: [u32; 9] = [1, 2, 4, 8, 12, 16, 24, 32, 64];

fn cases(runs: u32, memory_mb: u32) -> CaseFile {
    let text = std::fs::read_to_string(repo_root().join("policies/pinned-images/cases.yaml")).unwrap();
    let mut file: CaseFile = serde_yaml_ng::from_str(&text).unwrap();
    file.runs = runs;
    file.limits.memory_mb = memory_mb;
    file
}

/// p50 and p99 per call over every case, at a limit the rule passes under.
async fn timing(wasm: &std::path::Path, cache: &std::path::Path) -> (Duration, Duration) {
    let results = run_cases(wasm, &cases(RUNS, 64), cache.to_path_buf()).await.unwrap();
    assert!(results.iter().all(|r| r.failure.is_none()), "{results:?}");
    let mut p50: Vec<Duration> = results.iter().map(|r| r.p50).collect();
    let mut p99: Vec<Duration> = results.iter().map(|r| r.p99).collect();
    p50.sort();
    p99.sort();
    (p50[p50.len() / 2], *p99.last().unwrap())
}

async fn memory_needed(wasm: &std::path::Path, cache: &std::path::Path) -> Option<u32> {
    for limit in LIMITS_MB {
        let results = run_cases(wasm, &cases(1, limit), cache.to_path_buf()).await.unwrap();
        if results.iter().all(|r| r.failure.is_none()) {
            return Some(limit);
        }
    }
    None
}

pub async fn figures() {
    let cache = repo_root().join("target/bench-plugin-cache");
    println!("pinned-images rule by language ({RUNS} calls per case, fresh instance per call):");
    let mut rust = None;
    for (language, file) in
        [("Rust", "pinned_images.wasm"), ("Python", "pinned_images_py.wasm"), ("JavaScript", "pinned_images_js.wasm")]
    {
        let wasm = guest_dir().join(file);
        let size_mb = std::fs::metadata(&wasm).unwrap().len() as f64 / 1e6;
        let (p50, p99) = timing(&wasm, &cache).await;
        let memory = memory_needed(&wasm, &cache).await.map_or("over 64".into(), |mb| mb.to_string());
        let (r50, r99) = *rust.get_or_insert((p50, p99));
        println!(
            "  {language:<10} p50 {p50:>10.3?} ({:>5.1}× Rust)  p99 {p99:>10.3?} ({:>5.1}× Rust)  \
             memory limit needed: {memory} MB  component {size_mb:.1} MB",
            p50.as_secs_f64() / r50.as_secs_f64(),
            p99.as_secs_f64() / r99.as_secs_f64(),
        );
    }
}
