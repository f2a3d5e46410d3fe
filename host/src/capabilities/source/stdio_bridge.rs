//! `source.bridge-stdio` (1.5): an image whose entrypoint speaks MCP on
//! stdio, made into one that serves it as streamable HTTP, for backends that
//! run only HTTP servers. The host's static `mcp-stdio-bridge` (the
//! `mcp-bridge` crate: the bridge the host itself serves stdio servers with)
//! is copied into a container of the image that is created and never
//! started, owned by root and not writable by anyone, and the container is
//! committed with the bridge as entrypoint, starting the image's own
//! entrypoint and command. No build step runs any code of the image, so no
//! guardrail of a build is needed. Bridged images are kept by (image,
//! bridge binary, owner): deploying the same image again does no work.

use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{
    CommitContainerOptions, CreateImageOptions, RemoveContainerOptions, UploadToContainerOptions,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::super::ContainerEngine;
use crate::contract::source::SourceError;
use crate::repositories::Repositories;

/// Where the bridge is placed in the image (a directory of its own, so
/// nothing of the image's is overwritten).
pub const BRIDGE_PATH: &str = "/.mcp-runtime/mcp-stdio-bridge";
/// The port the bridge listens on unless `$PORT` says otherwise.
const BRIDGE_PORT: &str = "8080/tcp";
/// Bridged images are named under this repository: they are never pulled.
const BRIDGED_REPOSITORY: &str = "mcp-runtime.local/bridged";

fn unavailable(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Unavailable(format!("{what}: {e}"))
}

pub struct StdioBridge<'a> {
    pub engine: &'a ContainerEngine,
    pub repositories: &'a Repositories,
    pub deployment: &'a str,
}

impl StdioBridge<'_> {
    fn log(&self, line: &str) {
        self.repositories.logs.append(self.deployment, &self.repositories.mask(line));
    }

    /// The bridged image's id, tagged with `tags`.
    pub async fn run(&self, image: &str, tags: &[String]) -> Result<String, SourceError> {
        let binary_path = self
            .repositories
            .builders()
            .stdio_bridge()
            .map_err(|(key, why)| SourceError::Unavailable(format!("{key}: {why}")))?;
        let unreadable = |e| unavailable(&binary_path.display().to_string(), e);
        // Read a chunk at a time: the binary is never held whole (it is streamed into the image too).
        let (bridge, size) = file_digest(&binary_path).await.map_err(unreadable)?;
        let docker = self.engine.docker();
        let inspected = match docker.inspect_image(image).await {
            Ok(inspected) => inspected,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                self.pull(image).await?;
                docker.inspect_image(image).await.map_err(|e| unavailable(&format!("inspecting {image}"), e))?
            }
            Err(e) => return Err(unavailable(&format!("inspecting {image}"), e)),
        };
        let image_id = inspected.id.unwrap_or_default();
        // A host uses only what it owns: another host on this engine bridges the image for itself.
        let owner = hex::encode(Sha256::digest(self.engine.owner().as_bytes()));
        let name = format!(
            "{BRIDGED_REPOSITORY}:{}-{}-{}",
            image_id.trim_start_matches("sha256:").get(..12).unwrap_or_default(),
            &bridge[..12],
            &owner[..8]
        );
        if let Ok(found) = docker.inspect_image(&name).await {
            self.log(&format!("stdio bridge: {image} was bridged before ({name})"));
            super::tag_all(self.engine, &name, tags).await?;
            return Ok(found.id.unwrap_or_default());
        }
        let config = inspected.config.unwrap_or_default();
        let (own_entrypoint, own_cmd) = (config.entrypoint.unwrap_or_default(), config.cmd.unwrap_or_default());
        if own_entrypoint.is_empty() && own_cmd.is_empty() {
            // The entry's own `command` then says what the bridge starts (backends put it after the bridge).
            self.log(&format!("stdio bridge: {image} names no command of its own: the entry's `command` must"));
        }
        if own_entrypoint.first().map(String::as_str) == Some(BRIDGE_PATH) {
            self.log(&format!("stdio bridge: {image} runs the bridge already"));
            super::tag_all(self.engine, image, tags).await?;
            return Ok(image_id);
        }
        self.log(&format!("stdio bridge: adding {} to {image}", binary_path.display()));
        let body = ContainerCreateBody {
            image: Some(image_id.clone()),
            // Never started; an image with no command of its own cannot be created without one.
            entrypoint: Some(vec![BRIDGE_PATH.into()]),
            labels: Some(self.engine.labels(self.deployment, &[("mcp-runtime.build".into(), "stdio-bridge".into())])),
            ..Default::default()
        };
        let container = docker
            .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
            .await
            .map_err(|e| unavailable("creating the bridge's container", e))?
            .id;
        let binary = Binary { path: &binary_path, size, digest: &bridge };
        let committed = self.commit(&container, binary, &image_id, own_entrypoint, own_cmd, &name).await;
        let remove = RemoveContainerOptions { force: true, ..Default::default() };
        let _ = docker.remove_container(&container, Some(remove)).await;
        let id = committed?;
        super::tag_all(self.engine, &name, tags).await?;
        self.log(&format!("stdio bridge: {name} serves the image's stdio server at /mcp"));
        Ok(id)
    }

    /// Copies the bridge in and commits the container with it as the entrypoint.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        container: &str,
        binary: Binary<'_>,
        image_id: &str,
        own_entrypoint: Vec<String>,
        own_cmd: Vec<String>,
        name: &str,
    ) -> Result<String, SourceError> {
        let docker = self.engine.docker();
        let bridge = binary.digest;
        let file = tokio::fs::File::open(binary.path).await.map_err(|e| unavailable("opening the bridge", e))?;
        let head = futures_util::stream::iter([Ok(bytes::Bytes::from(bridge_tar_head(binary.size)))]);
        let tail = futures_util::stream::iter([Ok(bytes::Bytes::from(bridge_tar_tail(binary.size)))]);
        let files = head.chain(tokio_util::io::ReaderStream::new(file)).chain(tail);
        let upload = UploadToContainerOptions { path: "/".into(), ..Default::default() };
        docker
            .upload_to_container(container, Some(upload), bollard::body_try_stream(files))
            .await
            .map_err(|e| unavailable("placing the bridge in the image", e))?;
        let mut entrypoint = vec![BRIDGE_PATH.to_string(), "--".into()];
        entrypoint.extend(own_entrypoint);
        let mut labels = self.engine.labels(self.deployment, &[]);
        labels.insert("mcp-runtime.stdio-bridge".into(), format!("sha256:{bridge}"));
        labels.insert("mcp-runtime.bridged-from".into(), image_id.into());
        let config = ContainerConfig {
            entrypoint: Some(entrypoint),
            // Arguments given at deploy time replace this, as they replaced the image's own.
            cmd: Some(own_cmd),
            exposed_ports: Some(vec![BRIDGE_PORT.into()]),
            labels: Some(labels),
            ..Default::default()
        };
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let options = CommitContainerOptions {
            container: Some(container.into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            comment: Some(format!("mcp-stdio-bridge sha256:{bridge} serving {image_id}")),
            pause: false,
            ..Default::default()
        };
        let committed = docker
            .commit_container(options, config)
            .await
            .map_err(|e| unavailable("committing the bridged image", e))?;
        Ok(committed.id)
    }

    /// Pulls an image the host's engine does not have, with the host's login for its registry.
    async fn pull(&self, image: &str) -> Result<(), SourceError> {
        self.log(&format!("pulling {image}"));
        let credentials = self.repositories.registry_credentials(image_ref::of(image));
        let options = CreateImageOptions { from_image: Some(image.into()), ..Default::default() };
        let mut progress = self.engine.docker().create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                return Err(SourceError::Unavailable(self.repositories.mask(&format!("pulling {image}: {e}"))));
            }
        }
        Ok(())
    }
}

