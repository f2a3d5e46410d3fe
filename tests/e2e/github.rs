//! Deployments built from Git repositories on Docker, against real servers on
//! loopback (`git http-backend`): a revision pinned to its commit when the
//! request is checked, the build confined to the checkout and logged live,
//! the image reused for a commit built already, private repositories fetched
//! with the host's token, which never shows anywhere.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::git_server::{fixture_repo, GitServer};
use support::{docker, TestHost};

const TOKEN: &str = "git-token-9f8e7d6c5b4a";

async fn host_for(git: &GitServer, token: Option<&str>) -> TestHost {
    let (base, token) = (git.base.clone(), token.map(String::from));
    TestHost::start(move |c| {
        c.sources.git_base_url = base;
        c.sources.token = token;
    })
    .await
}

/// Adds a catalog entry building `repo` with `source` settings.
async fn entry(host: &TestHost, slug: &str, repo: &str, source: Value) -> StatusCode {
    let mut source_json = json!({"type": "github", "repo": repo});
    source_json.as_object_mut().unwrap().extend(source.as_object().unwrap().clone());
    let body = json!({"name": slug, "slug": slug, "source": source_json, "guardrails_profile": "restricted",
                      "supported_backends": ["docker"], "version": "1.0.0"});
    let (status, answer) = host.post("/catalog", body).await;
    assert!(status == StatusCode::CREATED || status.is_client_error(), "{answer}");
    status
}

