//! A full disk is refused, not corrupting. redb fails every operation,
//! reads included, once a write has failed with an I/O error, until the
//! database is opened again; so writes are refused before they begin while
//! the data directory's free space is under a reserve, and redb never meets
//! the full disk. Reads go on; writes resume by themselves once space is
//! freed.

use std::path::{Path, PathBuf};

use super::StoreError;

/// What is kept free by default: well above the largest commit the host
/// makes (a catalog import of a few thousand entries is a few MB).
pub const DEFAULT_RESERVE_BYTES: u64 = 64 * 1024 * 1024;

/// The free space writes leave to spare in the store's directory.
#[derive(Debug, Clone)]
pub struct Reserve {
    dir: PathBuf,
    bytes: u64,
}

impl Reserve {
    pub fn new(dir: &Path, bytes: u64) -> Reserve {
        Reserve { dir: dir.to_path_buf(), bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes free to an unprivileged writer in the directory.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        free_bytes(&self.dir)
    }

    /// Refuses a write when it would eat into the reserve. A directory
    /// whose free space cannot be read is not refused on that account: the
    /// write itself will say what is wrong.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.free_bytes() {
            Ok(free) if free < self.bytes => Err(StoreError::NoSpace(format!(
                "the data directory {} is full: {} free, under the {} kept in reserve; \
                 reads go on, writes resume once space is freed",
                self.dir.display(),
                megabytes(free),
                megabytes(self.bytes)
            ))),
            _ => Ok(()),
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// `statvfs`'s blocks available to unprivileged users, in bytes.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated; `stat` is written by a successful call only.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat.assume_init()
    };
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Whether an I/O error is the disk being full (`ENOSPC`, `EDQUOT`).
pub fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_the_disk_refuses_and_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Reserve::new(dir.path(), 0).check().is_ok());
        let refused = Reserve::new(dir.path(), u64::MAX).check().unwrap_err().to_string();
        assert!(refused.contains(&dir.path().display().to_string()) && refused.contains("is full"), "{refused}");
    }
}
