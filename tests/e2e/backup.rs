//! Backups as an operator takes them: from a host that keeps serving and
//! writing, through the API and the binary, restored into the stopped host,
//! which then reconciles with the engine as after any restart; damaged or
//! newer backups refused with the stopped host's files untouched.

use crate::support::{self, TestHost, TEST_JWT_SECRET};
use base64::Engine;
use mcp_runtime::auth::Role;
use mcp_runtime::backup::{self, BackupError};
use mcp_runtime::store::{Store, FILE_NAME, SCHEMA_VERSION};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary on the test host's data directory.
fn binary(host: &TestHost, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .args(args)
        .env("RUNTIME_DATA_DIR", &host.config.data_dir)
        .env("JWT_SECRET_KEY", TEST_JWT_SECRET)
        .env("RUNTIME_DOCKER_SOCKET", "/nonexistent/docker.sock")
        .output()
        .unwrap()
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The slugs of the catalog's entries.
async fn slugs(host: &TestHost) -> Vec<String> {
    let (_, entries) = host.get("/catalog").await;
    support::pluck(&entries, "/slug").into_iter().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_serving_restores_the_stopped_host_which_reconciles() {
    let mut host = TestHost::start(|_| {}).await;
    let kept = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&kept, "connected").await;
    let entry = |slug: &str| {
        json!({"name": slug, "slug": slug, "supported_backends": ["docker"],
                                    "source": {"type": "docker", "image": support::fixture_image()}})
    };
    assert_eq!(host.post("/catalog", entry("before-backup")).await.0, StatusCode::CREATED);
    // An uploaded plugin: its record in the store, its component a file of the data directory.
    let component = std::fs::read(support::guest_dir().join("pinned_images.wasm")).unwrap();
    let rule = json!({"manifest": {"id": "kept-rule", "kind": "guardrail-policy", "grants": ["logging"],
                                   "limits": {"memory_mb": 16, "cpu_ms": 100, "timeout_ms": 1000},
                                   "settings": {"require_digest": false}},
                      "component": base64::engine::general_purpose::STANDARD.encode(component)});
    assert_eq!(host.post("/plugins", rule).await.0, StatusCode::CREATED);

    // Writes go on while the backup is taken: it is one transaction's view.
    let (base, token) = (host.base.clone(), host.admin_token.clone());
    let writer = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for n in 0..40 {
            let body = entry(&format!("during-{n}"));
            let answer = http.post(format!("{base}/catalog")).bearer_auth(&token).json(&body).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::CREATED);
        }
    });
    let operator = host.token("olga", &[Role::Operator]);
    assert_eq!(host.status_as(&operator, reqwest::Method::GET, "/backup", None).await, StatusCode::FORBIDDEN);
    let answer = reqwest::Client::new().get(format!("{}/backup", host.base)).bearer_auth(&host.admin_token);
    let answer = answer.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/x-tar");
    let served = answer.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("served.tar"), &served).unwrap();
    let checked = backup::read(&dir.path().join("served.tar"), &dir.path().join("check")).unwrap();
    assert_eq!((checked.header.format, checked.header.schema_version), (backup::FORMAT, SCHEMA_VERSION));
    assert_eq!(checked.header.files[0].path, FILE_NAME, "{:?}", checked.header);

    // The binary fetches it from the running host, minting its own admin token.
    let file = dir.path().join("backup.tar");
    let out = binary(&host, &["backup", "--to", file.to_str().unwrap(), "--url", &host.base]);
    assert!(out.status.success(), "{}", said(&out));
    writer.await.unwrap();
    let (_, taken) = host.get("/events?type=backup.taken").await;
    assert_eq!(taken.as_array().map(Vec::len), Some(2), "{taken}");
    assert_eq!(taken[0]["actor"], "backup", "newest first; the binary's token names it: {taken}");

    // After the backup: one deployment goes, another comes.
    let unknown = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&unknown, "connected").await;
    assert_eq!(host.post("/catalog", entry("after-backup")).await.0, StatusCode::CREATED);
    assert_eq!(host.delete(&format!("/runtimes/{kept}")).await.0, StatusCode::NO_CONTENT);

    let refused = binary(&host, &["restore", file.to_str().unwrap()]);
    assert!(!refused.status.success() && said(&refused).contains("stop it first"), "{}", said(&refused));
    host.stop().await;
    // With no host running the binary reads the files itself.
    let offline = dir.path().join("offline.tar");
    let out = binary(&host, &["backup", "--to", offline.to_str().unwrap()]);
    assert!(out.status.success(), "{}", said(&out));
    let out = binary(&host, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("runtime.redb.before-restore"), "{}", said(&out));
    assert!(host.config.data_dir.join("runtime.redb.before-restore").is_file());
    // The components came back from the backup, not from what was left behind.
    std::fs::remove_dir_all(host.config.data_dir.join("uploaded-plugins")).unwrap();
    let out = binary(&host, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", said(&out));

    host.resume().await;
    let slugs = slugs(&host).await;
    assert!(slugs.contains(&"before-backup".to_string()) && !slugs.contains(&"after-backup".to_string()), "{slugs:?}");
    let (status, rule) = host.get("/plugins/kept-rule").await;
    assert_eq!((status, rule["version"].as_u64()), (StatusCode::OK, Some(1)), "{rule}");
    let put = json!({"plugins": ["pinned-images", "kept-rule"]});
    let (status, chain) = host.request(reqwest::Method::PUT, "/policy-chain", Some(put)).await;
    assert_eq!(status, StatusCode::OK, "the restored rule loads: {chain}");
    let d = host.wait_for(&kept, "error").await;
    assert!(d["status_message"].as_str().unwrap_or_default().contains("vanished"), "{d}");
    assert_eq!(host.get(&format!("/runtimes/{unknown}")).await.0, StatusCode::NOT_FOUND);
    let label = format!("label=mcp-runtime.deployment={unknown}");
    assert_eq!(support::docker(&["ps", "-aq", "--filter", &label]), "", "the container no record claims is removed");
    assert_eq!(host.delete(&format!("/runtimes/{kept}")).await.0, StatusCode::NO_CONTENT);
}

