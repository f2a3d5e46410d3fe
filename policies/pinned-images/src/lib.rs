//! Example policy: an image must name an exact version.
//! Refuses images tagged `latest` or carrying no tag; with
//! `{"require_digest": true}` in its settings, only `@sha256:` references pass.
//! A package entry (its purl, `pkg:npm/name@1.2.3`) names an exact version,
//! and the host installs its tree from a lock pinned by integrity: it passes.

wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::policy::{Guest, PolicyInput, PolicyOutput};
use guest_kit::denial;
use guest_kit::types::{Denial, Source};

struct PinnedImages;

impl Guest for PinnedImages {
    fn evaluate(input: PolicyInput) -> Result<PolicyOutput, Denial> {
        if let Source::Image(source) = &input.request.entry.source {
            check(&source.image, require_digest()?)?;
        }
        Ok(PolicyOutput { effective: input.effective, warnings: input.warnings })
    }
}

fn check(image: &str, require_digest: bool) -> Result<(), Denial> {
    if image.contains("@sha256:") || image.starts_with("pkg:") {
        return Ok(());
    }
    let deny = |reason: String| Err(denial("source.image", reason));
    if require_digest {
        return deny(format!("'{image}' must be pinned by digest (@sha256:...)"));
    }
    // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.split_once(':') {
        None => deny(format!("'{image}' has no tag: pin a version")),
        Some((_, "latest")) => deny(format!("'{image}' uses the moving tag 'latest': pin a version")),
        Some(_) => Ok(()),
    }
}

#[derive(serde::Deserialize)]
struct Settings {
    #[serde(default)]
    require_digest: bool,
}

/// Settings that cannot be read deny every request rather than loosen the policy.
fn require_digest() -> Result<bool, Denial> {
    guest_kit::settings::<Settings>().map(|s| s.require_digest).map_err(|e| denial("settings", e))
}

export!(PinnedImages);
