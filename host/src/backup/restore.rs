//! Reading a backup back: every file checked against the header and the
//! store snapshot checked by redb before anything of the stopped host's is
//! touched. The store it replaces is kept beside it, not deleted.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use super::{digest, io_error, BackupError, FileSum, Header, FORMAT, HEADER};
use crate::store::integrity::{check, Verdict};
use crate::store::{StoreError, FILE_NAME, SCHEMA_VERSION};

/// Largest header read: a backup lists a few thousand files at most.
const HEADER_LIMIT: u64 = 16 * 1024 * 1024;

/// A backup unpacked and checked, staged in the data directory.
pub struct Verified {
    dir: tempfile::TempDir,
    pub header: Header,
}

/// Unpacks the archive at `archive` into a staging directory under
/// `data_dir` and checks it: the header's format and schema, each file's
/// size and SHA-256, and the store snapshot's integrity.
pub fn read(archive: &Path, data_dir: &Path) -> Result<Verified, BackupError> {
    let file = std::fs::File::open(archive).map_err(io_error(archive))?;
    std::fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let dir = tempfile::Builder::new().prefix(".restore-").tempdir_in(data_dir).map_err(io_error(data_dir))?;
    let damaged = |why: String| BackupError::Damaged(why);
    let mut entries = tar::Archive::new(file);
    let mut entries = entries.entries().map_err(|e| damaged(format!("not a tar archive: {e}")))?;
    let first = entries.next().ok_or_else(|| damaged("the archive is empty".into()))?;
    let header = read_header(first.map_err(|e| damaged(format!("its header cannot be read: {e}")))?)?;
    let mut expected = header.files.iter();
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(format!("cut short or corrupted: {e}")))?;
        let path = entry.path().map_err(|e| damaged(e.to_string()))?.to_string_lossy().into_owned();
        let want = expected.next().ok_or_else(|| damaged(format!("'{path}' is not in its header")))?;
        if path != want.path || !is_plain_relative(&path) {
            return Err(damaged(format!("'{path}' is where the header lists '{}'", want.path)));
        }
        unpack(&mut entry, &dir.path().join(&path), want)?;
    }
    if let Some(missing) = expected.next() {
        return Err(damaged(format!("it ends before '{}'", missing.path)));
    }
    if header.files.first().map(|f| f.path.as_str()) != Some(FILE_NAME) {
        return Err(damaged(format!("it holds no {FILE_NAME}")));
    }
    match check(&dir.path().join(FILE_NAME), false).map_err(damaged)? {
        Verdict::Sound => Ok(Verified { dir, header }),
        Verdict::Repaired | Verdict::Damaged(_) => Err(damaged("its store fails redb's integrity check".into())),
    }
}

fn read_header(entry: tar::Entry<'_, std::fs::File>) -> Result<Header, BackupError> {
    let damaged = |why: String| BackupError::Damaged(why);
    let path = entry.path().map_err(|e| damaged(e.to_string()))?.to_string_lossy().into_owned();
    if path != HEADER {
        return Err(damaged(format!("its first entry is '{path}', not {HEADER}: not an mcp-runtime backup")));
    }
    let mut text = Vec::new();
    entry.take(HEADER_LIMIT).read_to_end(&mut text).map_err(|e| damaged(format!("its header: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| damaged(format!("its header: {e}")))?;
    let format = value["format"].as_u64().ok_or_else(|| damaged("its header has no format".into()))?;
    if format > u64::from(FORMAT) {
        return Err(BackupError::FormatTooNew { found: u32::try_from(format).unwrap_or(u32::MAX) });
    }
    let header: Header = serde_json::from_value(value).map_err(|e| damaged(format!("its header: {e}")))?;
    if header.schema_version > SCHEMA_VERSION {
        return Err(BackupError::SchemaTooNew { found: header.schema_version });
    }
    Ok(header)
}

/// A path inside the data directory: no root, no `..`.
fn is_plain_relative(path: &str) -> bool {
    Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Writes one entry to `to`, checked against what the header says of it.
fn unpack(entry: &mut impl Read, to: &Path, want: &FileSum) -> Result<(), BackupError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    // Owner-only, as the data directory keeps its files (the token secret among them).
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(io_error(to))?;
    let mut tee = Tee { from: entry, to: &mut file };
    let (sha256, bytes) = digest(&mut tee).map_err(|e| BackupError::Damaged(format!("'{}': {e}", want.path)))?;
    if (sha256.as_str(), bytes) != (want.sha256.as_str(), want.bytes) {
        return Err(BackupError::Damaged(format!("'{}' does not match its checksum", want.path)));
    }
    file.sync_all().map_err(io_error(to))
}

/// Writes what it reads.
struct Tee<'a, R, W> {
    from: &'a mut R,
    to: &'a mut W,
}

impl<R: Read, W: std::io::Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buffer)?;
        self.to.write_all(&buffer[..n])?;
        Ok(n)
    }
}

/// What a restore replaced.
#[derive(Debug)]
pub struct Restored {
    pub files: usize,
    /// Where the store it replaced was kept, if there was one.
    pub previous_store: Option<std::path::PathBuf>,
}

/// Puts a checked backup in place of a stopped host's state in `data_dir`.
/// Refuses while a host has the store open. The replaced store is kept as
/// `runtime.redb.before-restore`; files the backup does not hold stay.
pub fn restore(verified: Verified, data_dir: &Path) -> Result<Restored, BackupError> {
    let store = data_dir.join(FILE_NAME);
    // Asked read-only: a write open would recover (and so change) the store it is about to keep.
    if store.exists() && crate::store::integrity::in_use(&store) {
        return Err(StoreError::InUse { path: store.display().to_string() }.into());
    }
    let previous_store = store.exists().then(|| data_dir.join(format!("{FILE_NAME}.before-restore")));
    if let Some(kept) = &previous_store {
        std::fs::rename(&store, kept).map_err(io_error(&store))?;
    }
    for file in &verified.header.files {
        let (from, to) = (verified.dir.path().join(&file.path), data_dir.join(&file.path));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        std::fs::rename(&from, &to).map_err(io_error(&to))?;
    }
    Ok(Restored { files: verified.header.files.len(), previous_store })
}
