//! A damaged store is named, not guessed at. Opening a store file that is
//! truncated or corrupted fails with the file's path and what redb found,
//! never a panic and never an empty store in its place; `mcp-runtime store
//! check` reports the same without the host, and with `--repair` lets redb
//! repair what it can. Before the host opens the store, the same check runs
//! on a copy: damage deep in the file is found at start, not in some later
//! read. A store that was not closed cleanly (the host was killed) is not
//! damaged: redb recovers its last commit when it opens.

use redb::{Database, DatabaseError, StorageError};
use std::path::Path;

/// What `store check` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// redb's integrity check passed.
    Sound,
    /// It failed, and redb repaired the file (only when asked to).
    Repaired,
    /// Damaged, in redb's words; whether redb could repair it is known only by trying.
    Damaged(String),
}

/// Why a store file cannot be opened, if it is damaged (and not, say, locked by a running host).
pub fn damage_of(e: &DatabaseError) -> Option<String> {
    match e {
        DatabaseError::Storage(StorageError::Corrupted(why)) => Some(why.clone()),
        // A file cut short reads past its end.
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Some(format!("the file ends early ({io})"))
        }
        // E.g. "Not a redb database: magic number mismatch".
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            Some(io.to_string())
        }
        _ => None,
    }
}

/// Whether another process (a running host) has the store open: asked of
/// redb read-only, which touches nothing, before the file is copied for
/// its check — a copy of a file being written is no evidence of damage.
pub fn in_use(path: &Path) -> bool {
    matches!(redb::ReadOnlyDatabase::open(path), Err(DatabaseError::DatabaseAlreadyOpen))
}

/// Before a store is opened: why it is damaged, if redb's integrity check
/// (on a copy, so nothing is repaired unasked) finds it so. Opening alone
/// reads only what it needs, and a page damaged deep in the file would
/// surface later, in some read. A store that cannot be copied (the disk is
/// full) is opened unchecked, with a warning.
pub fn damage_before_open(path: &Path) -> Option<String> {
    match check(path, false) {
        Ok(Verdict::Sound | Verdict::Repaired) => None,
        Ok(Verdict::Damaged(why)) => Some(why),
        Err(e) => {
            tracing::warn!("the store is opened without its integrity check: {e}");
            None
        }
    }
}

/// Checks the store at `path`; repairs it when `repair` is set. Without
/// `repair` the check runs on a copy, since redb repairs while it checks.
pub fn check(path: &Path, repair: bool) -> Result<Verdict, String> {
    if !path.is_file() {
        return Err(format!("{} is not a store file", path.display()));
    }
    let copy;
    let checked = match repair {
        true => path,
        false => {
            let uncopied = |e: std::io::Error| format!("cannot copy {} to check it: {e}", path.display());
            copy = tempfile::Builder::new()
                .prefix("store-check")
                .tempfile_in(path.parent().unwrap_or(Path::new(".")))
                .map_err(uncopied)?;
            std::fs::copy(path, copy.path()).map_err(uncopied)?;
            copy.path()
        }
    };
    // redb's own consistency assertions (in debug builds) stop it on some
    // damage instead of returning `Corrupted`: that too is a verdict, not a crash.
    let verdict = std::panic::catch_unwind(|| {
        let mut db = match Database::open(checked) {
            Ok(db) => db,
            Err(e) => return damage_of(&e).map(Verdict::Damaged).ok_or_else(|| opening(path, &e)),
        };
        match db.check_integrity() {
            Ok(true) => Ok(Verdict::Sound),
            Ok(false) if repair => Ok(Verdict::Repaired),
            Ok(false) => Ok(Verdict::Damaged("redb's integrity check failed; `--repair` repairs it".into())),
            Err(e) => damage_of(&e).map(Verdict::Damaged).ok_or_else(|| opening(path, &e)),
        }
    });
    verdict.unwrap_or_else(|stopped| {
        let why =
            stopped.downcast_ref::<String>().cloned().or_else(|| stopped.downcast_ref::<&str>().map(|s| s.to_string()));
        Ok(Verdict::Damaged(why.unwrap_or_else(|| "redb stopped reading it".into())))
    })
}

fn opening(path: &Path, e: &DatabaseError) -> String {
    format!("cannot open {}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::entry_added;
    use crate::store::{Store, StoreError, Table, FILE_NAME};
    use std::io::{Seek, SeekFrom, Write};

    /// A store with one deployment's record and event in it, closed.
    fn written(dir: &Path) -> std::path::PathBuf {
        let path = dir.join(FILE_NAME);
        let store = Store::open(&path).unwrap();
        store.put(Table::Catalog, "a", &serde_json::json!({"n": 1}), entry_added("catalog/a")).unwrap();
        drop(store);
        path
    }

    #[test]
    fn a_store_open_elsewhere_is_in_use_and_its_copy_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let open = Store::open(&path).unwrap();
        assert!(in_use(&path));
        assert!(matches!(Store::open(&path), Err(StoreError::InUse { .. })));
        drop(open);
        assert!(!in_use(&path) && Store::open(&path).is_ok());
    }

    fn refused(path: &Path) -> String {
        match Store::open(path) {
            Err(StoreError::Damaged { path: named, why }) => {
                assert_eq!(named, path.display().to_string());
                why
            }
            Err(other) => panic!("not named as damaged: {other}"),
            Ok(_) => panic!("a damaged store opened"),
        }
    }

    #[test]
    fn a_sound_store_checks_sound_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        assert_eq!(check(&path, false), Ok(Verdict::Sound));
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get::<serde_json::Value>(Table::Catalog, "a").unwrap(), Some(serde_json::json!({"n": 1})));
    }

    #[test]
    fn a_truncated_store_is_refused_by_name_and_checked_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let size = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(size / 3).unwrap();
        let before = std::fs::read(&path).unwrap();
        let why = refused(&path);
        assert!(!why.is_empty());
        assert!(matches!(check(&path, false), Ok(Verdict::Damaged(_))), "{:?}", check(&path, false));
        assert_eq!(std::fs::read(&path).unwrap(), before, "neither opening nor checking changed the file");
    }

    #[test]
    fn a_corrupted_header_is_refused_by_name_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(&[0xAB; 512]).unwrap();
        drop(file);
        let before = std::fs::read(&path).unwrap();
        refused(&path);
        assert!(matches!(check(&path, true), Ok(Verdict::Damaged(_))), "a header redb cannot read stays damaged");
        assert_eq!(std::fs::read(&path).unwrap(), before, "no empty store in its place");
    }

    #[test]
    fn damage_inside_the_file_is_found_by_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let store = Store::open(&path).unwrap();
        for i in 0..500 {
            let record = serde_json::json!({"n": i, "pad": "x".repeat(200)});
            store.put(Table::Catalog, &format!("k{i}"), &record, entry_added(&format!("catalog/k{i}"))).unwrap();
        }
        drop(store);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle..middle + 8192].iter_mut().for_each(|b| *b ^= 0x5a);
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(check(&path, false), Ok(Verdict::Damaged(_))), "{:?}", check(&path, false));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "checked on a copy");
    }

    #[test]
    fn checking_what_is_not_a_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing.redb");
        assert!(check(&missing, false).unwrap_err().contains("nothing.redb"));
    }
}
