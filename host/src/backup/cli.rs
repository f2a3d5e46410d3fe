//! `mcp-runtime backup` and `mcp-runtime restore`. A running host holds the
//! store's lock, so a backup is fetched from it (`GET /backup`, with an
//! admin token minted from the data directory's secret unless one is
//! given); with no host running the CLI reads the files itself.

use anyhow::Context;
use std::path::Path;

use super::{read, restore, stage};
use crate::auth::{Authenticator, Role};
use crate::config::RuntimeConfig;
use crate::store::{Store, StoreError, FILE_NAME};

/// How the CLI reaches a running host.
pub struct Remote {
    /// The host's base URL; `http://<listen>` when absent.
    pub url: Option<String>,
    /// An admin's bearer token; minted from the configured secret when absent.
    pub token: Option<String>,
}

/// Writes a backup of the host configured by `config` to `to`, checked
/// before it takes that name. Returns how many files it holds.
pub async fn backup_to(config: &RuntimeConfig, to: &Path, remote: Remote) -> anyhow::Result<usize> {
    let store_path = config.data_dir.join(FILE_NAME);
    anyhow::ensure!(store_path.is_file(), "no store at {}: nothing to back up", store_path.display());
    let partial = to.with_extension("partial");
    match Store::open(&store_path) {
        Ok(store) => {
            let staged = stage(&store, &config.data_dir)?;
            let file = std::fs::File::create(&partial).with_context(|| partial.display().to_string())?;
            staged.write_to(std::io::BufWriter::new(file))?;
        }
        Err(StoreError::InUse { .. }) => fetch(config, &partial, remote).await?,
        Err(e) => return Err(e.into()),
    }
    // Read back before it is trusted: a backup found damaged on the day it is needed is none.
    let check_dir = tempfile::tempdir().context("a directory to check the backup in")?;
    let checked = read(&partial, check_dir.path());
    let files = checked.map(|v| v.header.files.len()).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, to).with_context(|| to.display().to_string())?;
    Ok(files)
}

/// Streams `GET /backup` of the running host into `to`.
async fn fetch(config: &RuntimeConfig, to: &Path, remote: Remote) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use std::io::Write;
    let url = remote.url.unwrap_or_else(|| format!("http://{}", config.listen.replace("0.0.0.0", "127.0.0.1")));
    let token = match remote.token {
        Some(token) => token,
        None => Authenticator::new(&config.auth, &config.data_dir)?.mint(
            "backup",
            &[Role::Admin],
            std::time::Duration::from_secs(300),
        ),
    };
    let url = format!("{}/backup", url.trim_end_matches('/'));
    let answer = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("the store is in use, and the host at {url} does not answer"))?;
    anyhow::ensure!(answer.status().is_success(), "{url}: {} {}", answer.status(), answer.text().await?);
    let mut file = std::io::BufWriter::new(std::fs::File::create(to).with_context(|| to.display().to_string())?);
    let mut body = answer.bytes_stream();
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.with_context(|| format!("{url}: cut short"))?)?;
    }
    file.into_inner()?.sync_all()?;
    Ok(())
}

/// Restores `from` into the data directory of the stopped host configured by `config`.
pub fn restore_from(config: &RuntimeConfig, from: &Path) -> anyhow::Result<super::Restored> {
    let verified = read(from, &config.data_dir).with_context(|| from.display().to_string())?;
    Ok(restore(verified, &config.data_dir)?)
}