/// A backup of a store holding `slug`, written to `dir/name`.
fn backup_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let data = dir.join(format!("{name}-data"));
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(&data.join(FILE_NAME)).unwrap();
    std::fs::write(data.join("jwt-secret"), "a-secret").unwrap();
    let staged = backup::stage(&store, &data).unwrap();
    let file = dir.join(name);
    staged.write_to(std::fs::File::create(&file).unwrap()).unwrap();
    file
}

#[test]
fn a_damaged_or_newer_backup_is_refused_and_the_stopped_hosts_files_stay() {
    let dir = tempfile::tempdir().unwrap();
    let good = backup_file(dir.path(), "good.tar");
    let target = dir.path().join("target");
    let restored = backup::restore(backup::read(&good, &target).unwrap(), &target).unwrap();
    assert_eq!(restored.files, 2, "the store and the token secret");
    assert_eq!(std::fs::read_to_string(target.join("jwt-secret")).unwrap(), "a-secret");
    let before = std::fs::read(target.join(FILE_NAME)).unwrap();

    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped.tar");
    let mut changed = bytes.clone();
    // Past the header entry, inside the store's bytes.
    changed[4096] ^= 0xff;
    std::fs::write(&flipped, &changed).unwrap();
    let newer = dir.path().join("newer.tar");
    let header = String::from_utf8_lossy(&bytes[512..1024]).into_owned();
    let schema = format!("\"schema_version\": {SCHEMA_VERSION}");
    assert!(header.contains(&schema), "{header}");
    let mut newer_bytes = bytes.clone();
    let at = 512 + header.find(&schema).unwrap() + schema.len() - 1;
    newer_bytes[at] = b'9';
    std::fs::write(&newer, &newer_bytes).unwrap();
    std::fs::write(dir.path().join("not-a-backup.tar"), b"hello").unwrap();

    for (name, expected) in [
        ("truncated.tar", "damaged"),
        ("flipped.tar", "checksum"),
        ("newer.tar", "newer than this build"),
        ("not-a-backup.tar", "damaged"),
    ] {
        let refused = backup::read(&dir.path().join(name), &target).map(|_| ()).unwrap_err();
        assert!(refused.to_string().contains(expected), "{name}: {refused}");
        assert!(matches!(refused, BackupError::Damaged(_) | BackupError::SchemaTooNew { .. }), "{name}: {refused:?}");
        assert_eq!(std::fs::read(target.join(FILE_NAME)).unwrap(), before, "{name} touched the store");
    }
    let staging: Vec<_> = std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(staging.len(), 2, "no staging left behind: {staging:?}");
}
