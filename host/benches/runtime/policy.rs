//! The guardrail policy chain per request (p50/p99), against one bare policy call.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::support::TestHost;
use crate::{percentile, verdict};

const POLICY_CALLS: usize = 3000;
const TARGET_CHAIN_P99_US: f64 = 200.0;

pub async fn figures(host: &TestHost) {
    let runtime = host.runtime();
    let body: mcp_runtime::deployment::DeployBody = serde_json::from_value(json!({"slug": "fixture"})).unwrap();
    let request = runtime.check(&body, "bench", None).await.expect("request checks").plugin_request;
    let profile: mcp_runtime::guardrails::Profile =
        serde_json::from_value(host.get("/guardrails/restricted").await.1).unwrap();
    let capabilities = runtime.capabilities_of("docker").unwrap();
    let bare = runtime.plugin("default-guardrails").expect("configured");
    let input = mcp_runtime::contract::policy::PolicyInput {
        request: request.clone(),
        profile: (&profile).into(),
        capabilities,
        effective: mcp_runtime::contract::initial_guardrails(&profile),
        warnings: Vec::new(),
    };
    let time = |samples: &mut Vec<Duration>, start: Instant| samples.push(start.elapsed());
    let (mut chain, mut single) = (Vec::with_capacity(POLICY_CALLS), Vec::with_capacity(POLICY_CALLS));
    for i in 0..POLICY_CALLS + 200 {
        let start = Instant::now();
        runtime
            .evaluate_policies(&request, &profile, &capabilities, Default::default(), &Default::default())
            .await
            .unwrap();
        if i >= 200 {
            time(&mut chain, start);
        }
        let start = Instant::now();
        bare.evaluate(&input, Default::default()).await.unwrap().unwrap();
        if i >= 200 {
            time(&mut single, start);
        }
    }
    chain.sort();
    single.sort();
    let links = 1 + runtime.policy_chain_ids().len();
    let (p50, p99) = (percentile(&chain, 0.50), percentile(&chain, 0.99));
    let (b50, b99) = (percentile(&single, 0.50), percentile(&single, 0.99));
    println!("policy chain ({links} components, fresh store per call, {POLICY_CALLS} requests):");
    println!("  one bare policy call      p50 {b50:?}  p99 {b99:?}");
    println!(
        "  whole chain               p50 {p50:?} ({:.2}× bare)  p99 {p99:?} ({:.2}× bare; {} ≤ {TARGET_CHAIN_P99_US} µs)",
        p50.as_secs_f64() / b50.as_secs_f64(),
        p99.as_secs_f64() / b99.as_secs_f64(),
        verdict(p99.as_secs_f64() * 1e6 <= TARGET_CHAIN_P99_US)
    );
}
