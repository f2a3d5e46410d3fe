//! Git repositories: a ref resolved to a commit, the commit checked
//! out into a directory the host owns, the build context read from it
//! confined to the checkout, and the build's log kept and streamed. The
//! credentials (a token for HTTPS hosts, a key for SSH) are used here and
//! never leave the host: plugins reach this through the `source` capability,
//! which only ever hands back commits and images.

mod config;
mod context;
mod git;

pub use git::{is_full_sha, Checkout};
mod logs;

pub use config::{RepositoriesConfig, MAX_BUILD_SECONDS};
pub use context::{context_tar, BuildContext};
pub use logs::{BuildLogs, LogEvent};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepositoryError {
    /// Never works as asked; names the field.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the repository refused the host's credential: {0}")]
    Denied(String),
    #[error("{0}")]
    Unavailable(String),
}

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> RepositoryError {
    RepositoryError::Invalid { field: field.into(), reason: reason.into() }
}

pub struct Repositories {
    config: RepositoriesConfig,
    /// How package entries are built (their builds share the logs and cancelling below).
    builders: crate::packages::BuildersConfig,
    /// Where checkouts are made (and removed).
    work: PathBuf,
    pub logs: BuildLogs,
    /// Builds under way, by deployment: cancelled when it is deleted.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Deployments being deleted: a build of theirs that begins now is over at once.
    doomed: Mutex<std::collections::HashSet<String>>,
}

impl Repositories {
    pub fn new(config: RepositoriesConfig, data_dir: &std::path::Path) -> Repositories {
        Repositories {
            config,
            builders: Default::default(),
            work: data_dir.join("checkouts"),
            logs: BuildLogs::new(data_dir.join("build-logs")),
            running: Mutex::default(),
            doomed: Mutex::default(),
        }
    }

    /// The same, building package entries as `builders` says.
    pub fn with_builders(self, builders: crate::packages::BuildersConfig) -> Repositories {
        Repositories { builders, ..self }
    }

    pub fn builders(&self) -> &crate::packages::BuildersConfig {
        &self.builders
    }

    pub fn build_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.build_timeout_seconds)
    }

    /// Registers a build of `deployment`; what cancels it (already
    /// cancelled when the deployment is being deleted).
    pub fn begin_build(&self, deployment: &str) -> CancellationToken {
        let token = CancellationToken::new();
        if self.doomed.lock().expect("builds poisoned").contains(deployment) {
            token.cancel();
        }
        self.running.lock().expect("builds poisoned").insert(deployment.into(), token.clone());
        token
    }

    pub fn end_build(&self, deployment: &str) {
        self.running.lock().expect("builds poisoned").remove(deployment);
    }

    /// The deployment is being deleted: its build under way is cancelled,
    /// and so is one that would begin before `forget`. Whether one was under way.
    pub fn cancel_build(&self, deployment: &str) -> bool {
        self.doomed.lock().expect("builds poisoned").insert(deployment.into());
        let token = self.running.lock().expect("builds poisoned").remove(deployment);
        token.map(|t| t.cancel()).is_some()
    }

    /// The deployment is gone (or stayed): builds of its id may run again, and its log goes.
    pub fn forget(&self, deployment: &str, log_too: bool) {
        self.doomed.lock().expect("builds poisoned").remove(deployment);
        if log_too {
            self.logs.remove(deployment);
        }
    }

    /// The host's login for a registry (`host[:port]`), if it has one.
    pub fn registry_login(&self, registry: &str) -> Option<&config::RegistryLogin> {
        self.config.registries.get(registry)
    }

    /// The host's login for `registry` as the engine takes it, if it has one.
    pub fn registry_credentials(&self, registry: &str) -> Option<bollard::auth::DockerCredentials> {
        self.registry_login(registry).map(|login| bollard::auth::DockerCredentials {
            username: Some(login.username.clone()),
            password: Some(login.password.clone()),
            serveraddress: Some(registry.into()),
            ..Default::default()
        })
    }

    /// Replaces the credentials in a text (a log line, an error) with `***`.
    pub fn mask(&self, text: &str) -> String {
        let named = self.config.credentials.values().filter_map(|c| c.token.as_ref());
        let secrets = self.config.token.iter().chain(named).chain(self.config.registries.values().map(|r| &r.password));
        secrets.filter(|s| !s.is_empty()).fold(text.to_string(), |text, secret| text.replace(secret.as_str(), "***"))
    }
}
