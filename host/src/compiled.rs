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
    std::fs::create_dir_all(dir)?;
    std::fs::write(&tmp, &compiled)?;
    std::fs::rename(&tmp, &artifact)?;
    // SAFETY: as above; written just now.
    Ok(unsafe { Component::deserialize_file(engine, &artifact)? })
}