/// The bridge binary as it is placed: where it is read from, its size and SHA-256.
struct Binary<'a> {
    path: &'a std::path::Path,
    size: u64,
    digest: &'a str,
}

/// A file's SHA-256 (hex) and size, read a chunk at a time.
async fn file_digest(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let (mut hasher, mut size, mut chunk) = (Sha256::new(), 0u64, vec![0u8; 64 << 10]);
    loop {
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&chunk[..read]);
        size += read as u64;
    }
}

const TAR_BLOCK: u64 = 512;

/// The tar archive's start, up to the bridge's bytes: its directory, then
/// its file's header (root's, readable and runnable by anyone, writable by no one).
fn bridge_tar_head(size: u64) -> Vec<u8> {
    let header = |kind: tar::EntryType, path: &str, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_path(path).expect("a short relative path");
        header.set_size(size);
        header.set_mode(0o555);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        header
    };
    let file = BRIDGE_PATH.trim_start_matches('/');
    let (dir, _) = file.rsplit_once('/').expect("the bridge's path has a directory");
    let mut head = header(tar::EntryType::Directory, &format!("{dir}/"), 0).as_bytes().to_vec();
    head.extend_from_slice(header(tar::EntryType::Regular, file, size).as_bytes());
    head
}

/// The archive's end after `size` bytes of the bridge: the last block's
/// padding and the two zero blocks that close a tar archive.
fn bridge_tar_tail(size: u64) -> Vec<u8> {
    let padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    vec![0; (padding + 2 * TAR_BLOCK) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bridges_digest_is_read_a_chunk_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(file_digest(&path).await.unwrap(), (hex::encode(Sha256::digest(&bytes)), 200_000));
    }

    #[test]
    fn the_bridge_is_placed_read_only_and_owned_by_root() {
        let binary = b"\x7fELF";
        let packed = [bridge_tar_head(4), binary.to_vec(), bridge_tar_tail(4)].concat();
        let mut archive = tar::Archive::new(packed.as_slice());
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let header = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [(".mcp-runtime/".to_string(), 0o555, 0, 0), (".mcp-runtime/mcp-stdio-bridge".to_string(), 0o555, 0, 4)]
        );
    }
}
