//! IAM and the Code Engine v2 API. The access token lives in the plugin's
//! key-value store and is renewed once 80% of its life has passed (as IBM's
//! SDKs do); a 401 renews it once. 429, 5xx and timeouts are retried with
//! exponential backoff, a bounded number of times. The API key is sent to IAM
//! only and never appears in an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::{self, Failure};
use crate::mcp_runtime::plugin::key_value;
use crate::mcp_runtime::plugin::logging::{log, Level};

const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
const TOKEN_KEY: &str = "iam-token";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub api_key: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub project_id: String,
    /// Overrides for tests; derived from the region when absent.
    pub iam_url: Option<String>,
    pub api_url: Option<String>,
    /// Cloud Logs base URL; derived from the instance id and region when absent.
    pub logs_url: Option<String>,
    /// IBM Cloud Monitoring base URL; derived from the region when absent.
    pub monitoring_url: Option<String>,
    #[serde(default)]
    pub default_min_scale: u32,
    #[serde(default = "default_max_scale")]
    pub default_max_scale: u32,
    pub registry_secret: Option<String>,
    #[serde(default)]
    pub build: BuildSettings,
    #[serde(default)]
    pub observability: Observability,
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BuildSettings {
    /// Where built images go, e.g. `private.us.icr.io/mcp-images`.
    pub output_registry: Option<String>,
    /// Registry secret with push access to it.
    pub output_secret: Option<String>,
    #[serde(default = "default_build_timeout")]
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Observability {
    pub cloud_logs_instance_id: Option<String>,
    pub cloud_monitoring_instance_id: Option<String>,
}

fn default_region() -> String {
    "us-south".into()
}
fn default_max_scale() -> u32 {
    10
}
fn default_timeout_ms() -> u64 {
    15_000
}
fn default_retries() -> u32 {
    4
}
fn default_build_timeout() -> u32 {
    600
}

impl Settings {
    pub fn load() -> Result<Settings, String> {
        let settings: Settings = guest_kit::settings()?;
        if settings.api_key.is_empty() {
            return Err("code engine settings: api_key is not set".into());
        }
        if settings.project_id.is_empty() {
            return Err("code engine settings: project_id is not set".into());
        }
        Ok(settings)
    }

    fn iam_url(&self) -> String {
        let base = self.iam_url.clone().unwrap_or_else(|| "https://iam.cloud.ibm.com".into());
        format!("{}/identity/token", base.trim_end_matches('/'))
    }

    /// The Cloud Logs query URL, when an instance is configured.
    pub fn logs_query_url(&self) -> Option<String> {
        let instance = self.observability.cloud_logs_instance_id.as_ref().filter(|i| !i.is_empty())?;
        let base = self
            .logs_url
            .clone()
            .unwrap_or_else(|| format!("https://{instance}.api.{}.logs.cloud.ibm.com", self.region));
        Some(format!("{}/v1/query", base.trim_end_matches('/')))
    }

    /// The Monitoring PromQL query URL and the instance, when an instance is configured.
    pub fn monitoring(&self) -> Option<(String, String)> {
        let instance = self.observability.cloud_monitoring_instance_id.clone().filter(|i| !i.is_empty())?;
        let base =
            self.monitoring_url.clone().unwrap_or_else(|| format!("https://{}.monitoring.cloud.ibm.com", self.region));
        Some((format!("{}/prometheus/api/v1/query", base.trim_end_matches('/')), instance))
    }

    fn api_base(&self) -> String {
        let base =
            self.api_url.clone().unwrap_or_else(|| format!("https://api.{}.codeengine.cloud.ibm.com", self.region));
        format!("{}/v2/projects/{}", base.trim_end_matches('/'), self.project_id)
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// Code Engine answered with an error.
    Status { status: u16, code: String, message: String },
    /// No usable answer after the retries.
    Unavailable(String),
    /// IAM refused the API key.
    Auth(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status { status, code, message } => write!(f, "Code Engine answered {status} {code}: {message}"),
            ApiError::Unavailable(why) => write!(f, "Code Engine unavailable: {why}"),
            ApiError::Auth(why) => write!(f, "IAM refused the API key: {why}"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CachedToken {
    access_token: String,
    /// Unix seconds.
    expiration: u64,
    expires_in: u64,
    /// Which key the token belongs to (a hash; the key itself is never stored).
    key_fingerprint: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn fingerprint(text: &str) -> u64 {
    // FNV-1a: stable across builds, unlike std's hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub struct Client {
    pub settings: Settings,
}

pub struct Answer {
    pub body: Value,
    pub etag: Option<String>,
}

impl Client {
    pub fn new() -> Result<Client, String> {
        Ok(Client { settings: Settings::load()? })
    }

    /// A valid access token: the cached one while fresh, else a new one.
    fn token(&self, renew: bool) -> Result<String, ApiError> {
        let key = fingerprint(&self.settings.api_key);
        if !renew {
            let cached = key_value::get(TOKEN_KEY).and_then(|bytes| serde_json::from_slice::<CachedToken>(&bytes).ok());
            if let Some(t) = cached.filter(|t| t.key_fingerprint == key) {
                let renew_at = t.expiration.saturating_sub(t.expires_in / 5);
                if now_secs() < renew_at {
                    return Ok(t.access_token);
                }
            }
        }
        let body = format!(
            "grant_type={}&apikey={}&response_type=cloud_iam",
            form_encode(APIKEY_GRANT),
            form_encode(&self.settings.api_key)
        );
        let headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")];
        let answer = self.with_retries("POST", &self.settings.iam_url(), &headers, Some(body.as_bytes()))?;
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if answer.status != 200 {
            let code = json["errorCode"].as_str().unwrap_or("unknown");
            let message = json["errorMessage"].as_str().unwrap_or("no message");
            return Err(ApiError::Auth(format!("{code}: {message}")));
        }
        let token = CachedToken {
            access_token: json["access_token"].as_str().unwrap_or_default().to_string(),
            expiration: json["expiration"].as_u64().unwrap_or_else(|| now_secs() + 3600),
            expires_in: json["expires_in"].as_u64().unwrap_or(3600),
            key_fingerprint: key,
        };
        if token.access_token.is_empty() {
            return Err(ApiError::Auth("IAM answered without an access token".into()));
        }
        let _ = key_value::set(TOKEN_KEY, &serde_json::to_vec(&token).unwrap_or_default());
        log(Level::Debug, "IAM access token renewed");
        Ok(token.access_token)
    }

    /// One Code Engine call, path relative to the project.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Answer, ApiError> {
        let url = format!("{}{path}", self.settings.api_base());
        let content_type = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
        let payload = body.map(|b| b.to_string());
        let if_match: Vec<(&str, &str)> = if_match.map(|tag| ("if-match", tag)).into_iter().collect();
        let answer = self.authorized(method, &url, payload.as_deref(), content_type, "application/json", &if_match)?;
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if (200..300).contains(&answer.status) {
            return Ok(Answer { body: json, etag: answer.header("etag").map(String::from) });
        }
        let error = &json["errors"][0];
        Err(ApiError::Status {
            status: answer.status,
            code: error["code"].as_str().unwrap_or("unknown").into(),
            message: error["message"].as_str().unwrap_or("no message").into(),
        })
    }

    /// An IBM Cloud Logs query; the raw event stream it answers.
    pub fn query_logs(&self, url: &str, body: &Value) -> Result<String, ApiError> {
        let answer =
            self.authorized("POST", url, Some(&body.to_string()), "application/json", "text/event-stream", &[])?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        match answer.status {
            200..=299 => Ok(text),
            status => Err(ApiError::Status {
                status,
                code: "logs_query_failed".into(),
                message: text.chars().take(300).collect(),
            }),
        }
    }

    /// One instant PromQL query to IBM Cloud Monitoring: the first sample's
    /// value, if the query matched any series.
    pub fn query_metric(&self, url: &str, instance: &str, promql: &str) -> Result<Option<f64>, ApiError> {
        let url = format!("{url}?query={}", form_encode(promql));
        let extra = [("ibminstanceid", instance)];
        let answer = self.authorized("GET", &url, None, "application/json", "application/json", &extra)?;
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if answer.status != 200 || json["status"] != "success" {
            return Err(ApiError::Status {
                status: answer.status,
                code: json["errorType"].as_str().unwrap_or("monitoring_query_failed").into(),
                message: json["error"].as_str().unwrap_or("no message").into(),
            });
        }
        Ok(json["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()))
    }

    /// Sends with the access token, renewing it once if the answer is 401.
    fn authorized(
        &self,
        method: &str,
        url: &str,
        payload: Option<&str>,
        content_type: &str,
        accept: &str,
        extra: &[(&str, &str)],
    ) -> Result<http::Response, ApiError> {
        let mut renewed = false;
        loop {
            let bearer = format!("Bearer {}", self.token(renewed)?);
            let mut headers =
                vec![("authorization", bearer.as_str()), ("accept", accept), ("content-type", content_type)];
            headers.extend_from_slice(extra);
            let answer = self.with_retries(method, url, &headers, payload.map(str::as_bytes))?;
            if answer.status == 401 && !renewed {
                // Expired or revoked mid-way: renew once and try again.
                renewed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// Sends with retries on 429, 5xx and timeouts; other answers are returned.
    fn with_retries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<http::Response, ApiError> {
        let (mut last, mut retry_after) = (String::new(), None);
        for attempt in 0..=self.settings.max_retries {
            if attempt > 0 {
                std::thread::sleep(guest_kit::backoff(attempt, retry_after.take()));
            }
            match http::send(method, url, headers, body, self.settings.request_timeout_ms) {
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    retry_after = r.header("retry-after").and_then(|s| s.parse().ok()).map(Duration::from_secs);
                    log(Level::Warn, &format!("{method} {}: {} (attempt {})", path_of(url), r.status, attempt + 1));
                    last = format!("HTTP {}", r.status);
                }
                Ok(r) => return Ok(r),
                Err(Failure::Denied) => {
                    return Err(ApiError::Unavailable(format!("{}: {}", host_of(url), Failure::Denied)))
                }
                Err(e) => {
                    log(Level::Warn, &format!("{method} {}: {e} (attempt {})", path_of(url), attempt + 1));
                    last = e.to_string();
                }
            }
        }
        Err(ApiError::Unavailable(format!(
            "{method} {}: {last} after {} attempts",
            path_of(url),
            self.settings.max_retries + 1
        )))
    }
}

fn path_of(url: &str) -> &str {
    url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or(url)
}

fn host_of(url: &str) -> &str {
    url.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or(rest)).unwrap_or(url)
}
