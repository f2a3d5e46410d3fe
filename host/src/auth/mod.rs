//! Authentication: bearer JWTs signed HS256 with a shared secret and checked
//! the way ContextForge checks them (`iss`, `aud`, `exp` and a `jti`), so a
//! token minted for the gateway works here too. ContextForge issues two
//! shapes: its API and CLI tokens name the user by email in `sub` (and may
//! say `is_admin: true`, which makes an admin), while its login sessions
//! (1.0.3 on) carry the user's UUID in `sub`, no email and no admin flag —
//! their `scopes.permissions: ["*"]` only says the token is not narrowed, so
//! it grants nothing here. Roles come from a claim (`roles` by default,
//! mapped through `role_mapping`) and from `user_roles`, by `sub`, for
//! either shape. Tokens never appear in errors or logs. A token that
//! verified is remembered until it expires (`verified`): clients send the
//! same one on every request.

pub mod authz;
mod verified;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Developer,
    Operator,
    Admin,
    Approver,
    /// The gateway this host registers deployments with: it may use the MCP
    /// endpoint of the one deployment its token was minted for, nothing else.
    Gateway,
    /// A Prometheus scraper: `/metrics` and nothing else.
    Metrics,
}

impl Role {
    pub const ALL: [Role; 7] =
        [Role::Viewer, Role::Developer, Role::Operator, Role::Admin, Role::Approver, Role::Gateway, Role::Metrics];

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Gateway => "gateway",
            Role::Metrics => "metrics",
        }
    }
}

/// The principal a gateway calls a registered deployment's MCP endpoint as.
pub fn gateway_principal(deployment: &str) -> String {
    format!("gateway:{deployment}")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret shared with the gateway; generated under `data_dir` when empty.
    #[serde(default)]
    pub jwt_secret: String,
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim listing the caller's groups (approvers may be named by group).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim values that mean one of our roles, e.g. `{platform_admin: admin}`.
    #[serde(default)]
    pub role_mapping: BTreeMap<String, Role>,
    /// Roles granted by the token's `sub`: an email for ContextForge's API
    /// tokens, the user's UUID for its login sessions (which carry no roles).
    #[serde(default)]
    pub user_roles: BTreeMap<String, Vec<Role>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: String::new(),
            issuer: default_issuer(),
            audience: default_audience(),
            roles_claim: default_roles_claim(),
            groups_claim: default_groups_claim(),
            role_mapping: BTreeMap::new(),
            user_roles: BTreeMap::new(),
        }
    }
}

fn default_issuer() -> String {
    "mcpgateway".into()
}
fn default_audience() -> String {
    "mcpgateway-api".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authorization token required")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub roles: BTreeSet<Role>,
    pub groups: Vec<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Every field defaults, so a missing one is reported by name, not as "malformed".
#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    aud: String,
    #[serde(default)]
    jti: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_admin: Option<bool>,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

pub struct Authenticator {
    config: AuthConfig,
    encoding: EncodingKey,
    decoding: DecodingKey,
    verified: verified::VerifiedTokens,
}

/// Shortest secret accepted: ContextForge asks for 32 characters too.
const MIN_SECRET: usize = 32;

impl Authenticator {
    /// Uses the configured secret, or the one kept in `data_dir` (made on first use).
    pub fn new(config: &AuthConfig, data_dir: &Path) -> anyhow::Result<Authenticator> {
        let secret = match config.jwt_secret.as_str() {
            "" => stored_secret(data_dir)?,
            s if s.len() < MIN_SECRET => anyhow::bail!("runtime.auth.jwt_secret: at least {MIN_SECRET} characters"),
            s => s.to_string(),
        };
        Ok(Authenticator {
            config: config.clone(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            verified: Default::default(),
        })
    }

    /// Checks an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = seconds_since_epoch();
        if let Some(principal) = self.verified.get(token, now) {
            return Ok(principal);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AuthError::Invalid(match e.kind() {
                K::ExpiredSignature => "expired".into(),
                K::InvalidSignature => "bad signature".into(),
                K::InvalidIssuer => "wrong issuer".into(),
                K::InvalidAudience => "wrong audience".into(),
                K::MissingRequiredClaim(c) => format!("missing claim '{c}'"),
                K::InvalidAlgorithm => "algorithm must be HS256".into(),
                _ => "malformed".into(),
            })
        })?;
        let claims = data.claims;
        if claims.jti.trim().is_empty() || claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("missing claim 'jti' or 'sub'".into()));
        }
        let mut roles: BTreeSet<Role> = claims
            .extra
            .get(&self.config.roles_claim)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .filter_map(|name| self.config.role_mapping.get(name).copied().or_else(|| Role::parse(name)))
            .collect();
        if claims.is_admin == Some(true) {
            roles.insert(Role::Admin);
        }
        roles.extend(self.config.user_roles.get(&claims.sub).into_iter().flatten().copied());
        let groups = claims
            .extra
            .get(&self.config.groups_claim)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let principal = Principal { user: claims.sub, roles, groups };
        self.verified.insert(token, &principal, claims.exp, now);
        Ok(principal)
    }

    /// A token for local use (`mcp-runtime mint-token`) and tests.
    pub fn mint(&self, user: &str, roles: &[Role], ttl: std::time::Duration) -> String {
        self.mint_with_groups(user, roles, &[], ttl)
    }

    pub fn mint_with_groups(&self, user: &str, roles: &[Role], groups: &[&str], ttl: std::time::Duration) -> String {
        let now = seconds_since_epoch();
        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        let claims = Claims {
            sub: user.into(),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            exp: now + ttl.as_secs(),
            iat: now,
            is_admin: None,
            extra: BTreeMap::from([
                (self.config.roles_claim.clone(), serde_json::json!(names)),
                (self.config.groups_claim.clone(), serde_json::json!(groups)),
            ]),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }
}

