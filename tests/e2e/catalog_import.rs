//! Importing catalogs people publish: the MCP registry's paginated
//! `/v0/servers` (and servers hosted elsewhere, its `remotes`), a Docker
//! `server.yaml` and ContextForge's `mcp-catalog.yml` (remote entries),
//! served by a loopback HTTP server; the entries they become, a dry run, a
//! resync that finds nothing new and keeps the admin's choices, a required
//! variable enforced at deploy, and a catalog host the config does not list.

use crate::support;

use axum::extract::Query;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::TestHost;

fn server(name: &str, image: &str, extra: Value) -> Value {
    let mut package =
        json!({"registryType": "oci", "identifier": image, "version": "1.0.0", "transport": {"type": "stdio"}});
    if let Some(vars) = extra.get("environmentVariables") {
        package["environmentVariables"] = vars.clone();
    }
    json!({"server": {"name": name, "description": format!("{name}, from the registry"), "version": "1.0.0",
                      "packages": [package]}})
}

/// `/v0/servers` in two pages (without `notes` once `removed` is set), a
/// Docker `server.yaml`, a ContextForge catalog.
async fn catalog_server_with(removed: Arc<AtomicBool>) -> String {
    let weather = server(
        "io.github.acme/weather",
        "127.0.0.1:5000/acme/weather",
        json!({"environmentVariables": [{"name": "WEATHER_API_KEY", "isRequired": true, "isSecret": true}]}),
    );
    let notes = server("io.github.acme/notes", "127.0.0.1:5000/acme/notes", json!({}));
    // A kind of package this runtime does not run: skipped, naming it.
    let nuget = json!({"server": {"name": "io.github.acme/nuget-thing",
                                "packages": [{"registryType": "nuget", "identifier": "Acme.Thing"}]}});
    let second = json!({"servers": [server("io.github.acme/search", "127.0.0.1:5000/acme/search", json!({}))],
                        "metadata": {}});
    let servers = move |Query(q): Query<HashMap<String, String>>| {
        let listed = match removed.load(Ordering::SeqCst) {
            false => vec![weather.clone(), notes.clone(), nuget.clone()],
            true => vec![weather.clone(), nuget.clone()],
        };
        let first = json!({"servers": listed, "metadata": {"nextCursor": "page-2"}});
        let page = if q.get("cursor").map(String::as_str) == Some("page-2") { second.clone() } else { first };
        async move { axum::Json(page) }
    };
    let docker = "name: fetch\nimage: 127.0.0.1:5000/mcp/fetch:1\ntype: server\nmeta: {category: web, tags: [web]}\nabout: {title: Fetch, description: Fetches URLs}\n";
    let contextforge = "catalog_servers:\n  - {id: asana, name: Asana, category: Project Management, url: 'https://mcp.asana.com/sse', tags: [tasks]}\n";
    let app = axum::Router::new()
        .route("/v0/servers", get(servers))
        .route("/docker/fetch/server.yaml", get(move || async move { docker }))
        .route("/mcp-catalog.yml", get(move || async move { contextforge }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn catalog_server() -> String {
    catalog_server_with(Arc::default()).await
}

fn remote(url: &str) -> mcp_runtime::config::RemoteCatalog {
    serde_json::from_value(json!({"url": url, "sync_interval_hours": 24})).unwrap()
}

fn outcomes(answer: &Value) -> Vec<(String, String)> {
    answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["upstream_id"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_catalogs_import_filter_resync_and_enforce_what_entries_declare() {
    let base = catalog_server().await;
    let listed = base.clone();
    // The host is listed; what it syncs by itself (nothing there) does not race this test's imports.
    let host = TestHost::start(move |config| {
        config.catalog.remote_catalogs = vec![remote(&format!("{listed}/nothing-here"))];
    })
    .await;
    let registry = format!("{base}/v0/servers");

    // A dry run says what would happen, and stores nothing.
    let (status, dry) = host.post("/catalog/import", json!({"url": registry, "dry_run": true})).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["format"], "mcp-registry");
    assert_eq!(dry["counts"], json!({"added": 3, "updated": 0, "unchanged": 0, "skipped": 1}), "both pages: {dry}");
    assert_eq!(host.get("/catalog/io-github-acme-weather").await.0, StatusCode::NOT_FOUND);

    // Filtered, then whole; the skipped one says why.
    let filtered = json!({"url": registry, "filter": {"q": "notes"}});
    let (_, answer) = host.post("/catalog/import", filtered).await;
    assert_eq!(
        outcomes(&answer),
        [("io.github.acme/notes".into(), "added".into()), ("io.github.acme/nuget-thing".into(), "skipped".into())]
    );
    let (_, answer) = host.post("/catalog/import", json!({"url": registry})).await;
    assert_eq!(answer["counts"], json!({"added": 2, "updated": 0, "unchanged": 1, "skipped": 1}), "{answer}");
    let nuget = answer["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "skipped").unwrap();
    assert_eq!(nuget["field"], "packages[0].registryType", "{nuget}");

    let (_, weather) = host.get("/catalog/io-github-acme-weather").await;
    assert_eq!(weather["origin"]["upstream_id"], "io.github.acme/weather", "{weather}");
    assert_eq!(weather["transport"], "stdio");
    assert_eq!(weather["env_vars"][0], json!({"name": "WEATHER_API_KEY", "required": true, "secret": true}));

    // The admin's choices survive a resync, which finds nothing new.
    let mut mine = weather.clone();
    mine["guardrails_profile"] = json!("restricted");
    mine["requires_approval"] = json!(true);
    assert_eq!(
        host.request(reqwest::Method::PUT, "/catalog/io-github-acme-weather", Some(mine)).await.0,
        StatusCode::OK
    );
    let (_, again) = host.post("/catalog/import", json!({"url": registry})).await;
    assert_eq!(again["counts"], json!({"added": 0, "updated": 0, "unchanged": 3, "skipped": 1}), "{again}");
    let (_, kept) = host.get("/catalog/io-github-acme-weather").await;
    assert_eq!(
        (kept["guardrails_profile"].as_str(), kept["requires_approval"].as_bool()),
        (Some("restricted"), Some(true))
    );

    // The past is kept: the import's revision, then the admin's; a resync that changed nothing adds none.
    let (_, versions) = host.get("/catalog/io-github-acme-weather/versions").await;
    let revisions = versions["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "{versions}");
    assert_eq!(
        (revisions[0]["entry"]["guardrails_profile"].as_str(), revisions[0]["version"].as_str()),
        (Some("standard"), Some("1.0.0"))
    );
    assert_eq!((revisions[1]["revision"].as_u64(), revisions[1]["by"].as_str()), (Some(2), Some("admin@example.com")));
    let (status, refused) = host
        .post(
            "/runtimes/deploy",
            json!({"slug": "io-github-acme-weather", "catalog_revision": 9, "env": {"WEATHER_API_KEY": "k"}}),
        )
        .await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("catalog_revision")));
    let (status, held) = host
        .post(
            "/runtimes/deploy",
            json!({"slug": "io-github-acme-weather", "catalog_revision": 1, "env": {"WEATHER_API_KEY": "k"}}),
        )
        .await;
    assert!(status.is_success(), "{held}");
    let id = held["id"].as_str().unwrap().to_string();
    let (_, d) = host.get(&format!("/runtimes/{id}")).await;
    assert_eq!(d["request"]["catalog_revision"].as_u64(), Some(1), "the revision it runs: {d}");
    assert_eq!(
        (d["profile"].as_str(), d["status"].as_str()),
        (Some("restricted"), Some("awaiting_approval")),
        "governed as the entry is now: {d}"
    );
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);

    // A required variable is enforced at deploy, named, before anything is made.
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "io-github-acme-weather"})).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("env.WEATHER_API_KEY")));

    // Other formats, posted inline; hosts the config does not list are refused.
    let docker = reqwest::get(format!("{base}/docker/fetch/server.yaml")).await.unwrap().text().await.unwrap();
    let (_, answer) = host.post("/catalog/import", json!({"document": docker})).await;
    assert_eq!(
        (answer["format"].as_str(), outcomes(&answer)),
        (Some("docker"), vec![("fetch".into(), "added".into())])
    );
    let (_, fetch) = host.get("/catalog/fetch").await;
    assert_eq!((fetch["transport"].as_str(), fetch["category"].as_str()), (Some("stdio"), Some("web")), "{fetch}");
    let elsewhere = catalog_server().await;
    let (status, refused) = host.post("/catalog/import", json!({"url": format!("{elsewhere}/mcp-catalog.yml")})).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("url")), "{refused}");
    let cf = reqwest::get(format!("{base}/mcp-catalog.yml")).await.unwrap().text().await.unwrap();
    let (_, answer) = host.post("/catalog/import", json!({"document": cf, "format": "contextforge"})).await;
    assert_eq!(outcomes(&answer), vec![("asana".into(), "added".into())], "{answer}");
    let (_, asana) = host.get("/catalog/asana").await;
    assert_eq!(asana["source"], json!({"type": "remote", "url": "https://mcp.asana.com/sse"}), "{asana}");
    assert_eq!(asana["transport"], "sse", "told from the URL, as ContextForge does");
    // A registry server with only `remotes`, and one with headers: remote entries, the second keyed.
    let hosted = json!({"name": "io.github.acme/hosted", "version": "1.0.0", "remotes": [
        {"type": "streamable-http", "url": "https://mcp.acme.example/mcp"}]});
    let keyed = json!({"name": "io.github.acme/keyed", "version": "1.0.0", "remotes": [
        {"type": "sse", "url": "https://keyed.acme.example/sse",
         "headers": [{"name": "X-API-Key", "isRequired": true, "isSecret": true}]}]});
    for (document, auth) in [(hosted, Value::Null), (keyed, json!("API Key"))] {
        let (_, answer) = host.post("/catalog/import", json!({"document": document.to_string()})).await;
        assert_eq!(answer["entries"][0]["outcome"], "added", "{answer}");
        let (_, entry) = host.get(&format!("/catalog/{}", answer["entries"][0]["slug"].as_str().unwrap())).await;
        assert_eq!((entry["source"]["type"].as_str(), &entry["source"]["auth"]), (Some("remote"), &auth), "{entry}");
    }
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "io-github-acme-hosted"})).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("slug")), "{refused}");
    let (status, bad) = host.post("/catalog/import", json!({"document": "hello: world"})).await;
    assert_eq!((status, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("format")));
    let (status, _) = host.post("/catalog/import", json!({"url": registry, "document": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "one source at a time");
}

#[tokio::test(flavor = "multi_thread")]
async fn contextforges_published_catalog_is_read_whole_and_each_server_answered() {
    let path = support::repo_root().join(".venv/fixtures/mcp-catalog.yml");
    let document = std::fs::read_to_string(&path).expect("fetched by `make catalog-fixtures`");
    let host = TestHost::start(|_| {}).await;
    let (status, answer) = host.post("/catalog/import", json!({"document": document, "dry_run": true})).await;
    assert_eq!((status, answer["format"].as_str()), (StatusCode::OK, Some("contextforge")), "{answer}");
    let entries = answer["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 135, "every server of the published catalog is answered");
    let added = entries.iter().filter(|e| e["outcome"] == "added").count();
    let skipped: Vec<&Value> = entries.iter().filter(|e| e["outcome"] == "skipped").collect();
    assert_eq!(added + skipped.len(), 135, "{answer}");
    assert!(added >= 130, "all but a few are remote entries: {skipped:?}");
    assert!(skipped.iter().all(|e| e["field"].is_string() && e["reason"].is_string()), "{skipped:?}");

    let (status, _) = host.post("/catalog/import", json!({"document": document})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, github) = host.get("/catalog/github").await;
    assert_eq!(github["source"]["type"], "remote", "named by its id: {github}");
    assert_eq!(github["source"]["url"], "https://api.githubcopilot.com/mcp");
    assert_eq!(
        (github["transport"].as_str(), github["source"]["auth"].as_str()),
        (Some("streamable-http"), Some("OAuth2.1"))
    );
    let (_, managed) = host.get("/catalog?category=Project%20Management").await;
    assert!(managed.as_array().unwrap().len() >= 3, "categories kept: {managed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_catalogs_sync_on_start_and_entries_gone_upstream_are_deprecated() {
    let removed = Arc::new(AtomicBool::new(false));
    let base = catalog_server_with(removed.clone()).await;
    let url = format!("{base}/v0/servers");
    let listed = url.clone();
    let host = TestHost::start(move |config| {
        let mut source = remote(&listed);
        source.guardrails_profile = Some("restricted".into());
        source.requires_approval = true;
        config.catalog.remote_catalogs = vec![source];
    })
    .await;

    // Synced on start, by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let sources = loop {
        let (_, sources) = host.get("/catalog/sources").await;
        if !sources[0]["last"].is_null() {
            break sources;
        }
        assert!(std::time::Instant::now() < deadline, "never synced: {sources}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(sources[0]["url"], url.as_str());
    assert_eq!(sources[0]["last"]["counts"]["added"], 3, "{sources}");
    let (status, notes) = host.get("/catalog/io-github-acme-notes").await;
    assert_eq!(status, StatusCode::OK);
    let guarded = (notes["guardrails_profile"].as_str(), notes["requires_approval"].as_bool());
    assert_eq!(guarded, (Some("restricted"), Some(true)), "the source's defaults, at the least: {notes}");

    // Gone upstream: deprecated, not deleted; the rest unchanged.
    removed.store(true, Ordering::SeqCst);
    let (status, synced) = host.post("/catalog/sources/sync", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{synced}");
    let counts = &synced[0]["last"]["counts"];
    assert_eq!((counts["unchanged"].as_u64(), counts["deprecated"].as_u64()), (Some(2), Some(1)), "{synced}");
    let (_, notes) = host.get("/catalog/io-github-acme-notes").await;
    assert_eq!(notes["deprecated"], true, "{notes}");
    let (_, listed) = host.get("/catalog").await;
    assert!(!support::pluck(&listed, "/slug").contains(&"io-github-acme-notes"), "hidden unless asked for");
    let (_, events) = host.get("/events?type=catalog").await;
    assert!(support::pluck(&events, "/type").contains(&"catalog.synced"), "{events}");
}
