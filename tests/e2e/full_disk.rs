//! A full data directory, for real: a `tmpfs` of a fixed size, filled up
//! while the host serves and a deploy is in flight. Writes answer 507,
//! reads and MCP traffic go on, the deploy stops and removes its container,
//! `/health` says why; once space is freed the host carries on without a
//! restart, and nothing written before is lost.

use crate::support::{self, TestHost};
use mcp_runtime::store::integrity::{check, Verdict};
use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A `tmpfs` mounted for one test, unmounted when dropped (the test failing too).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mb: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let size = format!("size={size_mb}m");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "mcp-runtime-test", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

/// Writes zeros into `dir/filler` until the disk refuses more; the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return path;
        }
    }
}

async fn status_of(host: &TestHost, id: &str) -> serde_json::Value {
    host.get(&format!("/runtimes/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_data_directory_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let disk = Tmpfs::mount(64);
    let data = disk.path().join("data");
    // The plugin cache stays the tests' shared one (a full one is `compiled`'s unit test).
    let mut host = TestHost::start(|c| {
        c.data_dir = data.clone();
        c.disk_reserve_mb = 8;
    })
    .await;
    let entry = |slug: &str| {
        json!({"name": slug, "slug": slug, "supported_backends": ["docker"],
                                    "source": {"type": "docker", "image": support::fixture_image()}})
    };
    assert_eq!(host.post("/catalog", entry("before-full")).await.0, StatusCode::CREATED);
    let serving = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&serving, "connected").await;

    // A deploy in flight, between `starting` and its container being recorded, meets the full disk.
    let in_flight = host.deploy(json!({"slug": "fixture"})).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&host, &in_flight).await["status"] != "starting" {
        assert!(Instant::now() < deadline, "never starting: {}", status_of(&host, &in_flight).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let filler = fill(disk.path());

    let (status, refused) = host.post("/catalog", entry("while-full")).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{refused}");
    assert!(refused["error"].as_str().unwrap_or_default().contains("is full"), "{refused}");
    assert_eq!(host.delete(&format!("/runtimes/{serving}")).await.0, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(host.get("/backup").await.0, StatusCode::INSUFFICIENT_STORAGE, "no room to stage a backup");
    let (status, health) = host.get("/health").await;
    assert_eq!(
        (status, &health["status"], &health["storage"]["writable"]),
        (StatusCode::OK, &json!("degraded"), &json!(false))
    );
    assert!(health["storage"]["reason"].as_str().unwrap_or_default().contains("is full"), "{health}");
    // Reads and MCP traffic go on.
    let (status, catalog) = host.get("/catalog").await;
    assert!(status == StatusCode::OK && support::pluck(&catalog, "/slug").contains(&"before-full"), "{catalog}");
    assert_eq!(status_of(&host, &serving).await["status"], "connected");
    let mut session = host.mcp_session(&serving).await;
    assert_eq!(session.call_tool("echo", json!({"text": "still here"})).await.unwrap(), "still here");
    // The deploy in flight stopped and took its container with it.
    let label = format!("label=mcp-runtime.deployment={in_flight}");
    while !support::docker(&["ps", "-aq", "--filter", &label]).is_empty() {
        assert!(Instant::now() < deadline, "the stopped deploy's container stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::remove_file(filler).unwrap();
    // Its failure, held back while the disk was full, is recorded without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = status_of(&host, &in_flight).await;
        if d["status"] == "error" {
            assert!(d["status_message"].as_str().unwrap_or_default().contains("data directory was full"), "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "the stopped deploy's failure is not recorded: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(host.post("/catalog", entry("after-full")).await.0, StatusCode::CREATED);
    assert_eq!(host.get("/health").await.1["status"], "ok");

    // Nothing written before is lost, and the store is sound.
    host.stop().await;
    assert_eq!(check(&data.join(mcp_runtime::store::FILE_NAME), false), Ok(Verdict::Sound));
    host.resume().await;
    let slugs = host.get("/catalog").await.1;
    for slug in ["before-full", "after-full"] {
        assert!(support::pluck(&slugs, "/slug").contains(&slug), "{slug}: {slugs}");
    }
    host.wait_for(&serving, "connected").await;
    for id in [serving, in_flight] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}