fn seconds_since_epoch() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The secret kept in `data_dir/jwt-secret` (mode 600), made on first use.
fn stored_secret(data_dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_string());
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    tracing::info!("generated a JWT secret in {}", path.display());
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let config = AuthConfig { jwt_secret: "s".repeat(40), ..Default::default() };
        Authenticator::new(&config, Path::new("/nonexistent")).unwrap()
    }

    #[test]
    fn minted_tokens_verify_and_carry_roles() {
        let a = auth();
        let p =
            a.verify(&a.mint("alice", &[Role::Developer, Role::Approver], std::time::Duration::from_secs(60))).unwrap();
        assert_eq!(p.user, "alice");
        assert!(p.has(Role::Developer) && p.has(Role::Approver) && !p.has(Role::Admin));
    }

    /// Both shapes ContextForge issues, as 1.1.0 writes them.
    #[test]
    fn contextforge_tokens_of_either_shape_are_read() {
        let uuid = "257de201-edf8-42cb-92be-8f764dbac1cb";
        let config = AuthConfig {
            jwt_secret: "s".repeat(40),
            user_roles: BTreeMap::from([(uuid.to_string(), vec![Role::Operator])]),
            ..Default::default()
        };
        let a = Authenticator::new(&config, Path::new("/nonexistent")).unwrap();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&[b's'; 40]))
                .unwrap()
        };
        let exp = chrono::Utc::now().timestamp() + 600;
        let base = serde_json::json!({"iss": "mcpgateway", "aud": "mcpgateway-api", "jti": "j", "exp": exp});
        let with = |extra: serde_json::Value| {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            sign(claims)
        };
        // The API/CLI shape: the email in `sub`, maybe `is_admin`.
        let admin = a.verify(&with(serde_json::json!({"sub": "admin@example.com", "is_admin": true}))).unwrap();
        assert_eq!((admin.user.as_str(), admin.has(Role::Admin)), ("admin@example.com", true));
        // The session shape: a UUID, and an unnarrowed scope that grants nothing by itself.
        let session = serde_json::json!({"sub": uuid, "token_use": "session", "auth_provider": "local",
            "scopes": {"server_id": null, "permissions": ["*"], "ip_restrictions": [], "time_restrictions": {}}});
        let carol = a.verify(&with(session.clone())).unwrap();
        assert_eq!(carol.user, uuid);
        assert_eq!(carol.roles, BTreeSet::from([Role::Operator]), "roles from user_roles, never from the scope");
        let stranger = a.verify(&with(serde_json::json!({"sub": "0000", "scopes": {"permissions": ["*"]}}))).unwrap();
        assert!(stranger.roles.is_empty(), "an unnarrowed session is not an admin");
    }

    #[test]
    fn wrong_expired_or_claimless_tokens_are_refused() {
        let a = auth();
        let other =
            Authenticator::new(&AuthConfig { jwt_secret: "t".repeat(40), ..Default::default() }, Path::new("/"))
                .unwrap();
        let forged = other.mint("mallory", &[Role::Admin], std::time::Duration::from_secs(60));
        assert!(matches!(a.verify(&forged), Err(AuthError::Invalid(m)) if m == "bad signature"));
        let expired = a.mint("bob", &[], std::time::Duration::ZERO);
        let brief = a.mint("carol", &[], std::time::Duration::from_secs(1));
        assert!(a.verify(&brief).is_ok(), "valid for a second, and remembered as verified");
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert!(matches!(a.verify(&expired), Err(AuthError::Invalid(m)) if m == "expired"));
        let remembered = a.verify(&brief);
        assert!(matches!(&remembered, Err(AuthError::Invalid(m)) if m == "expired"), "{remembered:?}");
        let header = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "x"}),
            &EncodingKey::from_secret(&[b's'; 40]),
        )
        .unwrap();
        let claimless = a.verify(&header);
        assert!(matches!(&claimless, Err(AuthError::Invalid(m)) if m.starts_with("missing claim")), "{claimless:?}");
        assert!(matches!(a.verify_header(None), Err(AuthError::Missing)));
        assert!(matches!(a.verify_header(Some("Basic abc")), Err(AuthError::Missing)));
    }
}
