//! What an image installs, read for its SBOM (`supply_chain::inventory`):
//! its filesystem streamed from a container created from it and never
//! started (no network), only the package databases parsed, then the
//! container removed. Kept in the store by the image's id and by each
//! registry digest it carries, so a deploy of the same content finds it.

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptions;
use futures_util::StreamExt;
use std::io::Read;

use super::{engine_error, ContainerEngine, EngineError, LocalImage};
use crate::events::{EventData, ImageInventoried};
use crate::store::{NewEvent, Store, StoreError, Table};
use crate::supply_chain::inventory::{wanted, Inventory, Reader};

/// A database larger than this is not a database.
const LARGEST_FILE: u64 = 64 << 20;

impl ContainerEngine {
    /// What the image `local` installs.
    pub async fn read_installed(&self, local: &LocalImage) -> Result<Inventory, EngineError> {
        let body = ContainerCreateBody {
            image: Some(local.id.clone()),
            // Never started; an image with no command of its own cannot be created without one.
            entrypoint: Some(vec!["/.mcp-runtime-inventory".into()]),
            network_disabled: Some(true),
            labels: Some(self.labels("", &[("mcp-runtime.build".into(), "inventory".into())])),
            ..Default::default()
        };
        let docker = self.docker();
        let container = docker
            .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
            .await
            .map_err(engine_error)?
            .id;
        let read = self.read_exported(&container, &local.id).await;
        let remove = RemoveContainerOptions { force: true, ..Default::default() };
        let _ = docker.remove_container(&container, Some(remove)).await;
        read
    }

    async fn read_exported(&self, container: &str, image_id: &str) -> Result<Inventory, EngineError> {
        let stream = self.docker().export_container(container).map(|chunk| chunk.map_err(std::io::Error::other));
        let files = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let image_id = image_id.to_string();
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Inventory> {
            // Large reads: each one crosses from the blocking thread to the runtime.
            let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, files));
            let mut reader = Reader::default();
            for entry in archive.entries()? {
                let mut entry = entry?;
                let path = entry.path()?.to_string_lossy().into_owned();
                let Some(what) = wanted(&path) else { continue };
                if !entry.header().entry_type().is_file() || entry.size() > LARGEST_FILE {
                    continue;
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                reader.read(what, &String::from_utf8_lossy(&bytes));
            }
            Ok(reader.finish(&image_id))
        });
        match read.await {
            Ok(Ok(inventory)) => Ok(inventory),
            Ok(Err(e)) => Err(EngineError::Failed(format!("reading the image's files: {e}"))),
            Err(e) => Err(EngineError::Failed(format!("reading the image's files: {e}"))),
        }
    }
}

/// What `image` installs, read once per content (the same image deployed
/// again is known) and kept; how many packages.
pub async fn read_and_keep(engine: &ContainerEngine, store: &Store, image: &str) -> Result<u32, EngineError> {
    let local = engine.local_image(image).await?.ok_or_else(|| EngineError::NotFound(format!("image {image}")))?;
    if let Ok(Some(kept)) = store.get::<Inventory>(Table::ImageInventories, &local.id) {
        return Ok(kept.packages.len() as u32);
    }
    let inventory = engine.read_installed(&local).await?;
    keep(store, image, &inventory, &local)
        .map_err(|e| EngineError::Failed(format!("keeping what {image} installs: {e}")))?;
    Ok(inventory.packages.len() as u32)
}

/// Keeps what `image` installs under its id and its registry digests, with an event each.
pub fn keep(store: &Store, image: &str, inventory: &Inventory, local: &LocalImage) -> Result<(), StoreError> {
    let digests = local.repo_digests.iter().filter_map(|d| d.split_once('@').map(|(_, d)| d.to_string()));
    for digest in digests {
        let event = NewEvent::new(
            format!("image/{digest}"),
            EventData::ImageInventoried(ImageInventoried {
                image: image.into(),
                content: digest.clone(),
                packages: inventory.packages.len(),
            }),
        );
        store.put(Table::ImageInventories, &digest, inventory, event)?;
    }
    let event = NewEvent::new(
        format!("image/{}", inventory.image_id),
        EventData::ImageInventoried(ImageInventoried {
            image: image.into(),
            content: inventory.image_id.clone(),
            packages: inventory.packages.len(),
        }),
    );
    store.put(Table::ImageInventories, &inventory.image_id, inventory, event)
}
