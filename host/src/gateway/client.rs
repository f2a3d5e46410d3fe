//! ContextForge's registration API, as observed on 1.1.0 (see
//! `../shared/reference/contextforge.md`): gateways (one per deployment),
//! their tools, and virtual servers. Errors are sorted by what the caller
//! should do: retry later, fix a credential, or give up on this request.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

use crate::catalog::Transport;
use crate::config::GatewayConfig;

/// How long one call to the gateway may take (registering waits for the
/// gateway's own `initialize` and `tools/list` against the deployment).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// Down, overloaded, or failing: worth retrying.
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    /// The credential is wrong: retrying will not help until it is fixed.
    #[error("the gateway refused this host's credential (HTTP {status}): {hint}")]
    Credential { status: u16, hint: String },
    /// The record named is not there (the gateway may have lost its database).
    #[error("the gateway has no such record")]
    NotFound,
    /// A name already taken.
    #[error("the gateway has that name already: {0}")]
    Conflict(String),
    /// This request will never be accepted as it is.
    #[error("the gateway refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
}

impl GatewayError {
    pub fn is_transient(&self) -> bool {
        matches!(self, GatewayError::Unavailable(_))
    }
}

/// How this host proves itself to the gateway.
enum Credential {
    Token(String),
    /// Minted per call for a user the gateway knows.
    Mint {
        key: EncodingKey,
        user: String,
        issuer: String,
        audience: String,
    },
}

/// Where the gateway reaches a server, and how.
#[derive(Clone, Copy)]
pub struct Endpoint<'a> {
    pub url: &'a str,
    pub transport: Transport,
    /// The token the gateway calls it with: one this host minted for a
    /// deployment; none for a remote server open to all.
    pub token: Option<&'a str>,
}

impl Endpoint<'_> {
    /// The endpoint as ContextForge's gateway records take it.
    fn fields(&self) -> Value {
        let transport = match self.transport {
            Transport::Sse => "SSE",
            Transport::StreamableHttp | Transport::Stdio => "STREAMABLEHTTP",
        };
        let mut fields = json!({"url": self.url, "transport": transport});
        if let Some(token) = self.token {
            fields["auth_type"] = json!("bearer");
            fields["auth_token"] = json!(token);
        }
        fields
    }
}

/// What registering a server sends.
pub struct NewGateway<'a> {
    pub name: &'a str,
    pub endpoint: Endpoint<'a>,
    pub description: &'a str,
    pub tags: &'a [String],
}

pub struct ContextForge {
    http: reqwest::Client,
    base: String,
    credential: Credential,
    team_id: Option<String>,
    visibility: crate::config::GatewayVisibility,
}

impl ContextForge {
    pub fn new(config: &GatewayConfig, http: reqwest::Client) -> ContextForge {
        let auth = &config.auth;
        let credential = match (&auth.token, &auth.jwt_secret, &auth.user) {
            (Some(token), _, _) => Credential::Token(token.clone()),
            (None, Some(secret), user) => Credential::Mint {
                key: EncodingKey::from_secret(secret.as_bytes()),
                user: user.clone().unwrap_or_default(),
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
            },
            // Validated at start: one of the two is there.
            (None, None, _) => Credential::Token(String::new()),
        };
        ContextForge {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            credential,
            team_id: config.team_id.clone(),
            visibility: config.visibility,
        }
    }

