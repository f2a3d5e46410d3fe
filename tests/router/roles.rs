//! Authentication and the authorization matrix, walked role by role through
//! the real router in-process (the "own versus anyone's" rows, which need a
//! real deployment, are in `tests/e2e/auth_matrix.rs`).

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{TestHost, TEST_JWT_SECRET};

fn contextforge_token(secret: &str, claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_but_health_needs_a_valid_token() {
    let host = TestHost::in_process(|_| {}).await;
    assert_eq!(host.request_as(None, Method::GET, "/health", None).await.0, StatusCode::OK);

    let claims = |extra: Value| {
        let mut c = json!({"sub": "admin@example.com", "iss": "mcpgateway", "aud": "mcpgateway-api", "jti": "j1", "exp": now() + 600});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let gateway_admin = contextforge_token(TEST_JWT_SECRET, claims(json!({"is_admin": true})));
    let cases = [
        (None, "no token"),
        (
            Some(contextforge_token("another-secret-0123456789abcdef01234567", claims(json!({"is_admin": true})))),
            "wrong secret",
        ),
        (Some(contextforge_token(TEST_JWT_SECRET, claims(json!({"exp": now() - 10})))), "expired"),
        (Some(contextforge_token(TEST_JWT_SECRET, claims(json!({"aud": "someone-else"})))), "wrong audience"),
        (Some(contextforge_token(TEST_JWT_SECRET, claims(json!({"iss": "someone-else"})))), "wrong issuer"),
        (
            Some(contextforge_token(
                TEST_JWT_SECRET,
                json!({"sub": "x", "iss": "mcpgateway", "aud": "mcpgateway-api", "exp": now() + 600}),
            )),
            "no jti",
        ),
        (Some("not.a.jwt".to_string()), "garbage"),
    ];
    for (token, why) in &cases {
        let (status, body) = host.request_as(token.as_deref(), Method::GET, "/catalog", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert!(body["error"].is_string(), "{why}: a JSON body");
        if let Some(t) = token {
            assert!(!body.to_string().contains(t.as_str()), "{why}: the token is echoed");
        }
    }

    // A token minted by ContextForge for its admin works here too.
    let (status, _) =
        host.request_as(Some(&gateway_admin), Method::POST, "/guardrails", Some(json!({"name": "from-gateway"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, events) = host.get("/events?type=guardrails.created").await;
    assert_eq!(events[0]["actor"], "admin@example.com", "the principal is the audit actor");
    assert!(!events.to_string().contains(&gateway_admin), "tokens never reach the audit trail");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_matrix_is_enforced_for_every_role() {
    let host = TestHost::in_process(|_| {}).await;
    let roles = [
        ("viewer", vec![Role::Viewer]),
        ("developer", vec![Role::Developer]),
        ("operator", vec![Role::Operator]),
        ("admin", vec![Role::Admin]),
        ("approver", vec![Role::Approver]),
        ("gateway", vec![Role::Gateway]),
        ("nobody", vec![]),
    ];
    for (name, granted) in &roles {
        let token = host.token(&format!("{name}@example.com"), granted);
        let has = |r: Role| granted.contains(&r);
        // The gateway's role reads nothing: it only reaches MCP endpoints.
        let any_role = granted.iter().any(|r| *r != Role::Gateway);
        // (method, path, body, allowed, the status an allowed caller gets)
        let rows: Vec<(Method, String, Option<Value>, bool, StatusCode)> = vec![
            (Method::GET, "/catalog".into(), None, any_role, StatusCode::OK),
            (Method::GET, "/guardrails".into(), None, any_role, StatusCode::OK),
            (Method::GET, "/runtimes".into(), None, any_role, StatusCode::OK),
            (Method::GET, "/plugins".into(), None, any_role, StatusCode::OK),
            (Method::GET, "/backends".into(), None, any_role, StatusCode::OK),
            (Method::GET, "/guardrails/standard/compatibility?backend=stub".into(), None, any_role, StatusCode::OK),
            (
                Method::POST,
                "/catalog".into(),
                Some(
                    json!({"name": "x", "slug": format!("entry-{name}"), "source": {"type": "docker", "image": "x/y:1"}}),
                ),
                has(Role::Admin),
                StatusCode::CREATED,
            ),
            (Method::DELETE, "/catalog/no-such-entry".into(), None, has(Role::Admin), StatusCode::NOT_FOUND),
            (
                Method::POST,
                "/guardrails".into(),
                Some(json!({"name": format!("profile-{name}")})),
                has(Role::Admin),
                StatusCode::CREATED,
            ),
            (
                Method::POST,
                "/runtimes/deploy".into(),
                Some(json!({"slug": "no-such-entry"})),
                has(Role::Developer) || has(Role::Operator) || has(Role::Admin),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Method::GET,
                "/events".into(),
                None,
                has(Role::Operator) || has(Role::Admin) || has(Role::Approver),
                StatusCode::OK,
            ),
            (
                Method::GET,
                "/approvals".into(),
                None,
                has(Role::Operator) || has(Role::Admin) || has(Role::Approver),
                StatusCode::OK,
            ),
            (
                Method::POST,
                "/approvals/no-such-request/approve".into(),
                None,
                has(Role::Approver),
                StatusCode::NOT_FOUND,
            ),
            (
                Method::POST,
                "/approvals/no-such-request/reject".into(),
                None,
                has(Role::Approver),
                StatusCode::NOT_FOUND,
            ),
        ];
        for (method, path, body, allowed, ok) in rows {
            let (status, answer) = host.request_as(Some(&token), method.clone(), &path, body).await;
            let expected = if allowed { ok } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{name} {method} {path}: {answer}");
            if !allowed {
                assert!(answer["error"].as_str().unwrap().contains("may not"), "{answer}");
            }
        }
    }
}

/// The OpenAPI document names, for each operation, the roles it needs; each
/// is asked of the host as every role alone: the roles named get past the
/// check, the others are refused (or, where the owner decides, find nothing).
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_names_the_roles_each_operation_enforces() {
    let host = TestHost::in_process(|_| {}).await;
    let (status, served) = host.request_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "the document needs no token");
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(support::repo_root().join("docs/openapi.json")).unwrap())
            .unwrap();
    assert_eq!(served, kept, "docs/openapi.json is the served document");

    let mut checked = 0;
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(security) = operation.get("security") else {
                assert!(["/health", "/openapi.json"].contains(&path.as_str()), "{method} {path} names no roles");
                continue;
            };
            let roles: Vec<&str> = security[0]["bearer"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let owner_decides =
                ["operate", "use_mcp", "follow_approval"].contains(&operation["x-permission"].as_str().unwrap());
            let url = with_parameters(path);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = operation.get("requestBody").map(|_| json!({}));
            for role in Role::ALL {
                // Every token belongs to a stranger: nothing here is theirs.
                let token = host.token("stranger@example.com", &[role]);
                let status = host.status_as(&token, method.clone(), &url, body.clone()).await;
                let what = format!("{method} {url} as {}: {status}", role.name());
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                if roles.contains(&role.name()) {
                    assert_ne!(status, StatusCode::FORBIDDEN, "{what}, which the document allows");
                } else if owner_decides {
                    assert!([StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&status), "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}, which the document does not allow");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "every operation as every role ({checked} requests)");
}

/// The path with `approve` for a verdict and a name that names nothing for every other parameter.
fn with_parameters(template: &str) -> String {
    template
        .split('/')
        .map(|part| match part {
            "{verdict}" => "approve",
            p if p.starts_with('{') => "nothing-here",
            p => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}
