//! Headless Chromium driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`): one driver and one browser per test binary, each page
//! screenshotted under `target/ui-screenshots/`, and the script errors a page
//! recorded (`window.__uiErrors`) checked on every visit.

use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    pub client: Client,
    _driver: Driver,
    base: String,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless browser through it.
    pub async fn start(base: &str) -> Browser {
        let port = super::free_port();
        let driver = Driver(
            Command::new("chromedriver")
                .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
                // A group of its own, so the browser it starts goes with it.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (Debian's chromium-driver; .ci/run installs it)"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": "/usr/bin/chromium",
                               "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                                        "--window-size=1366,900", "--no-first-run", "--disable-extensions"]}),
        );
        // The WebDriver client's TLS (unused on loopback) needs a provider named.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("a TLS setup (unused on loopback)")
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a browser session");
        let shots = super::repo_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser { client, _driver: driver, base: base.trim_end_matches('/').to_string(), shots }
    }

    /// Opens a page of the host.
    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits for a click's navigation to land where `arrived` says (10 s at
    /// most): a click answers before the next page has loaded.
    pub async fn wait_for_path(&self, arrived: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if arrived(&path) {
                return path;
            }
            if Instant::now() > deadline {
                panic!("still on {path}: {}", self.text("main").await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks a control that stays on the page (a checkbox).
    pub async fn toggle(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    /// Clicks what leads to another page, and waits until that page has
    /// loaded: a click answers before the navigation it starts is over.
    pub async fn click(&self, css: &str) {
        self.client.execute("window.__leaving = true; return null;", vec![]).await.unwrap();
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self
                .client
                .execute("return window.__leaving !== true && document.readyState === 'complete';", vec![])
                .await;
            if arrived.is_ok_and(|a| a == serde_json::json!(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} led nowhere");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` holds `wanted` (60 s at most), without reloading; on
    /// failure the page is saved as `failed.png`.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(wanted) {
                return;
            }
            if Instant::now() > deadline {
                let png = self.client.screenshot().await.unwrap_or_default();
                std::fs::write(self.shots.join("failed.png"), png).unwrap();
                let main = self.text("main").await;
                panic!("{css} never said '{wanted}' (it says '{found}') on {}: {main}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves the page as `target/ui-screenshots/<name>.png` and checks it
    /// logged no script error and that every control a person uses is named
    /// (a label, or words on it) and every image has its alternative text.
    pub async fn checked(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        let errors = self.client.execute("return window.__uiErrors || ['the page script never ran'];", vec![]).await;
        assert_eq!(errors.unwrap(), serde_json::json!([]), "script errors on {name}");
        let unnamed = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a, img'))
                   .filter(el => el.tagName === 'IMG' ? !el.hasAttribute('alt')
                          : ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)
                            ? el.labels.length === 0 && !el.getAttribute('aria-label')
                            : el.textContent.trim() === '' && !el.getAttribute('aria-label'))
                   .map(el => el.outerHTML.slice(0, 120));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unnamed, serde_json::json!([]), "controls without a name on {name}");
    }

    /// Signs in with a token through the sign-in form.
    pub async fn sign_in(&self, token: &str) {
        self.open("/admin/login").await;
        self.fill("#token", token).await;
        self.click("form[action='/admin/login'] button").await;
        self.wait_for_path(|p| p == "/admin/catalog").await;
    }

    pub async fn sign_out(&self) {
        self.click("form[action='/admin/logout'] button").await;
        self.wait_for_path(|p| p == "/admin/login").await;
    }

    /// Ends the browser session; dropping stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// chromedriver, stopped with the browser it started whatever ends the test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // Its whole process group: it and the browser.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}
