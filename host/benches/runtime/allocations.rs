//! Heap allocations per call in the host's data path, counted by this
//! process's allocator around a host running in this process: the same
//! calls straight to the server (the client's own allocations alone) and
//! through the host, the host's share being the difference. What a reused
//! buffer could save shows here before it shows in CPU.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::load::{self, Caller};
use crate::support::TestHost;

const CALLS: u64 = 2000;

/// The system allocator, counting each allocation.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn counted() -> (u64, u64) {
    (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
}

/// Allocations and bytes per call of `CALLS` sequential calls at `url`.
async fn per_call(url: &str, token: Option<&str>) -> (f64, f64) {
    let mut session = load::sessions(url, token, 1).await.pop().unwrap();
    // Warm: pools, caches and buffers grow once, not per call.
    for _ in 0..200 {
        session.echo().await;
    }
    let before = counted();
    for _ in 0..CALLS {
        session.echo().await;
    }
    let after = counted();
    session.end().await;
    ((after.0 - before.0) as f64 / CALLS as f64, (after.1 - before.1) as f64 / CALLS as f64)
}

async fn line(host: &TestHost, name: &str, direct: &str, through: &str) {
    let (client, client_bytes) = per_call(direct, None).await;
    let (all, all_bytes) = per_call(through, Some(&host.admin_token)).await;
    println!(
        "  {name}: host {:.0} allocations ({:.1} KiB) per call (through the host {all:.0}, straight to the server {client:.0}: the client's own)",
        all - client,
        (all_bytes - client_bytes) / 1024.0,
    );
}

/// No background loop of the host counted among the calls' allocations.
fn quiet(c: &mut mcp_runtime::config::RuntimeConfig) {
    c.health.watch_interval_ms = 600_000;
    c.health.usage_interval_ms = 600_000;
}

pub async fn figures() {
    println!("heap allocations per tools/call in the host (a host in this process, {CALLS} calls one at a time):");
    let host = TestHost::start(quiet).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    let direct = host.wait_for(&id, "connected").await["endpoint"].as_str().unwrap().to_string();
    line(&host, "proxied", &direct, &host.proxy_url(&id)).await;
    host.delete(&format!("/runtimes/{id}")).await;
    drop(host);

    // The host's own bridge over the attach stream (a stdio server's other way).
    let host = TestHost::start(|c| {
        quiet(c);
        let docker = c.backends.get_mut("docker").expect("the docker backend");
        docker.settings.insert("stdio".into(), json!("attach"));
    })
    .await;
    let (http, stdio) =
        (host.deploy(json!({"slug": "fixture"})).await, host.deploy(json!({"slug": "fixture-stdio"})).await);
    let direct = host.wait_for(&http, "connected").await["endpoint"].as_str().unwrap().to_string();
    host.wait_for(&stdio, "connected").await;
    line(&host, "bridged over the attach stream", &direct, &host.proxy_url(&stdio)).await;
    host.delete(&format!("/runtimes/{stdio}")).await;
    host.delete(&format!("/runtimes/{http}")).await;
}