/// Deploys `slug`, which the default rules hold (a repository source), and
/// approves it; the deploy answer.
async fn deploy_approved(host: &TestHost, slug: &str) -> Value {
    let (status, held) = host.post("/runtimes/deploy", json!({"slug": slug})).await;
    assert_eq!((status, held["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{held}");
    let approver = host.token_in("sec", &[Role::Approver], &["security-team"]);
    let path = format!("/approvals/{}/approve", held["approval_id"].as_str().unwrap());
    let (status, approved) = host.request_as(Some(&approver), Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    held
}

async fn wait_status(host: &TestHost, id: &str, wanted: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["status"] == wanted || (d["status"] == "error" && wanted != "error") {
            assert_eq!(d["status"], wanted, "{d}");
            return d;
        }
        assert!(Instant::now() < deadline, "never {wanted}: {d}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn branches_tags_and_commits_build_and_connect_and_a_built_commit_is_reused() {
    let git = GitServer::start(TOKEN).await;
    let first = git.create("org/fixture", &fixture_repo());
    git.tag("org/fixture", "v1");
    let host = host_for(&git, None).await;

    // A branch: pinned to its commit when checked, which the approver sees.
    entry(&host, "from-main", "org/fixture", json!({"revision": "main", "build_args": {"FLAVOUR": "spicy"}})).await;
    let held = deploy_approved(&host, "from-main").await;
    assert_eq!(held["commit"], first.as_str(), "{held}");
    let id = held["id"].as_str().unwrap().to_string();
    let d = wait_status(&host, &id, "connected").await;
    assert_eq!((&d["build"]["commit"], &d["build"]["cache"]), (&json!(first), &json!("miss")), "{d}");
    let image = d["image"].as_str().unwrap().to_string();
    assert_eq!(image, format!("mcp-runtime.local/from-main:{}", &first[..12]));
    let built = docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(d["build"]["content"], built.as_str(), "the built image's content is recorded: {d}");
    assert_eq!(docker(&["image", "inspect", "--format", "{{index .Config.Labels \"flavour\"}}", &image]), "spicy");
    assert!(!docker(&["image", "ls", "-q", "mcp-runtime.local/from-main:1.0.0"]).is_empty(), "tagged by version");
    let mut session = host.mcp_session(&id).await;
    assert_eq!(session.call_tool("echo", json!({"text": "built from git"})).await.unwrap(), "built from git");
    let (status, log) = host.get_text(&format!("/runtimes/{id}/build-logs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(log.contains("Step 1/") && log.contains(&format!("built {image}")), "{log}");
    let (_, events) = host.get(&format!("/events?deployment={id}&type=deployment.built")).await;
    assert_eq!(events[0]["data"]["commit"], first.as_str(), "{events}");
    assert_eq!(events[0]["data"]["builder"], "docker");

    // The same commit again: nothing fetched, nothing built.
    let again = deploy_approved(&host, "from-main").await;
    let d = wait_status(&host, again["id"].as_str().unwrap(), "connected").await;
    assert_eq!(d["build"]["cache"], "hit", "{d}");

    // A tag, and a commit named outright; a multi-stage build of one stage.
    let second = git.commit("org/fixture", &[("README", b"moved on".to_vec())]);
    entry(&host, "from-tag", "org/fixture", json!({"revision": "v1"})).await;
    let held = deploy_approved(&host, "from-tag").await;
    assert_eq!(held["commit"], first.as_str(), "a tag names its commit, not the branch's tip");
    wait_status(&host, held["id"].as_str().unwrap(), "connected").await;
    let staged = json!({"revision": second, "context_dir": "server", "dockerfile": "Dockerfile", "target": "server"});
    entry(&host, "from-commit", "org/fixture", staged).await;
    let held = deploy_approved(&host, "from-commit").await;
    let d = wait_status(&host, held["id"].as_str().unwrap(), "connected").await;
    assert_eq!(d["build"]["commit"], second.as_str(), "{d}");
    for d in host.get("/runtimes").await.1.as_array().unwrap() {
        assert_eq!(host.delete(&format!("/runtimes/{}", d["id"].as_str().unwrap())).await.0, StatusCode::NO_CONTENT);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_moving_branch_builds_the_approved_commit_and_bad_builds_fail_clearly() {
    let git = GitServer::start(TOKEN).await;
    let approved = git.create("org/moving", &fixture_repo());
    let host = host_for(&git, None).await;
    entry(&host, "moving", "org/moving", json!({"revision": "main"})).await;
    let (_, held) = host.post("/runtimes/deploy", json!({"slug": "moving"})).await;
    assert_eq!(held["commit"], approved.as_str(), "{held}");
    // The branch moves while the request waits; the approver approved the first commit.
    git.commit("org/moving", &[("README", b"not what was approved".to_vec())]);
    let approver = host.token_in("sec", &[Role::Approver], &["security-team"]);
    let path = format!("/approvals/{}/approve", held["approval_id"].as_str().unwrap());
    assert_eq!(host.request_as(Some(&approver), Method::POST, &path, Some(json!({}))).await.0, StatusCode::OK);
    let d = wait_status(&host, held["id"].as_str().unwrap(), "connected").await;
    assert_eq!(d["build"]["commit"], approved.as_str(), "{d}");

    // Paths out of the repository never make it into the catalog.
    assert_eq!(
        entry(&host, "escape", "org/moving", json!({"dockerfile": "../../etc/passwd"})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        entry(&host, "escape", "org/moving", json!({"context_dir": "/etc"})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A revision the repository does not have is refused when the request is checked.
    entry(&host, "nowhere", "org/moving", json!({"revision": "no-such-branch"})).await;
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "nowhere"})).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("source.revision")),
        "{refused}"
    );
    // A build that fails ends in error with the failing step and the last lines.
    entry(&host, "broken", "org/moving", json!({"dockerfile": "Broken.Dockerfile"})).await;
    let held = deploy_approved(&host, "broken").await;
    let d = wait_status(&host, held["id"].as_str().unwrap(), "error").await;
    let message = d["status_message"].as_str().unwrap();
    assert!(message.contains("the build failed") && message.contains("does-not-exist"), "{message}");
    // The step that succeeded left an image the failure made dangling: removed.
    let (_, log) = host.get_text(&format!("/runtimes/{}/build-logs", held["id"].as_str().unwrap())).await;
    // The images the build made: each `---> <id>` not announced as found in the cache.
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    let step_images: Vec<&str> = lines
        .windows(2)
        .filter(|pair| pair[0] != "---> Using cache")
        .filter_map(|pair| pair[1].strip_prefix("---> "))
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert!(!step_images.is_empty(), "{log}");
    for id in &step_images {
        let out = std::process::Command::new("docker").args(["image", "inspect", id]).output().unwrap();
        assert!(!out.status.success(), "intermediate image {id} left dangling");
    }
    // The delete may land before the first git command made the checkouts directory.
    let checkouts = std::fs::read_dir(host.config.data_dir.join("checkouts")).map_or(0, |dir| dir.count());
    assert_eq!(checkouts, 0, "checkouts are removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_repository_is_fetched_with_the_token_which_never_shows() {
    let git = GitServer::start(TOKEN).await;
    git.create("private/fixture", &fixture_repo());
    let without = host_for(&git, None).await;
    entry(&without, "private", "private/fixture", json!({})).await;
    let (status, refused) = without.post("/runtimes/deploy", json!({"slug": "private"})).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("source.repo")),
        "{refused}"
    );

    // The entry names a credential the host holds; no default token is needed.
    let base = git.base.clone();
    let host = TestHost::start(move |c| {
        c.sources.git_base_url = base;
        let credential = json!({"token": TOKEN});
        c.sources.credentials.insert("private-repos".into(), serde_json::from_value(credential).unwrap());
    })
    .await;
    entry(&host, "unknown-credential", "private/fixture", json!({"credential": "nobody-has-it"})).await;
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "unknown-credential"})).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("source.credential")),
        "{refused}"
    );
    entry(&host, "private", "private/fixture", json!({"credential": "private-repos"})).await;
    let held = deploy_approved(&host, "private").await;
    let id = held["id"].as_str().unwrap().to_string();
    let d = wait_status(&host, &id, "connected").await;
    let (_, log) = host.get_text(&format!("/runtimes/{id}/build-logs")).await;
    let (_, events) = host.get("/events").await;
    let history = docker(&["history", "--no-trunc", d["image"].as_str().unwrap()]);
    for (what, text) in
        [("build log", log), ("events", events.to_string()), ("runtime", d.to_string()), ("image history", history)]
    {
        assert!(!text.contains(TOKEN), "the token is in the {what}");
    }
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_over_ssh_is_fetched_with_the_hosts_key_only() {
    let git = GitServer::start(TOKEN).await;
    git.create("org/over-ssh", &fixture_repo());
    let ssh = support::ssh_server::SshServer::start();
    let url = ssh.url(&git.bare("org/over-ssh"));
    let without = host_for(&git, None).await;
    entry(&without, "over-ssh", &url, json!({})).await;
    let (status, refused) = without.post("/runtimes/deploy", json!({"slug": "over-ssh"})).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("source.repo")),
        "{refused}"
    );

    let key = ssh.key.clone();
    let base = git.base.clone();
    let host = TestHost::start(move |c| {
        c.sources.git_base_url = base;
        c.sources.ssh_key_path = Some(key);
    })
    .await;
    entry(&host, "over-ssh", &url, json!({})).await;
    let held = deploy_approved(&host, "over-ssh").await;
    let d = wait_status(&host, held["id"].as_str().unwrap(), "connected").await;
    assert_eq!(d["build"]["cache"], "miss", "{d}");
    assert_eq!(host.delete(&format!("/runtimes/{}", d["id"].as_str().unwrap())).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_built_image_is_pushed_with_the_hosts_login_and_runs_by_digest() {
    let git = GitServer::start(TOKEN).await;
    git.create("org/pushed", &fixture_repo());
    let password = "push-password-5e6f";
    let registry = support::Registry::start_with_login(Some(("pusher", password))).await;
    // The host signs what it builds; its public key is trusted for where it pushes.
    let keys = tempfile::tempdir().unwrap();
    let signing = mcp_runtime::supply_chain::cosign::PrivateKey::generate();
    let key_file = keys.path().join("builds.key");
    std::fs::write(&key_file, signing.to_pem()).unwrap();
    let (base, address, public) = (git.base.clone(), registry.address.clone(), signing.public().to_pem());
    let host = TestHost::start(move |c| {
        c.sources.git_base_url = base;
        let login = json!({"username": "pusher", "password": password});
        c.sources.registries.insert(address.clone(), serde_json::from_value(login).unwrap());
        c.supply_chain.signing_key =
            Some(mcp_runtime::config::SigningKeyConfig { name: "builds".into(), key_file: key_file.clone() });
        c.supply_chain.trusted_keys = vec![mcp_runtime::config::TrustedKeyConfig {
            name: "builds".into(),
            key: Some(public),
            key_file: None,
            images: vec![format!("{address}/mcp")],
            entries: vec![],
        }];
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!(["docker.io", address]));
    })
    .await;
    // A registry the backend may not use is refused before anything is built.
    let elsewhere = json!({"push_to_registry": true, "registry": "registry.invalid/mcp"});
    entry(&host, "pushed-elsewhere", "org/pushed", elsewhere).await;
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "pushed-elsewhere"})).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("source.registry")),
        "{refused}"
    );

    let to_loopback = json!({"push_to_registry": true, "registry": format!("{}/mcp", registry.address)});
    entry(&host, "pushed", "org/pushed", to_loopback).await;
    let held = deploy_approved(&host, "pushed").await;
    let id = held["id"].as_str().unwrap().to_string();
    let d = wait_status(&host, &id, "connected").await;
    let image = d["image"].as_str().unwrap();
    assert!(image.starts_with(&format!("{}/mcp/pushed@sha256:", registry.address)), "runs by digest: {d}");
    let running = docker(&["inspect", "--format", "{{.Config.Image}}", &format!("mcprt-{}", &id[..8])]);
    assert_eq!(running, image);
    let catalog = reqwest::Client::new()
        .get(format!("http://{}/v2/mcp/pushed/tags/list", registry.address))
        .basic_auth("pusher", Some(password))
        .send()
        .await
        .unwrap();
    assert!(catalog.text().await.unwrap().contains(&held["commit"].as_str().unwrap()[..12]), "the registry has it");
    // Signed beside it, as cosign stores signatures, and verified as the profile (require) asks.
    let digest = image.rsplit_once('@').unwrap().1;
    let signature = reqwest::Client::new()
        .get(format!("http://{}/v2/mcp/pushed/manifests/{}", registry.address, digest.replace(':', "-") + ".sig"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .basic_auth("pusher", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(signature.status(), StatusCode::OK, "the signature artifact is in the registry");
    assert_eq!(d["request"]["evidence"]["signature"], json!({"mode": "require", "outcome": "valid", "key": "builds"}));
    let (_, log) = host.get_text(&format!("/runtimes/{id}/build-logs")).await;
    let (_, events) = host.get("/events").await;
    assert!(log.contains("pushed ") && !log.contains(password) && !events.to_string().contains(password), "{log}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_during_a_build_cancels_it_and_leaves_nothing() {
    let git = GitServer::start(TOKEN).await;
    git.create("slow/fixture", &fixture_repo());
    let host = host_for(&git, None).await;
    // Resolving asks the (slow) server too: name the commit so the check does not wait.
    let commit = support::git_server::head_of(&git, "slow/fixture");
    entry(&host, "slow", "slow/fixture", json!({"revision": commit})).await;
    let held = deploy_approved(&host, "slow").await;
    let id = held["id"].as_str().unwrap().to_string();
    wait_status(&host, &id, "building").await;
    let (_, mut follow) = host.get_stream(&format!("/runtimes/{id}/build-logs?follow=true")).await;
    let started = Instant::now();
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert!(started.elapsed() < Duration::from_secs(30), "the delete waited for the build");
    let mut seen = String::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), follow.chunk()).await.unwrap_or(Ok(None))
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: done"), "{seen}");
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty());
    // The delete may land before the first git command made the checkouts directory.
    let checkouts = std::fs::read_dir(host.config.data_dir.join("checkouts")).map_or(0, |dir| dir.count());
    assert_eq!(checkouts, 0, "checkouts are removed");
}
