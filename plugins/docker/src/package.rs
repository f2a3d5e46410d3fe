//! Images built from npm and PyPI packages (contract 1.4): a package entry
//! reaches the backend as an image named by its purl; the host builds it
//! (grant `source`) from the lock it keeps, or finds it built.

use crate::exports::mcp_runtime::plugin::backend::{BackendError, BuildFacts, Prepared};
use crate::mcp_runtime::plugin::source;

/// How a package entry's `image` begins.
const PURL: &str = "pkg:";

pub fn is_package(image: &str) -> bool {
    image.starts_with(PURL)
}

pub fn prepare(deployment_id: &str) -> Result<Prepared, BackendError> {
    let built = source::build_package(deployment_id, &[]).map_err(crate::github::source_error)?;
    // For a package, the build facts' `commit` is its lock.
    let build = Some(BuildFacts { commit: built.lock, cache_hit: built.cache_hit });
    Ok(Prepared { image: built.image, warnings: Vec::new(), build })
}
