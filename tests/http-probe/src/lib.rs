//! A guardrail policy that GETs `settings.url` and reports the outcome as a
//! denial (`field: "http"`), so a test can see what the host let through.

wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit" });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use mcp_runtime::plugin::types::Denial;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct HttpProbe;

impl Guest for HttpProbe {
    fn evaluate(_input: PolicyInput) -> Result<PolicyOutput, Denial> {
        let settings: serde_json::Value =
            serde_json::from_str(&mcp_runtime::plugin::config::settings()).unwrap_or_default();
        let url = settings["url"].as_str().unwrap_or_default();
        let outcome = get(url).unwrap_or_else(|e| format!("error: {e}"));
        Err(Denial { field: "http".into(), reason: outcome })
    }
}

/// `http://authority/path` only: enough for the test.
fn get(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).map_err(|_| "method")?;
    request.set_scheme(Some(&Scheme::Http)).map_err(|_| "scheme")?;
    request.set_authority(Some(authority)).map_err(|_| "authority")?;
    request.set_path_with_query(Some(&path)).map_err(|_| "path")?;
    // Finish the (empty) body before sending: writing it afterwards races the send.
    let body = request.body().map_err(|_| "body")?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending.get().ok_or("no response")?.map_err(|_| "response taken")?.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|_| "consume")?;
    let stream = body.stream().map_err(|_| "stream")?;
    let mut text = Vec::new();
    while let Ok(chunk) = stream.blocking_read(4096) {
        text.extend(chunk);
    }
    Ok(format!("{status} {}", String::from_utf8_lossy(&text)))
}

export!(HttpProbe);
