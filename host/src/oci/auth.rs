//! What a registry's `401` asks for: Basic with the login, or a Bearer token
//! from the realm it names (asked with the login, when there is one).

use base64::Engine;

use super::Login;

pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

impl Challenge {
    pub fn of(answer: &reqwest::Response) -> Option<Challenge> {
        let header = answer.headers().get("www-authenticate")?.to_str().ok()?;
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let param = |name: &str| {
                    params.split(',').find_map(|p| {
                        let (key, value) = p.trim().split_once('=')?;
                        (key == name).then(|| value.trim_matches('"').to_string())
                    })
                };
                Some(Challenge::Bearer { realm: param("realm")?, service: param("service") })
            }
            _ => None,
        }
    }
}

pub fn basic(login: &Login) -> String {
    let pair = format!("{}:{}", login.username, login.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A token for `scope` from the realm.
pub async fn bearer(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    login: Option<&Login>,
) -> Result<String, String> {
    let mut query = vec![("scope", scope)];
    if let Some(service) = service {
        query.push(("service", service));
    }
    let url = reqwest::Url::parse_with_params(realm, &query).map_err(|e| format!("token realm {realm}: {e}"))?;
    let mut request = http.get(url);
    if let Some(login) = login {
        request = request.basic_auth(&login.username, Some(&login.password));
    }
    let answer = request.send().await.map_err(|e| format!("token service {realm}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("token service {realm} answered {}", answer.status()));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let token: Token = answer.json().await.map_err(|e| format!("token service {realm}: {e}"))?;
    token.token.or(token.access_token).ok_or_else(|| format!("token service {realm} handed out no token"))
}
