//! `runtime.gateway`: the ContextForge gateway every connected deployment is
//! registered with. Absent means registration is off.

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway's base URL, e.g. `http://127.0.0.1:4444`.
    pub url: String,
    /// How the gateway reaches this host; `http://<listen>` when absent.
    #[serde(default)]
    pub public_url: Option<String>,
    pub auth: GatewayAuth,
    /// Also create a virtual server holding each deployment's tools.
    #[serde(default)]
    pub create_virtual_server: bool,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
    /// Added to the tags every registration carries (`mcp-runtime`, the slug, the category).
    #[serde(default)]
    pub tags: Vec<String>,
    /// How often every registration is checked against the gateway (lost
    /// records re-registered, records of deployments that went removed).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_seconds: u64,
    /// Lifetime of the token the gateway calls this host with; renewed at half.
    #[serde(default = "default_token_ttl_days")]
    pub token_ttl_days: u32,
}

/// How this host authenticates to the gateway: a token the gateway issued,
/// or the gateway's own HS256 secret and a user it knows to mint for.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayAuth {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub jwt_secret: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default = "default_audience")]
    pub audience: String,
}

impl std::fmt::Debug for GatewayAuth {
    // Credentials never reach a log line, even a debug one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("GatewayAuth")
            .field("token", &set(&self.token))
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Who sees a registration in ContextForge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Team,
    Private,
}

fn default_sync_interval() -> u64 {
    60
}
fn default_token_ttl_days() -> u32 {
    90
}
fn default_issuer() -> String {
    "mcpgateway".into()
}
fn default_audience() -> String {
    "mcpgateway-api".into()
}

/// ContextForge asks for secrets of at least this many characters too.
const MIN_SECRET: usize = 32;

impl GatewayConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let is_http = |url: &str| {
            reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        };
        if !is_http(&self.url) {
            return Err(invalid("runtime.gateway.url", format!("'{}' is not an http(s) URL", self.url)));
        }
        if let Some(public) = self.public_url.as_deref().filter(|u| !is_http(u)) {
            return Err(invalid("runtime.gateway.public_url", format!("'{public}' is not an http(s) URL")));
        }
        let auth = &self.auth;
        match (&auth.token, &auth.jwt_secret, &auth.user) {
            (Some(token), None, _) if !token.trim().is_empty() => {}
            (None, Some(secret), Some(user)) => {
                if secret.len() < MIN_SECRET {
                    return Err(invalid(
                        "runtime.gateway.auth.jwt_secret",
                        format!("at least {MIN_SECRET} characters"),
                    ));
                }
                if user.trim().is_empty() {
                    return Err(invalid("runtime.gateway.auth.user", "the gateway user to mint tokens for"));
                }
            }
            (None, Some(_), None) => {
                let reason =
                    "the gateway user to mint tokens for (ContextForge refuses tokens for users it does not know)";
                return Err(invalid("runtime.gateway.auth.user", reason));
            }
            _ => {
                let reason = "either `token` (issued by the gateway) or `jwt_secret` and `user`";
                return Err(invalid("runtime.gateway.auth", reason));
            }
        }
        if self.team_id.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(invalid("runtime.gateway.team_id", "must not be empty when set"));
        }
        if self.sync_interval_seconds == 0 {
            return Err(invalid("runtime.gateway.sync_interval_seconds", "must be at least 1"));
        }
        if self.token_ttl_days == 0 {
            return Err(invalid("runtime.gateway.token_ttl_days", "must be at least 1"));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.len() > 50 {
                return Err(invalid(&format!("runtime.gateway.tags[{i}]"), "1-50 characters"));
            }
        }
        Ok(())
    }
}
