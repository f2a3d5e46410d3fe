//! A webhook receiver on loopback that checks signatures: what approval
//! notices and alerts are sent to.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const WEBHOOK_SECRET: &str = "whsec-test-0123456789";

/// A loopback webhook receiver; it answers 500 to the first `fail_first` calls.
pub struct Receiver {
    pub url: String,
    calls: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = calls.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let signature = headers
                        .get("x-mcp-runtime-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut calls = seen.lock().unwrap();
                    calls.push((signature, body));
                    if calls.len() <= fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, calls }
    }

    /// Approval notices of `event`, their signatures checked against the shared secret.
    pub async fn received(&self, event: &str, count: usize) -> Vec<Value> {
        self.received_where("event", event, count).await
    }

    /// Payloads whose `key` is `value`, their signatures checked against the shared secret.
    pub async fn received_where(&self, key: &str, event: &str, count: usize) -> Vec<Value> {
        for _ in 0..600 {
            let matching: Vec<Value> = self
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(signature, body)| {
                    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
                    mac.update(body.as_bytes());
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    assert_eq!(signature, &expected, "a webhook whose signature does not verify");
                    let payload: Value = serde_json::from_str(body).unwrap();
                    (payload[key] == event).then_some(payload)
                })
                .collect();
            if matching.len() >= count {
                return matching;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {event} webhook arrived")
    }
}
