//! The admin UI in a real browser (headless Chromium through WebDriver),
//! against a host deploying to the real Docker engine: sign in, deploy a
//! catalog entry through the dialog and watch it connect without reloading,
//! stop, start and delete through the confirmations, filter the fixture's
//! log lines, approve a held deploy as another person, a viewer offered no
//! write controls whose forged posts are refused, and an admin (signed in by
//! ContextForge's cookie) managing catalog entries and guardrail profiles. Every page is
//! screenshotted (`target/ui-screenshots/`) and must log no script error.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use support::browser::Browser;
use support::TestHost;

/// The deployment a deploy led to, from the page it lands on.
async fn deployment_of(browser: &Browser) -> String {
    let path = browser.wait_for_path(|p| p.starts_with("/admin/runtimes/")).await;
    path.trim_start_matches("/admin/runtimes/").to_string()
}

/// Posts a form from the page's own script, as a forged form would; the answer's status.
async fn post_from_page(browser: &Browser, path: &str, body: &str) -> u64 {
    let script = "const [path, body, done] = arguments;
                  fetch(path, {method: 'POST', body, headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                               redirect: 'manual'}).then(r => done(r.status), () => done(0));";
    let status = browser.client.execute_async(script, vec![json!(path), json!(body)]).await.unwrap();
    status.as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_deploys_watches_operates_and_reads_logs_and_others_see_what_their_role_allows() {
    let host = TestHost::start(|_| {}).await;
    let gated = json!({"name": "Gated", "slug": "gated", "requires_approval": true, "guardrails_profile": "restricted",
                       "source": {"type": "docker", "image": support::fixture_image()}, "supported_backends": ["docker"],
                       "description": "needs a person's yes"});
    assert_eq!(host.post("/catalog", gated).await.0, StatusCode::CREATED);
    let browser = Browser::start(&host.base).await;

    // Not signed in: sent to sign in; a wrong token is told so.
    browser.open("/admin/runtimes").await;
    assert_eq!(browser.path().await, "/admin/login");
    browser.fill("#token", "not-a-token").await;
    browser.click("form[action='/admin/login'] button").await;
    assert!(browser.text("#login-error").await.contains("invalid token"));
    browser.checked("sign-in").await;

    let dev = host.token("dev@example.com", &[Role::Developer]);
    browser.sign_in(&dev).await;
    assert!(browser.exists("#entry-fixture").await, "the catalog's cards");
    browser.checked("catalog").await;
    browser.fill("#q", "probe").await;
    browser.click("form.filters button").await;
    assert!(browser.exists("#entry-fixture").await && !browser.exists("#entry-gated").await, "searched");

    // The deploy dialog: compatibility shown, a bad figure answered on the form, then deployed.
    browser.open("/admin/catalog/fixture/deploy").await;
    assert!(browser.text("#compat").await.contains("enforced"), "what the profile gets on docker");
    browser.fill("#memory", "64 apples").await;
    browser.click("#deploy-form button[type=submit]").await;
    assert!(browser.text("#form-error").await.starts_with("resources.memory"), "the field at fault");
    browser.checked("deploy-dialog").await;
    browser.fill("#memory", "").await;
    browser.click("#deploy-form button[type=submit]").await;
    let id = deployment_of(&browser).await;
    // Marked, so a reload would show: connected arrives through the live stream.
    browser.client.execute("window.__stayed = true; return null;", vec![]).await.unwrap();
    browser.wait_for_text("#state [data-status]", "connected").await;
    let stayed = browser.client.execute("return window.__stayed === true;", vec![]).await.unwrap();
    assert_eq!(stayed, json!(true), "reached connected without reloading");
    assert!(browser.exists("#mcp-url").await, "the MCP URL to copy");
    browser.toggle("button[data-copy]").await;
    assert_eq!(browser.text("button[data-copy]").await, "Copied");
    browser.checked("runtime").await;

    // Logs: the fixture's own line found by text, nothing for text it never wrote.
    browser.open(&format!("/admin/runtimes/{id}/logs?q=listening")).await;
    assert!(browser.text("#log").await.contains("mcp-fixture listening"), "{}", browser.text("#log").await);
    browser.checked("logs").await;
    browser.open(&format!("/admin/runtimes/{id}/logs?q=never-written&level=error")).await;
    assert!(browser.text("#log").await.contains("No lines match"));

    // Stop and start through the confirmation; the list follows.
    browser.open("/admin/runtimes").await;
    assert!(browser.text(&format!("#runtime-{id}")).await.contains("connected"));
    browser.checked("runtimes").await;
    browser.click(&format!("#runtime-{id} a[href$='action=stop']")).await;
    browser.checked("confirm").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_text("#state [data-status]", "stopped").await;
    browser.click("a[href$='action=start']").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_text("#state [data-status]", "connected").await;

    // A held deploy, approved by someone else on the approvals page.
    browser.open("/admin/catalog/gated/deploy").await;
    assert!(browser.text("main").await.contains("needs approval"), "the notice");
    browser.click("#deploy-form button[type=submit]").await;
    let held = deployment_of(&browser).await;
    browser.wait_for_text("#state [data-status]", "awaiting approval").await;
    browser.sign_out().await;
    let outsider = host.token("otto@example.com", &[Role::Approver]);
    browser.sign_in(&outsider).await;
    browser.open("/admin/approvals").await;
    assert!(browser.text("#queue").await.contains("group:security-team"), "who may decide");
    assert!(!browser.exists("#queue button").await, "not offered to an approver the rules do not name");
    browser.sign_out().await;
    let ann = host.token_in("ann@example.com", &[Role::Approver], &["security-team"]);
    browser.sign_in(&ann).await;
    browser.open("/admin/approvals").await;
    assert!(browser.text("#queue").await.contains("dev@example.com"), "who asked");
    browser.checked("approvals").await;
    browser.fill("#queue textarea", "fine for the test").await;
    browser.click("#queue button[formaction$='/approve']").await;
    let decided = browser.text("main").await;
    assert!(decided.contains("fine for the test"), "decided, with the notes: {decided}");
    browser.sign_out().await;

    // A viewer: nothing to write with, and a forged post is refused.
    let viewer = host.token("val@example.com", &[Role::Viewer]);
    browser.sign_in(&viewer).await;
    assert!(!browser.exists("a[href$='/deploy']").await, "no deploy for a viewer");
    browser.open("/admin/runtimes").await;
    assert!(!browser.exists("a[href*='action=']").await, "no stop, start or delete for a viewer");
    let csrf = browser.client.find(fantoccini::Locator::Css("input[name=csrf]")).await.unwrap().attr("value").await;
    let csrf = csrf.unwrap().unwrap();
    let refused = post_from_page(&browser, &format!("/admin/runtimes/{id}/delete"), &format!("csrf={csrf}")).await;
    assert_eq!(refused, 403, "the role is enforced on the server");
    let forged = post_from_page(&browser, &format!("/admin/runtimes/{id}/delete"), "csrf=forged").await;
    assert_eq!(forged, 403, "a form without this session's token");
    browser.open("/admin/settings").await;
    assert!(browser.text("main").await.contains("restricted"), "profiles with their matrix");
    browser.checked("settings").await;
    browser.sign_out().await;

    // An admin, signed in by ContextForge's own session cookie on this site.
    let admin = host.token("ada@example.com", &[Role::Admin]);
    browser.open("/admin/login").await;
    let set = "document.cookie = 'jwt_token=' + arguments[0] + '; path=/; SameSite=Strict'; return null;";
    browser.client.execute(set, vec![json!(admin)]).await.unwrap();
    browser.open("/admin/catalog/manage").await;
    assert_eq!(browser.path().await, "/admin/catalog/manage", "signed in by the gateway's cookie");
    browser.checked("catalog-manage").await;
    // A new entry: a mistake named on the form and nothing stored, then saved.
    browser.click("a[href='/admin/catalog/new']").await;
    let entry = |image: &str| {
        format!(
            "name: Notes\nslug: notes\nsource: {{type: docker, image: \"{image}\"}}\nguardrails_profile: restricted\n"
        )
    };
    browser.fill("#yaml", &entry("not an image!")).await;
    browser.click("#yaml-form button[type=submit]").await;
    assert!(browser.text("#form-error").await.starts_with("source.image"), "{}", browser.text("main").await);
    browser.checked("catalog-edit").await;
    browser.fill("#yaml", &entry(support::fixture_image())).await;
    browser.click("#yaml-form button[type=submit]").await;
    assert!(browser.exists("#manage-notes").await, "saved");
    // An import, dry run first: every entry answered, nothing stored; then for real.
    let document =
        r#"{"name": "io.github.acme/hosted", "remotes": [{"type": "sse", "url": "https://hosted.example/sse"}]}"#;
    browser.fill("#import-document", document).await;
    browser.click("#import-form button[type=submit]").await;
    assert!(browser.text("#import-report").await.contains("Would import"));
    assert!(!browser.exists("#manage-io-github-acme-hosted").await, "a dry run stores nothing");
    browser.fill("#import-document", document).await;
    browser.toggle("#import-form input[name=dry_run]").await;
    browser.click("#import-form button[type=submit]").await;
    assert!(browser.exists("#manage-io-github-acme-hosted").await, "imported");
    browser.click("a[href='/admin/catalog/notes/delete']").await;
    browser.click("main form button[type=submit]").await;
    assert!(!browser.exists("#manage-notes").await, "deleted");
    // A guardrail profile: a wrong figure named, then created; one in use is kept.
    browser.open("/admin/settings").await;
    browser.click("a[href='/admin/settings/guardrails/new']").await;
    let profile = |memory: &str| format!("name: tight\nresources: {{max_memory: \"{memory}\", max_cpu: \"0.1\"}}\n");
    browser.fill("#yaml", &profile("64 apples")).await;
    browser.click("#yaml-form button[type=submit]").await;
    assert!(browser.text("#form-error").await.starts_with("resources.max_memory"), "{}", browser.text("main").await);
    browser.fill("#yaml", &profile("64m")).await;
    browser.click("#yaml-form button[type=submit]").await;
    assert!(browser.exists("#profile-tight").await, "created, with its matrix");
    browser.open("/admin/settings/guardrails/restricted/delete").await;
    browser.click("main form button[type=submit]").await;
    assert!(browser.text("main").await.contains("is used by catalog entries"), "a profile in use is kept");
    browser.open("/admin/settings/guardrails/tight/delete").await;
    browser.click("main form button[type=submit]").await;
    assert!(!browser.exists("#profile-tight").await, "deleted");
    browser.client.execute("document.cookie = 'jwt_token=; path=/; max-age=0'; return null;", vec![]).await.unwrap();

    // The developer deletes both; the held one reached connected by itself.
    browser.sign_in(&dev).await;
    browser.open(&format!("/admin/runtimes/{held}")).await;
    browser.wait_for_text("#state [data-status]", "connected").await;
    for gone in [&held, &id] {
        browser.open(&format!("/admin/runtimes/{gone}/confirm?action=delete")).await;
        browser.click("main form button[type=submit]").await;
        browser.wait_for_path(|p| p == "/admin/runtimes").await;
        assert!(!browser.exists(&format!("#runtime-{gone}")).await, "deleted");
    }
    browser.close().await;
}
