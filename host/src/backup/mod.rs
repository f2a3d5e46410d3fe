//! Backups: the whole state of a host in one tar archive, taken while it
//! serves, and restored into the data directory of a stopped one.
//!
//! The archive's first entry is its header (`HEADER`): the format, the
//! store's schema version and every file's size and SHA-256. Then come a
//! snapshot of the store (one read transaction, `Store::snapshot_to`) and
//! the files under the data directory that records point to. Everything is
//! staged in the data directory first, so the header's checksums are those
//! of exactly what follows it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::events::{BackupTaken, EventData, NewEvent};
use crate::store::{Store, StoreError, SCHEMA_VERSION};

pub mod cli;
mod restore;

pub use restore::{read, restore, Restored, Verified};

/// The archive layout this build writes; a newer one is refused.
pub const FORMAT: u32 = 1;
/// The archive's first entry.
pub const HEADER: &str = "mcp-runtime-backup.json";
/// What a backup is served as.
pub const MEDIA_TYPE: &str = "application/x-tar";

/// What the data directory keeps that records point to, besides the store:
/// the generated token secret, server components, uploaded plugins and the
/// build logs. Checkouts and the plugin cache are made again from these.
const KEPT: [&str; 4] = ["jwt-secret", "components", "uploaded-plugins", "build-logs"];

/// The archive's header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub schema_version: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The version of the host that took it.
    pub host_version: String,
    /// Every file that follows, in order, by its path in the data directory.
    pub files: Vec<FileSum>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSum {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup is of format {found}; this build reads format {FORMAT} and earlier")]
    FormatTooNew { found: u32 },
    #[error("the backup's store has schema version {found}, newer than this build's {SCHEMA_VERSION}")]
    SchemaTooNew { found: u64 },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |error| BackupError::Io { path: path.display().to_string(), error }
}

/// Takes backups of a running host and records who took each: a backup
/// holds the token secret and every record.
pub struct Backups {
    store: std::sync::Arc<Store>,
    data_dir: PathBuf,
}

impl Backups {
    pub fn new(store: std::sync::Arc<Store>, data_dir: &Path) -> Backups {
        Backups { store, data_dir: data_dir.to_path_buf() }
    }

    /// Stages a backup (see `stage`) and records it in the audit trail.
    pub fn take(&self, actor: &str) -> Result<Staged, BackupError> {
        // Staging takes room too: not from the reserve writes are refused under.
        self.store.writable()?;
        let staged = crate::tasks::blocking(|| stage(&self.store, &self.data_dir))?;
        let taken =
            BackupTaken { files: staged.header.files.len(), bytes: staged.header.files.iter().map(|f| f.bytes).sum() };
        self.store.record(NewEvent::new("backup".into(), EventData::BackupTaken(taken)).by(Some(actor)))?;
        Ok(staged)
    }
}

/// A backup staged in the data directory, ready to be written out; the
/// staging directory goes when it is dropped.
pub struct Staged {
    dir: tempfile::TempDir,
    header: Header,
}

/// Stages a backup of the host whose store is `store` and data directory `data_dir`.
pub fn stage(store: &Store, data_dir: &Path) -> Result<Staged, BackupError> {
    let dir = tempfile::Builder::new().prefix(".backup-").tempdir_in(data_dir).map_err(io_error(data_dir))?;
    let snapshot = dir.path().join(crate::store::FILE_NAME);
    store.snapshot_to(&snapshot)?;
    let mut paths = vec![crate::store::FILE_NAME.to_string()];
    for kept in KEPT {
        copy_tree(data_dir, dir.path(), Path::new(kept), &mut paths)?;
    }
    let files = paths.into_iter().map(|path| sum(&dir.path().join(&path), path)).collect::<Result<_, _>>()?;
    let header = Header {
        format: FORMAT,
        schema_version: SCHEMA_VERSION,
        created_at: chrono::Utc::now(),
        host_version: env!("CARGO_PKG_VERSION").into(),
        files,
    };
    Ok(Staged { dir, header })
}

/// Copies `relative` (a file or a directory's files, recursively) from
/// `from` to `to`, adding each file's path; what does not exist is skipped.
fn copy_tree(from: &Path, to: &Path, relative: &Path, paths: &mut Vec<String>) -> Result<(), BackupError> {
    let source = from.join(relative);
    let Ok(kind) = std::fs::symlink_metadata(&source).map(|m| m.file_type()) else { return Ok(()) };
    if kind.is_dir() {
        std::fs::create_dir_all(to.join(relative)).map_err(io_error(&source))?;
        let mut entries: Vec<_> = std::fs::read_dir(&source)
            .map_err(io_error(&source))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_error(&source))?;
        entries.sort();
        for name in entries {
            copy_tree(from, to, &relative.join(name), paths)?;
        }
    } else if kind.is_file() {
        std::fs::copy(&source, to.join(relative)).map_err(io_error(&source))?;
        paths.push(relative.to_string_lossy().into_owned());
    }
    Ok(())
}

/// A file's size and SHA-256.
fn sum(path: &Path, name: String) -> Result<FileSum, BackupError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let (sha256, bytes) = digest(&mut file).map_err(io_error(path))?;
    Ok(FileSum { path: name, bytes, sha256 })
}

/// The SHA-256 (hex) and length of everything `from` reads.
fn digest(from: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut bytes = 0;
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), bytes));
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
}

impl Staged {
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Writes the archive: the header, then each file it lists.
    pub fn write_to(self, out: impl Write) -> std::io::Result<()> {
        let mut archive = tar::Builder::new(out);
        let header = serde_json::to_vec_pretty(&self.header).map_err(std::io::Error::other)?;
        archive.append_data(&mut entry_header(header.len() as u64), HEADER, header.as_slice())?;
        for file in &self.header.files {
            let path: PathBuf = self.dir.path().join(&file.path);
            let mut entry = entry_header(file.bytes);
            archive.append_data(&mut entry, &file.path, std::fs::File::open(&path)?)?;
        }
        archive.into_inner()?.flush()
    }
}

/// Archive bytes handed on at a time.
const CHUNK: usize = 64 * 1024;

impl Staged {
    /// The archive as a stream, written on a blocking thread as it is read;
    /// a reader that goes away ends the writing, and the staged files go.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::with_capacity(CHUNK, Chunks(sender.clone()));
            if let Err(e) = self.write_to(&mut out) {
                let _ = sender.blocking_send(Err(e));
            }
        });
        futures_util::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|chunk| (chunk, r)) })
    }
}

/// Hands each write to the stream.
struct Chunks(tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>);

impl Write for Chunks {
    fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(written)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader went away"))?;
        Ok(written.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plain file's entry: owner-only, as the data directory keeps its files.
fn entry_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header
}
