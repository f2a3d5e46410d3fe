//! The fake against `shared/reference/code-engine-api.md`, section by section.

use ce_fake::{FakeCodeEngine, FakeConfig, Fault};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

struct Client {
    http: reqwest::Client,
    base: String,
    project: String,
    token: String,
}

impl Client {
    async fn new(fake: &FakeCodeEngine) -> Client {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let token = iam(&http, &fake.base_url(), "test-api-key").await.1["access_token"].as_str().unwrap().to_string();
        Client { http, base: fake.base_url(), project: fake.project_id().to_string(), token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/projects/{}{path}", self.base, self.project)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value, Option<String>) {
        let res = req.bearer_auth(&self.token).send().await.unwrap();
        let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), etag)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value, Option<String>) {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value, Option<String>) {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    async fn patch(&self, path: &str, if_match: Option<&str>, body: Value) -> (StatusCode, Value, Option<String>) {
        let mut req = self
            .http
            .patch(self.url(path))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }
}

async fn iam(http: &reqwest::Client, base: &str, key: &str) -> (StatusCode, Value) {
    let form =
        [("grant_type", "urn:ibm:params:oauth:grant-type:apikey"), ("apikey", key), ("response_type", "cloud_iam")];
    let res = http
        .post(format!("{base}/identity/token"))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

fn assert_ce_error(body: &Value, status: u16, code: &str) {
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(body["errors"][0]["message"].is_string());
    assert_eq!(body["status_code"], status);
    let trace = body["trace"].as_str().unwrap();
    assert!(trace.starts_with("codeengine-api-") && trace.len() == 15 + 32, "{trace}");
}

#[tokio::test]
async fn iam_exchanges_an_api_key_and_refuses_a_bad_one() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let http = reqwest::Client::new();
    let (status, token) = iam(&http, &fake.base_url(), "test-api-key").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert!(token["expiration"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    let (status, error) = iam(&http, &fake.base_url(), "wrong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errorCode"], "BXNIM0415E");

    let res = http.get(format!("{}/v2/projects", fake.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_ce_error(&res.json().await.unwrap(), 401, "unauthorized");

    let c = Client::new(&fake).await;
    assert_eq!(c.get("").await.1["status"], "active");
    fake.expire_tokens();
    assert_eq!(c.get("").await.0, StatusCode::UNAUTHORIZED, "an expired token is refused");
}

#[tokio::test]
async fn apps_are_created_validated_and_settle_asynchronously() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let c = Client::new(&fake).await;
    let (status, app, etag) = c.post("/apps", json!({"name": "echo", "image_reference": "icr.io/ns/echo:1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    assert_eq!(etag.as_deref(), app["entity_tag"].as_str());
    assert_eq!((app["status"].as_str(), app["resource_type"].as_str()), (Some("deploying"), Some("app_v2")));
    assert_eq!((app["scale_cpu_limit"].as_str(), app["scale_memory_limit"].as_str()), (Some("1"), Some("4G")));
    assert_eq!(
        (app["image_port"].as_i64(), app["scale_min_instances"].as_i64(), app["scale_max_instances"].as_i64()),
        (Some(8080), Some(0), Some(10))
    );
    assert_eq!(app["probe_readiness"]["type"], "tcp");
    assert!(app["endpoint"].as_str().unwrap().ends_with(".us-south.codeengine.appdomain.cloud"));
    assert!(app["endpoint_internal"].as_str().unwrap().ends_with(".svc.cluster.local"));
    assert_eq!(app["run_env_variables"], json!([]), "arrays are always present");

    // deploying → ready after the configured number of polls
    assert_eq!(c.get("/apps/echo").await.1["status"], "deploying");
    let (_, app, _) = c.get("/apps/echo").await;
    assert_eq!((app["status"].as_str(), app["status_details"]["reason"].as_str()), (Some("ready"), Some("ready")));
    let (_, instances, _) = c.get("/apps/echo/instances").await;
    assert_eq!(instances["instances"][0]["status"], "running");
    fake.set_restarts("echo", 3);
    assert_eq!(c.get("/apps/echo/instances").await.1["instances"][0]["status_details"]["restarts"], 3);

    for (body, why) in [
        (json!({"name": "Echo", "image_reference": "x/y"}), "upper case name"),
        (json!({"name": "echo-", "image_reference": "x/y"}), "trailing dash"),
        (json!({"name": "ok"}), "no image"),
        (
            json!({"name": "ok", "image_reference": "x/y", "scale_cpu_limit": "0.25", "scale_memory_limit": "4G"}),
            "invalid pair",
        ),
        (json!({"name": "ok", "image_reference": "x/y", "scale_request_timeout": 601}), "timeout above 600"),
        (json!({"name": "ok", "image_reference": "x/y", "managed_domain_mappings": "public"}), "CLI spelling"),
    ] {
        let (status, error, _) = c.post("/apps", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
        assert_ce_error(&error, 400, "invalid_parameter");
    }
    let ok = json!({"name": "small", "image_reference": "x/y", "scale_cpu_limit": "0.25", "scale_memory_limit": "500M", "managed_domain_mappings": "local"});
    let (status, small, _) = c.post("/apps", ok.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{small}");
    assert_eq!(small["endpoint"], "", "a project-only app has no public endpoint");
    let (status, error, _) = c.post("/apps", ok).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_ce_error(&error, 409, "conflict");

    let (status, _, _) = c.post("/apps", json!({"name": "bad", "image_reference": "icr.io/ns/bad-image:1"})).await;
    assert_eq!(status, StatusCode::CREATED);
    c.get("/apps/bad").await;
    let (_, bad, _) = c.get("/apps/bad").await;
    assert_eq!(bad["status"], "failed", "an image marked bad fails: {bad}");

    let wrong_project = c.http.get(format!("{}/v2/projects/00000000-0000-0000-0000-000000000000/apps", c.base));
    let (status, error, _) = c.send(wrong_project).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ce_error(&error, 404, "resource_not_found");
    let (status, _, _) = c.send(c.http.get(format!("{}/v2/projects/NOT-A-UUID/apps", c.base))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn updates_need_the_current_entity_tag() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let c = Client::new(&fake).await;
    let (_, app, etag) = c.post("/apps", json!({"name": "echo", "image_reference": "x/y:1"})).await;
    let etag = etag.unwrap();
    let change = json!({"scale_min_instances": 1, "scale_cpu_limit": "0.5", "scale_memory_limit": "1G"});

    let (status, error, _) = c.patch("/apps/echo", None, change.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_ce_error(&error, 428, "precondition_required");
    let (status, error, _) = c.patch("/apps/echo", Some("123"), change.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_ce_error(&error, 412, "precondition_failed");
    let wrong_type = c.http.patch(c.url("/apps/echo")).header("if-match", &etag).json(&change);
    assert_eq!(c.send(wrong_type).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = c.patch("/apps/echo", Some(&etag), json!({"scale_memory_limit": "48G"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "1 vCPU with 48G is not a pair");

    let (status, patched, new_etag) = c.patch("/apps/echo", Some(&etag), change).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()), "a change makes a new entity tag");
    assert_eq!(patched["scale_min_instances"], 1);
    assert_eq!(patched["status"], "deploying");
    assert_eq!(patched["status_details"]["latest_created_revision"], "echo-00002");
    assert_eq!(patched["created_at"], app["created_at"]);
    let (status, _, _) = c.patch("/apps/echo", Some(&etag), json!({"scale_min_instances": 2})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "the old tag no longer matches");
    let (status, _, _) = c.patch("/apps/echo", Some("*"), json!({"scale_min_instances": 2})).await;
    assert_eq!(status, StatusCode::OK, "'*' matches any version");
    let (status, _, _) = c.patch("/apps/echo", Some("*"), json!({"name": "other"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the name cannot change");

    let (status, body, _) = c.send(c.http.delete(c.url("/apps/echo"))).await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, Value::Null));
    let (status, error, _) = c.get("/apps/echo").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ce_error(&error, 404, "resource_not_found");
}

#[tokio::test]
async fn lists_are_paginated_with_opaque_start_tokens() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let c = Client::new(&fake).await;
    for name in ["a1", "a2", "a3"] {
        c.post("/apps", json!({"name": name, "image_reference": "x/y"})).await;
    }
    let (_, first, _) = c.get("/apps?limit=2").await;
    assert_eq!(first["apps"].as_array().unwrap().len(), 2);
    assert_eq!(first["limit"], 2);
    assert!(first["first"]["href"].as_str().unwrap().contains("limit=2"));
    let start = first["next"]["start"].as_str().unwrap();
    let (_, last, _) = c.get(&format!("/apps?limit=2&start={start}")).await;
    assert_eq!(last["apps"].as_array().unwrap().len(), 1);
    assert!(last.get("next").is_none(), "no next on the last page");
    assert_eq!(c.get("/apps?limit=0").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_are_injected_on_demand() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let c = Client::new(&fake).await;
    fake.inject(Fault::Status { status: 429, path_contains: "/apps".into() });
    fake.inject(Fault::Status { status: 503, path_contains: "/apps".into() });
    let (status, error, _) = c.get("/apps").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_ce_error(&error, 429, "rate_limit_exceeded");
    assert_eq!(c.get("/apps").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(c.get("/apps").await.0, StatusCode::OK, "faults are used up one request each");

    fake.inject(Fault::Hang { path_contains: "/apps".into() });
    let hung = c.http.get(c.url("/apps")).bearer_auth(&c.token).send().await;
    assert!(hung.is_err_and(|e| e.is_timeout()), "a hung call never answers");
    assert!(fake.requests().iter().filter(|r| r.ends_with("/apps")).count() >= 4);
}

#[tokio::test]
async fn builds_run_to_an_image_or_fail_with_a_reason() {
    let fake = FakeCodeEngine::start(FakeConfig { polls_until_ready: 1, ..FakeConfig::default() }).await;
    let c = Client::new(&fake).await;
    let build = json!({"name": "echo-build", "output_image": "private.us.icr.io/ns/echo", "output_secret": "icr",
                       "strategy_type": "dockerfile", "source_url": "https://github.com/org/echo", "timeout": 900});
    let (status, created, _) = c.post("/builds", build.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["status"].as_str(), created["strategy_spec_file"].as_str()),
        (Some("ready"), Some("Dockerfile"))
    );
    assert_eq!(c.post("/builds", build).await.0, StatusCode::CONFLICT);
    let bad = json!({"name": "x", "output_image": "i", "output_secret": "s", "strategy_type": "dockerfile", "source_url": "https://g/x", "timeout": 4000});
    assert_eq!(c.post("/builds", bad).await.0, StatusCode::BAD_REQUEST, "timeout above 3600");

    let (status, run, _) = c.post("/build_runs", json!({"build_name": "echo-build"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let name = run["name"].as_str().unwrap();
    assert!(name.starts_with("echo-build-run-"), "{name}");
    assert_eq!(run["status"], "pending");
    assert_eq!(c.get(&format!("/build_runs/{name}")).await.1["status"], "running");
    let (_, done, _) = c.get(&format!("/build_runs/{name}")).await;
    assert_eq!(done["status"], "succeeded");
    assert!(done["status_details"]["output_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(c.post("/build_runs", json!({"build_name": "ghost"})).await.0, StatusCode::NOT_FOUND);

    let inline = json!({"name": "inline", "output_image": "i", "output_secret": "s", "strategy_type": "dockerfile",
                        "source_url": "https://github.com/org/bad-image"});
    assert_eq!(c.post("/build_runs", inline).await.0, StatusCode::ACCEPTED);
    c.get("/build_runs/inline").await;
    let (_, failed, _) = c.get("/build_runs/inline").await;
    assert_eq!(
        (failed["status"].as_str(), failed["status_details"]["reason"].as_str()),
        (Some("failed"), Some("failed"))
    );

    let secret = json!({"name": "icr", "format": "registry", "data": {"server": "private.us.icr.io", "username": "iamapikey", "password": "k"}});
    assert_eq!(c.post("/secrets", secret).await.0, StatusCode::CREATED);
    assert_eq!(
        c.post("/secrets", json!({"name": "x", "format": "registry", "data": {}})).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn cloud_logs_queries_answer_as_an_event_stream() {
    let fake = FakeCodeEngine::start(FakeConfig::default()).await;
    let c = Client::new(&fake).await;
    let url = format!("{}/v1/query", c.base);
    let body = json!({"query": "app:\"codeengine\" AND codeengine.component:\"echo\"", "metadata": {"syntax": "lucene", "limit": 10}});
    let anonymous = c.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let res =
        c.http.post(&url).bearer_auth(&c.token).header("accept", "text/event-stream").json(&body).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    assert!(text.starts_with(": success\n"), "{text}");
    let events: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(events[0]["query_id"]["query_id"].is_string());
    assert!(events[1]["result"]["results"].is_array());
    let bad = c.http.post(&url).bearer_auth(&c.token).json(&json!({"query": "", "metadata": {}})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
