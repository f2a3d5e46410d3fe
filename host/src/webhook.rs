//! Signed webhooks with retries: what approval notices and alerts are sent as.
//!
//! The body is JSON; `X-MCP-Runtime-Signature: sha256=<hex HMAC-SHA256 of
//! the body>` when a secret is configured, as GitHub-style receivers expect;
//! `X-MCP-Runtime-Event` names what happened.

use hmac::{Hmac, Mac};
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "x-mcp-runtime-signature";
pub const EVENT_HEADER: &str = "x-mcp-runtime-event";
/// Tries in all; the waits between them double from half a second.
pub const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(10);

pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `payload` until a 2xx answer or `ATTEMPTS` tries; why it failed otherwise.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    payload: &str,
    secret: Option<&str>,
) -> Result<(), String> {
    let signature = secret.map(|key| sign(key, payload.as_bytes()));
    let mut failure = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        let mut request = http
            .post(url)
            .header("content-type", "application/json")
            .header(EVENT_HEADER, event)
            .body(payload.to_string());
        if let Some(signature) = &signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        match request.timeout(TIMEOUT).send().await {
            Ok(answer) if answer.status().is_success() => return Ok(()),
            Ok(answer) => failure = format!("HTTP {}", answer.status().as_u16()),
            Err(e) => failure = e.to_string(),
        }
    }
    Err(failure)
}
