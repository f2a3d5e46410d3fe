//! `GET /catalog` with 135 entries, against `GET /health` (routing and
//! serialising alone) from the same clients in the same run.

use serde_json::json;
use std::time::Duration;

use crate::host_process::HostProcess;
use crate::load;

const ENTRIES: usize = 135;
const CLIENTS: usize = 8;
const RUN: Duration = Duration::from_secs(3);

pub async fn figures(host: &HostProcess) {
    let present = host.get("/catalog").await.as_array().unwrap().len();
    for n in present..ENTRIES {
        let entry = json!({"name": format!("Bench entry {n}"), "slug": format!("bench-{n}"),
                           "description": "An entry of the catalog benchmark, with a description of ordinary length.",
                           "source": {"type": "docker", "image": format!("127.0.0.1:5000/bench/server-{n}:1.0")},
                           "guardrails_profile": "standard", "supported_backends": ["docker"],
                           "tags": ["bench", "catalog"], "environment": {"LOG_LEVEL": "info"}});
        host.post("/catalog", entry).await;
    }
    assert_eq!(host.get("/catalog").await.as_array().unwrap().len(), ENTRIES);
    let health = load::gets(&format!("{}/health", host.base), &host.token, CLIENTS, RUN).await;
    let catalog = load::gets(&format!("{}/catalog", host.base), &host.token, CLIENTS, RUN).await;
    println!(
        "GET /catalog ({ENTRIES} entries, {CLIENTS} clients): {catalog:.0} req/s = {:.2}× GET /health ({health:.0} req/s)",
        catalog / health
    );
}
