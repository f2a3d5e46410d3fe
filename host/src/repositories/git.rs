//! The `git` program, run by the host: resolving refs (`ls-remote`) and
//! checking out one commit. Credentials go through the environment, never
//! the command line, and no user or system Git configuration is read.

use std::path::{Path, PathBuf};
use tokio::process::Command;

use super::{invalid, Repositories, RepositoryError};

/// What a Git command authenticates with: the host's defaults, or an entry's named credential.
#[derive(Clone, Copy, Default)]
struct Login<'a> {
    token: Option<&'a str>,
    key: Option<&'a Path>,
}

impl Repositories {
    /// The clone URL of `repo`: `org/name` on the configured host, or a URL as given.
    pub fn clone_url(&self, repo: &str) -> String {
        if repo.contains("://") || repo.starts_with("git@") {
            return repo.to_string();
        }
        let repo = repo.trim_matches('/').trim_end_matches(".git");
        format!("{}/{repo}.git", self.config.git_base_url.trim_end_matches('/'))
    }

    /// The login for `credential` (by name), or the host's defaults.
    fn login(&self, credential: Option<&str>) -> Result<Login<'_>, RepositoryError> {
        let Some(name) = credential else {
            return Ok(Login { token: self.config.token.as_deref(), key: self.config.ssh_key_path.as_deref() });
        };
        let named = self.config.credentials.get(name).ok_or_else(|| {
            invalid("source.credential", format!("no credential '{name}' in runtime.sources.credentials"))
        })?;
        Ok(Login { token: named.token.as_deref(), key: named.ssh_key_path.as_deref() })
    }

    fn git(&self, cwd: &Path, login: Login<'_>) -> Command {
        let mut git = Command::new("git");
        git.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.work)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .kill_on_drop(true);
        if let Some(token) = login.token.filter(|t| !t.is_empty()) {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            git.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"));
        }
        let known_hosts = self.work.join("known_hosts");
        let mut ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            known_hosts.display()
        );
        if let Some(key) = login.key {
            ssh.push_str(&format!(" -o IdentitiesOnly=yes -i {}", key.display()));
        }
        git.env("GIT_SSH_COMMAND", ssh);
        git
    }

    async fn run(&self, cwd: &Path, login: Login<'_>, args: &[&str]) -> Result<String, RepositoryError> {
        std::fs::create_dir_all(&self.work).map_err(|e| RepositoryError::Unavailable(format!("checkouts: {e}")))?;
        let out = self
            .git(cwd, login)
            .args(args)
            .output()
            .await
            .map_err(|e| RepositoryError::Unavailable(format!("cannot run git: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = self.mask(String::from_utf8_lossy(&out.stderr).trim());
        let lower = said.to_lowercase();
        Err(
            if ["authentication", "could not read username", "permission denied", "403", "401"]
                .iter()
                .any(|m| lower.contains(m))
            {
                RepositoryError::Denied(said)
            } else if ["not found", "does not appear to be a git repository", "no such"]
                .iter()
                .any(|m| lower.contains(m))
            {
                invalid("source.repo", said)
            } else {
                RepositoryError::Unavailable(format!("git {}: {said}", args.first().unwrap_or(&"")))
            },
        )
    }

    /// The commit `revision` names now: a branch, a tag (peeled), or a full
    /// SHA (its own answer, without asking the repository).
    pub async fn resolve(
        &self,
        repo: &str,
        revision: Option<&str>,
        credential: Option<&str>,
    ) -> Result<String, RepositoryError> {
        let login = self.login(credential)?;
        if let Some(sha) = revision.filter(|r| is_full_sha(r)) {
            return Ok(sha.to_lowercase());
        }
        let url = self.clone_url(repo);
        let wanted = revision.unwrap_or("HEAD");
        let listed = self.run(&self.work.clone(), login, &["ls-remote", "--", &url, wanted]).await?;
        let refs: Vec<(&str, &str)> = listed.lines().filter_map(|l| l.split_once('\t')).collect();
        let preference = [
            wanted.to_string(),
            format!("refs/heads/{wanted}"),
            format!("refs/tags/{wanted}^{{}}"),
            format!("refs/tags/{wanted}"),
        ];
        preference
            .iter()
            .find_map(|name| refs.iter().find(|(_, r)| r == name).map(|(sha, _)| sha.to_string()))
            .ok_or_else(|| invalid("source.revision", format!("no branch or tag '{wanted}' in {repo}")))
    }

    /// Checks `commit` out into a new directory under the host's work area.
    pub async fn checkout(
        &self,
        deployment: &str,
        repo: &str,
        commit: &str,
        credential: Option<&str>,
    ) -> Result<Checkout, RepositoryError> {
        let login = self.login(credential)?;
        let local = Login::default();
        let dir = self.work.join(format!("{deployment}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        std::fs::create_dir_all(&dir).map_err(|e| RepositoryError::Unavailable(format!("checkout: {e}")))?;
        let checkout = Checkout(dir.clone());
        let url = self.clone_url(repo);
        self.run(&dir, local, &["init", "-q"]).await?;
        // By SHA where the server allows it (GitHub does); else everything, then the SHA.
        if self.run(&dir, login, &["fetch", "-q", "--depth", "1", "--", &url, commit]).await.is_err() {
            self.run(
                &dir,
                login,
                &["fetch", "-q", "--", &url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
            )
            .await?;
        }
        self.run(&dir, local, &["-c", "advice.detachedHead=false", "checkout", "-q", commit])
            .await
            .map_err(|_| invalid("source.revision", format!("commit {commit} is not in {repo}")))?;
        let head = self.run(&dir, local, &["rev-parse", "HEAD"]).await?;
        if head.trim() != commit {
            return Err(invalid("source.revision", format!("checked out {} instead of {commit}", head.trim())));
        }
        Ok(checkout)
    }
}

/// A checkout; its directory is removed when it goes.
pub struct Checkout(PathBuf);

impl Checkout {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn is_full_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_are_on_the_configured_host_unless_a_url() {
        let config =
            crate::config::RepositoriesConfig { git_base_url: "http://127.0.0.1:9/git/".into(), ..Default::default() };
        let sources = Repositories::new(config, Path::new("/nonexistent"));
        assert_eq!(sources.clone_url("org/name"), "http://127.0.0.1:9/git/org/name.git");
        assert_eq!(sources.clone_url("org/name.git"), "http://127.0.0.1:9/git/org/name.git");
        assert_eq!(sources.clone_url("ssh://git@host/org/name.git"), "ssh://git@host/org/name.git");
        assert!(is_full_sha(&"a".repeat(40)) && !is_full_sha("main") && !is_full_sha(&"a".repeat(12)));
    }
}
