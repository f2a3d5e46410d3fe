//! `runtime.sources`: where `repo: org/name` points, the credentials the
//! host fetches repositories with, and the build limits. (Here rather than
//! in `config`, which reads it: the capabilities below `config` use it.)

use serde::Deserialize;

/// A setting that is wrong: its key and why.
pub type Misconfigured = (String, String);

fn invalid(key: &str, reason: impl Into<String>) -> Misconfigured {
    (key.into(), reason.into())
}

/// The seed's limit: no build may run longer.
pub const MAX_BUILD_SECONDS: u64 = 3600;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoriesConfig {
    /// What `repo: org/name` is relative to (GitHub Enterprise, or a loopback server in tests).
    #[serde(default = "default_base_url")]
    pub git_base_url: String,
    /// Sent to HTTPS Git hosts (`RUNTIME_GITHUB_TOKEN`).
    #[serde(default)]
    pub token: Option<String>,
    /// Used for SSH clone URLs (`RUNTIME_GITHUB_SSH_KEY_PATH`).
    #[serde(default)]
    pub ssh_key_path: Option<std::path::PathBuf>,
    #[serde(default = "default_build_timeout")]
    pub build_timeout_seconds: u64,
    /// Credentials catalog entries may name (`source.credential`), for
    /// repositories the defaults above do not open.
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, GitCredential>,
    /// Credentials for pushing built images, by registry (`host[:port]`).
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, RegistryLogin>,
}

/// A token for HTTPS Git hosts, a key for SSH ones, or both.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitCredential {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub ssh_key_path: Option<std::path::PathBuf>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
}

impl Default for RepositoriesConfig {
    fn default() -> Self {
        RepositoriesConfig {
            git_base_url: default_base_url(),
            token: None,
            ssh_key_path: None,
            build_timeout_seconds: default_build_timeout(),
            credentials: Default::default(),
            registries: Default::default(),
        }
    }
}

impl std::fmt::Debug for RepositoriesConfig {
    // The token never reaches a log line, even a debug one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoriesConfig")
            .field("git_base_url", &self.git_base_url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("ssh_key_path", &self.ssh_key_path)
            .field("build_timeout_seconds", &self.build_timeout_seconds)
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .field("registries", &self.registries.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn default_base_url() -> String {
    "https://github.com".into()
}
fn default_build_timeout() -> u64 {
    600
}

impl RepositoriesConfig {
    pub fn validate(&self) -> Result<(), Misconfigured> {
        let base = reqwest::Url::parse(&self.git_base_url).ok();
        if !base.is_some_and(|u| matches!(u.scheme(), "http" | "https" | "ssh" | "git" | "file")) {
            return Err(invalid("runtime.sources.git_base_url", format!("'{}' is not a Git URL", self.git_base_url)));
        }
        if !(1..=MAX_BUILD_SECONDS).contains(&self.build_timeout_seconds) {
            let reason = format!("1-{MAX_BUILD_SECONDS} seconds");
            return Err(invalid("runtime.sources.build_timeout_seconds", reason));
        }
        if let Some(key) = self.ssh_key_path.as_ref().filter(|k| !k.is_file()) {
            return Err(invalid("runtime.sources.ssh_key_path", format!("{} is not a file", key.display())));
        }
        for (name, credential) in &self.credentials {
            let key = format!("runtime.sources.credentials.{name}");
            if credential.token.is_none() && credential.ssh_key_path.is_none() {
                return Err(invalid(&key, "a token, an ssh_key_path, or both"));
            }
            if let Some(path) = credential.ssh_key_path.as_ref().filter(|k| !k.is_file()) {
                return Err(invalid(&format!("{key}.ssh_key_path"), format!("{} is not a file", path.display())));
            }
        }
        Ok(())
    }
}
