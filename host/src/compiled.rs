//! Compiled components kept on disk: each component is compiled once per
//! content hash and engine build, and later loads map the artifact instead
//! of compiling again (plugins and server components alike).

use std::hash::{Hash, Hasher};
use std::path::Path;
use wasmtime::component::Component;
use wasmtime::Engine;

/// The component `bytes` (whose hex SHA-256 is `hash`) for `engine`, from
/// `dir` when compiled before.
pub fn compile_cached(engine: &Engine, dir: &Path, bytes: &[u8], hash: &str) -> wasmtime::Result<Component> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let artifact = dir.join(format!("{hash}-{:016x}.cwasm", h.finish()));
    if artifact.exists() {
        // SAFETY: the artifact was written by `precompile_component` of an
        // engine with the same compatibility hash, in our own data dir.
        match unsafe { Component::deserialize_file(engine, &artifact) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(artifact = %artifact.display(), "recompiling unusable artifact: {e:#}"),
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    // A name of its own: hosts sharing a cache may compile the same component at once.
    let tmp = artifact.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let kept = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&tmp, &compiled));
    match kept.and_then(|()| std::fs::rename(&tmp, &artifact)) {
        // SAFETY: as above; written just now.
        Ok(()) => Ok(unsafe { Component::deserialize_file(engine, &artifact)? }),
        // A cache that cannot take it (a full disk) costs a compile next time, not the component.
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(dir = %dir.display(), "compiled component not cached: {e}");
            // SAFETY: compiled just now by this engine.
            Ok(unsafe { Component::deserialize(engine, &compiled)? })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cache_that_cannot_be_written_still_gives_the_component() {
        let engine = wasmtime::Engine::default();
        // The empty component: the magic, the component encoding's version and layer.
        let empty = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let file = tempfile::NamedTempFile::new().unwrap();
        // A file where the cache directory should be: nothing can be written under it.
        let unwritable = file.path().join("cache");
        assert!(super::compile_cached(&engine, &unwritable, &empty, "abc").is_ok());
        assert!(!unwritable.exists());
    }
}