    fn bearer(&self) -> String {
        match &self.credential {
            Credential::Token(token) => token.clone(),
            Credential::Mint { key, user, issuer, audience } => {
                let now = chrono::Utc::now().timestamp();
                let claims = json!({"sub": user, "iss": issuer, "aud": audience, "iat": now, "exp": now + 300,
                                    "jti": uuid::Uuid::new_v4().to_string()});
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).expect("HS256 signing cannot fail")
            }
        }
    }

    /// One call; `about_one` says the path names one record (a 403 or 404
    /// then means it is not there, as ContextForge answers for unknown ids).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        about_one: bool,
    ) -> Result<Value, GatewayError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(self.bearer());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.timeout(CALL_TIMEOUT).send().await.map_err(|e| GatewayError::Unavailable(cause(&e)))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = message_of(&body);
        Err(match status {
            StatusCode::UNAUTHORIZED => GatewayError::Credential {
                status: status.as_u16(),
                hint: "fix runtime.gateway.auth: the token is not the gateway's, or it signs for a user the gateway \
                       does not know (ContextForge refuses tokens for unknown users), or the secret is not its \
                       JWT_SECRET_KEY"
                    .into(),
            },
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND if about_one => GatewayError::NotFound,
            StatusCode::FORBIDDEN => GatewayError::Credential {
                status: status.as_u16(),
                hint: format!("the gateway user may not do this ({message}): give it the right to manage gateways"),
            },
            StatusCode::CONFLICT => GatewayError::Conflict(message),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
                GatewayError::Unavailable(format!("HTTP {}: {message}", s.as_u16()))
            }
            s => GatewayError::Refused { status: s.as_u16(), message },
        })
    }

    /// Registers an MCP endpoint; the gateway's id for it.
    pub async fn register(&self, gateway: &NewGateway<'_>) -> Result<String, GatewayError> {
        let mut body = gateway.endpoint.fields();
        body["name"] = json!(gateway.name);
        body["description"] = json!(gateway.description);
        body["tags"] = json!(gateway.tags);
        body["visibility"] = json!(self.visibility);
        if let Some(team) = &self.team_id {
            body["team_id"] = json!(team);
        }
        let record = self.call(Method::POST, "/v1/gateways", Some(body), false).await?;
        id_of(&record)
    }

    /// Points an existing record at the endpoint again (a fresh token, a moved URL).
    pub async fn update(&self, id: &str, endpoint: &Endpoint<'_>) -> Result<(), GatewayError> {
        self.call(Method::PUT, &format!("/v1/gateways/{id}"), Some(endpoint.fields()), true).await.map(drop)
    }

    /// Whether the gateway still has the record.
    pub async fn exists(&self, id: &str) -> Result<bool, GatewayError> {
        match self.call(Method::GET, &format!("/v1/gateways/{id}"), None, true).await {
            Ok(_) => Ok(true),
            Err(GatewayError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every gateway record: (id, name, tags).
    pub async fn list(&self) -> Result<Vec<(String, String, Vec<String>)>, GatewayError> {
        let records = self.call(Method::GET, "/v1/gateways?include_inactive=true", None, false).await?;
        Ok(items(&records)
            .iter()
            .filter_map(|g| {
                let id = g.get("id")?.as_str()?.to_string();
                let name = g.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                Some((id, name, tags_of(g)))
            })
            .collect())
    }

    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), GatewayError> {
        self.call(Method::POST, &format!("/v1/gateways/{id}/state?activate={active}"), None, true).await.map(drop)
    }

    pub async fn refresh_tools(&self, id: &str) -> Result<(), GatewayError> {
        self.call(Method::POST, &format!("/v1/gateways/{id}/tools/refresh"), None, true).await.map(drop)
    }

    /// Removes a record; done when it is already gone.
    pub async fn delete(&self, id: &str) -> Result<(), GatewayError> {
        match self.call(Method::DELETE, &format!("/v1/gateways/{id}"), None, true).await {
            Ok(_) | Err(GatewayError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The ids of the tools the gateway discovered through a record.
    pub async fn tool_ids(&self, gateway_id: &str) -> Result<Vec<String>, GatewayError> {
        let path = format!("/v1/tools?gateway_id={gateway_id}&include_inactive=true");
        let tools = self.call(Method::GET, &path, None, false).await?;
        Ok(items(&tools)
            .iter()
            .filter(|t| t.get("gatewayId").and_then(Value::as_str) == Some(gateway_id))
            .filter_map(|t| t.get("id")?.as_str().map(String::from))
            .collect())
    }

    /// A virtual server holding `tools`; its id.
    pub async fn create_server(&self, name: &str, tools: &[String], tags: &[String]) -> Result<String, GatewayError> {
        let mut server = json!({"name": name, "associated_tools": tools, "tags": tags, "visibility": self.visibility});
        if let Some(team) = &self.team_id {
            server["team_id"] = json!(team);
        }
        let record = self.call(Method::POST, "/v1/servers", Some(json!({"server": server})), false).await?;
        id_of(&record)
    }

    pub async fn set_server_tools(&self, id: &str, tools: &[String]) -> Result<(), GatewayError> {
        let body = json!({"associated_tools": tools});
        self.call(Method::PUT, &format!("/v1/servers/{id}"), Some(body), true).await.map(drop)
    }

    pub async fn delete_server(&self, id: &str) -> Result<(), GatewayError> {
        match self.call(Method::DELETE, &format!("/v1/servers/{id}"), None, true).await {
            Ok(_) | Err(GatewayError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A list answer: a bare array, or one under `items`.
fn items(answer: &Value) -> Vec<Value> {
    answer.as_array().or_else(|| answer.get("items")?.as_array()).cloned().unwrap_or_default()
}

fn id_of(record: &Value) -> Result<String, GatewayError> {
    record
        .get("id")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| GatewayError::Refused { status: 200, message: "the answer names no id".into() })
}

/// Tags as strings: ContextForge answers `{id, label}` objects for what it was sent as strings.
fn tags_of(record: &Value) -> Vec<String> {
    let tags = record.get("tags").and_then(Value::as_array).cloned().unwrap_or_default();
    tags.iter().filter_map(|t| t.as_str().or_else(|| t.get("id")?.as_str()).map(String::from)).collect()
}

/// The error text of any of ContextForge's three shapes: `{"message"}`,
/// `{"detail": "..."}` and `{"detail": [{"loc", "msg"}]}`.
fn message_of(body: &Value) -> String {
    if let Some(m) = body.get("message").and_then(Value::as_str) {
        return m.to_string();
    }
    match body.get("detail") {
        Some(Value::String(d)) => d.clone(),
        Some(Value::Array(details)) => details
            .iter()
            .map(|d| {
                let at: Vec<String> = d
                    .get("loc")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|l| l.to_string().trim_matches('"').to_string())
                    .collect();
                format!("{}: {}", at.join("."), d.get("msg").and_then(Value::as_str).unwrap_or("invalid"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no explanation given".into(),
    }
}

/// reqwest's errors say little at the top; the cause is below.
fn cause(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_every_shape_are_read() {
        assert_eq!(message_of(&json!({"message": "Gateway name already exists"})), "Gateway name already exists");
        assert_eq!(message_of(&json!({"detail": "Access denied"})), "Access denied");
        let detail = json!({"detail": [{"loc": ["body", "transport"], "msg": "bad transport"}]});
        assert_eq!(message_of(&detail), "body.transport: bad transport");
        assert_eq!(tags_of(&json!({"tags": [{"id": "a", "label": "a"}, "b"]})), ["a", "b"]);
    }
}
