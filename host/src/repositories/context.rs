//! The build context: the part of a checkout the engine builds from, read
//! through `cap-std` so nothing outside the checkout can be named. `..` and
//! absolute paths are refused, and so are symlinks that lead out of the
//! tree; the tar holds the context directory and nothing else.

use cap_std::fs::Dir;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{invalid, RepositoryError};

/// A context ready to send to the engine.
pub struct BuildContext {
    pub tar: Vec<u8>,
    /// The Dockerfile's path inside the tar.
    pub dockerfile: String,
}

/// Tars the `context_dir` of the checkout at `root` (its root when absent),
/// checking that it and `dockerfile` (relative to it) stay inside.
pub fn context_tar(root: &Path, context_dir: Option<&str>, dockerfile: &str) -> Result<BuildContext, RepositoryError> {
    let checkout = Dir::open_ambient_dir(root, cap_std::ambient_authority())
        .map_err(|e| RepositoryError::Unavailable(format!("checkout: {e}")))?;
    let context = match context_dir.filter(|c| !c.is_empty() && *c != ".") {
        Some(dir) => {
            let relative = confined("source.context_dir", dir)?;
            checkout.open_dir(&relative).map_err(|e| {
                invalid("source.context_dir", format!("'{dir}' is not a directory inside the repository ({e})"))
            })?
        }
        None => checkout,
    };
    let dockerfile_path = confined("source.dockerfile", dockerfile)?;
    let metadata = context.metadata(&dockerfile_path).map_err(|e| {
        invalid("source.dockerfile", format!("'{dockerfile}' is not a file inside the build context ({e})"))
    })?;
    if !metadata.is_file() {
        return Err(invalid("source.dockerfile", format!("'{dockerfile}' is not a file")));
    }
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    add_dir(&mut tar, &context, Path::new(""), 0)?;
    let tar = tar.into_inner().map_err(|e| RepositoryError::Unavailable(format!("build context: {e}")))?;
    Ok(BuildContext { tar, dockerfile: dockerfile_path.to_string_lossy().into_owned() })
}

/// `path` as a relative path that cannot climb out: no `..`, not absolute.
fn confined(field: &str, path: &str) -> Result<PathBuf, RepositoryError> {
    let candidate = Path::new(path);
    let climbs = candidate.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if path.is_empty() || climbs {
        return Err(invalid(field, format!("'{path}' must be a relative path inside the repository, without '..'")));
    }
    Ok(candidate.components().filter(|c| matches!(c, Component::Normal(_))).collect())
}

/// Deepest directory nesting followed into a context.
const MAX_DEPTH: usize = 64;

fn add_dir(tar: &mut tar::Builder<Vec<u8>>, dir: &Dir, at: &Path, depth: usize) -> Result<(), RepositoryError> {
    let failed = |e: std::io::Error| RepositoryError::Unavailable(format!("build context: {e}"));
    if depth > MAX_DEPTH {
        return Err(invalid("source.context_dir", format!("nested deeper than {MAX_DEPTH} directories")));
    }
    let mut entries: Vec<_> = dir.entries().map_err(failed)?.collect::<Result<_, _>>().map_err(failed)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if depth == 0 && name == ".git" {
            continue;
        }
        let path = at.join(&name);
        let kind = entry.file_type().map_err(failed)?;
        if kind.is_symlink() {
            let out = || {
                invalid(
                    "source.context_dir",
                    format!("the symlink '{}' points out of the build context", path.display()),
                )
            };
            // cap-std refuses to read a link to an absolute path: that is a way out too.
            let target = dir.read_link(&name).map_err(|_| out())?;
            // The link must land inside the context, judged from where it is.
            if target.is_absolute() || !stays_inside(&at.join(&target)) {
                return Err(out());
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            tar.append_link(&mut header, &path, &target).map_err(failed)?;
        } else if kind.is_dir() {
            let sub = dir.open_dir(&name).map_err(failed)?;
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o755);
            tar.append_data(&mut header, &path, std::io::empty()).map_err(failed)?;
            add_dir(tar, &sub, &path, depth + 1)?;
        } else if kind.is_file() {
            let mut file = dir.open(&name).map_err(failed)?;
            let metadata = file.metadata().map_err(failed)?;
            let mut content = Vec::with_capacity(metadata.len() as usize);
            file.read_to_end(&mut content).map_err(failed)?;
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(if cap_std::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            tar.append_data(&mut header, &path, content.as_slice()).map_err(failed)?;
        }
    }
    Ok(())
}

/// Whether a relative path, `..` taken into account, stays at or below its start.
fn stays_inside(path: &Path) -> bool {
    let mut depth = 0i32;
    for component in path.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("server/bin")).unwrap();
        std::fs::write(dir.path().join("server/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("server/bin/tool"), "x").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside the context").unwrap();
        std::os::unix::fs::symlink("bin/tool", dir.path().join("server/inside")).unwrap();
        dir
    }

    fn names(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
    }

    #[test]
    fn the_context_holds_its_directory_only() {
        let dir = tree();
        let context = context_tar(dir.path(), Some("server"), "Dockerfile").unwrap();
        assert_eq!(names(&context.tar), ["Dockerfile", "bin", "bin/tool", "inside"]);
        assert_eq!(context.dockerfile, "Dockerfile");
    }

    #[test]
    fn paths_out_of_the_checkout_are_refused_naming_the_field() {
        let dir = tree();
        let field = |context: Option<&str>, dockerfile: &str| match context_tar(dir.path(), context, dockerfile) {
            Err(RepositoryError::Invalid { field, .. }) => field,
            other => panic!("{:?}", other.map(|c| c.dockerfile)),
        };
        assert_eq!(field(Some("../.."), "Dockerfile"), "source.context_dir");
        assert_eq!(field(Some("/etc"), "Dockerfile"), "source.context_dir");
        assert_eq!(field(Some("server"), "../secret.txt"), "source.dockerfile");
        assert_eq!(field(Some("server"), "/etc/passwd"), "source.dockerfile");
        std::os::unix::fs::symlink("/etc", dir.path().join("server/escape")).unwrap();
        assert_eq!(field(Some("server"), "Dockerfile"), "source.context_dir", "a symlink out of the tree");
        std::fs::remove_file(dir.path().join("server/escape")).unwrap();
        std::os::unix::fs::symlink("../../secret.txt", dir.path().join("server/bin/up")).unwrap();
        assert_eq!(field(Some("server"), "Dockerfile"), "source.context_dir", "a relative symlink climbing out");
        std::fs::remove_file(dir.path().join("server/bin/up")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", dir.path().join("server/Dockerfile.link")).unwrap();
        assert_eq!(field(Some("server"), "Dockerfile.link"), "source.dockerfile", "a Dockerfile that is a way out");
    }
}
