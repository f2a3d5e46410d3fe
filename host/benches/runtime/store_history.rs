//! The store after a long life: 10,000 deployments come and gone (100 left)
//! and 100,000 events in the audit trail, written from one real
//! deployment's record and events. The host's start on it against its start
//! on an empty store, `GET /events` queries against the newest page, and the
//! file's size before and after the start.

use mcp_runtime::events::{DeletedDeployment, EventData};
use mcp_runtime::store::{Event, EventFilter, NewEvent, Store, Table};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::host_process::HostProcess;
use crate::{median, verdict};

const DEPLOYMENTS: usize = 10_000;
const KEPT: usize = 100;
const EVENTS: usize = 100_000;
/// Deployments written per transaction.
const CHUNK: usize = 500;
const TARGET_START: Duration = Duration::from_secs(1);
const QUERIES: usize = 20;

/// One deployment's record (its id written `{{id}}`) and events, as a real
/// deploy and stop left them.
async fn one_real_deployment() -> (tempfile::TempDir, String, Vec<Event>) {
    let host = HostProcess::start().await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_connected(&id).await;
    host.post(&format!("/runtimes/{id}/stop"), json!({})).await;
    let data = host.stop_keeping_data().expect("the host's own data directory");
    let store = Store::open(&data.path().join("data/runtime.redb")).unwrap();
    let record: Value = store.get(Table::Deployments, &id).unwrap().expect("the deployment's record");
    let filter = EventFilter { deployment: Some(id.clone()), ..Default::default() };
    let mut events = store.events(&filter).unwrap();
    events.reverse();
    assert!(!events.is_empty(), "the deployment's events");
    // Every copy is its own deployment: its id everywhere the template's was.
    (data, record.to_string().replace(&id, "{{id}}"), events)
}

fn copy_of(template: &str, id: &str) -> Vec<u8> {
    let mut record: Value = serde_json::from_str(&template.replace("{{id}}", id)).unwrap();
    // Stopped, its container long gone: nothing for the start to reconcile.
    record["handle"] = Value::Null;
    record["status"] = json!("stopped");
    record["desired_running"] = json!(false);
    serde_json::to_vec(&record).unwrap()
}

/// `EVENTS / DEPLOYMENTS` events for deployment `id`, cycling through the real ones.
/// A deleted one's last is its deletion.
fn history_of(events: &[Event], id: &str, deleted: bool) -> Vec<NewEvent> {
    let per_deployment = EVENTS / DEPLOYMENTS;
    (0..per_deployment)
        .map(|i| match deleted && i == per_deployment - 1 {
            true => {
                NewEvent::for_deployment(id, EventData::DeploymentDeleted(DeletedDeployment { slug: "fixture".into() }))
            }
            false => {
                let e = &events[i % events.len()];
                NewEvent::for_deployment(id, e.data.clone()).by(e.actor.as_deref())
            }
        })
        .collect()
}

/// Writes the long life into the store at `path`.
fn write_history(path: &Path, template: &str, events: &[Event]) {
    let store = Store::open(path).unwrap();
    let ids: Vec<String> = (0..DEPLOYMENTS).map(|i| format!("hist{i:05}")).collect();
    let mut leaving: Vec<String> = Vec::new();
    for (n, chunk) in ids.chunks(CHUNK).enumerate() {
        // This chunk arrives while the last one's deleted deployments go.
        let mut records: Vec<_> = leaving.drain(..).map(|id| (Table::Deployments, id, None)).collect();
        let mut history = Vec::new();
        for (i, id) in chunk.iter().enumerate() {
            let kept = n * CHUNK + i < KEPT;
            records.push((Table::Deployments, id.clone(), Some(copy_of(template, id))));
            history.extend(history_of(events, id, !kept));
            if !kept {
                leaving.push(id.clone());
            }
        }
        store.write_all(records, history).unwrap();
    }
    let last: Vec<_> = leaving.drain(..).map(|id| (Table::Deployments, id, None)).collect();
    store.write_all(last, Vec::new()).unwrap();
}

/// Time from spawning the host to its first answer, best of three.
async fn start_time(data: &tempfile::TempDir) -> Duration {
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let host = HostProcess::start_on(data.path()).await;
        times.push(started.elapsed());
        host.stop_keeping_data();
    }
    times.into_iter().min().unwrap()
}

async fn query(host: &HostProcess, path: &str) -> (Duration, usize) {
    let mut times = Vec::with_capacity(QUERIES);
    let mut found = 0;
    for _ in 0..QUERIES {
        let started = Instant::now();
        found = host.get(path).await.as_array().map_or(0, Vec::len);
        times.push(started.elapsed());
    }
    (median(times), found)
}

fn mb(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
}

pub async fn figures() {
    let empty = tempfile::tempdir().unwrap();
    let baseline = start_time(&empty).await;
    let (data, template, events) = one_real_deployment().await;
    let file = data.path().join("data/runtime.redb");
    let writing = Instant::now();
    write_history(&file, &template, &events);
    let written = writing.elapsed();
    let before = mb(&file);
    let start = start_time(&data).await;
    let after = mb(&file);
    println!(
        "the store after {DEPLOYMENTS} deployments ({KEPT} left) and {EVENTS} events (written in {:.1?}): \
         file {before:.1} MB, {after:.1} MB after a start",
        written
    );
    println!(
        "  host start {:.0} ms = {:.2}× its start on an empty store ({:.0} ms) ({} ≤ {} ms)",
        start.as_secs_f64() * 1e3,
        start.as_secs_f64() / baseline.as_secs_f64(),
        baseline.as_secs_f64() * 1e3,
        verdict(start <= TARGET_START),
        TARGET_START.as_millis()
    );
    let host = HostProcess::start_on(data.path()).await;
    let (newest, _) = query(&host, "/events?limit=50").await;
    let mut line = Vec::new();
    for (what, path) in [
        ("the default page (500)", "/events".to_string()),
        ("one old deployment's", format!("/events?deployment=hist{:05}", KEPT + 1)),
        ("deletions, 50", "/events?type=deployment.deleted&limit=50".into()),
        ("a kind never recorded", "/events?type=alert.sent&limit=50".into()),
    ] {
        let (took, found) = query(&host, &path).await;
        line.push(format!(
            "{what} {:.1} ms ({found} found) = {:.1}×",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / newest.as_secs_f64()
        ));
    }
    println!("  GET /events, p50 against the newest 50 ({:.2} ms): {}", newest.as_secs_f64() * 1e3, line.join(", "));
    host.stop_keeping_data();
    // What compacting would give back: the pages freed by deleted records.
    let mut db = redb::Database::open(&file).unwrap();
    let compacting = Instant::now();
    db.compact().unwrap();
    drop(db);
    println!(
        "  compacted: {:.1} MB in {:.0?} ({:.1}% given back; the rest is the audit trail, kept whole)",
        mb(&file),
        compacting.elapsed(),
        (1.0 - mb(&file) / after) * 100.0
    );
}
