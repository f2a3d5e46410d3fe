//! An image reference pinned to content when a deploy is checked: the
//! registry's manifest digest (read without pulling), and the image the
//! engine holds when it holds the same one (read by the engine capability,
//! `capabilities/container_engine/digests.rs`). The backend is then asked to run
//! the pinned reference, so a tag that moves later changes nothing that was
//! approved; before an approved deployment starts, the tag is read again and
//! a move stops it (`deployments::driver`). Where nothing can be read (no
//! engine, a registry the host cannot reach and no local copy) the image
//! runs by its tag and the deployment says why.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PinnedImage {
    /// The reference the entry names.
    pub requested: String,
    /// The registry's manifest digest (`sha256:…`): from the reference itself
    /// when it names one, else as the registry answered.
    pub digest: Option<String>,
    /// The engine's id of the image, when it holds this content locally.
    pub image_id: Option<String>,
    /// Why no digest or id could be read: the image runs by its tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

impl PinnedImage {
    pub fn unresolved(requested: &str, why: String) -> PinnedImage {
        PinnedImage { requested: requested.into(), digest: None, image_id: None, unresolved: Some(why) }
    }

    /// What the backend runs: `repository@digest`; else, on the host's own
    /// engine, the image id; else the reference as asked.
    pub fn runs(&self, on_host_engine: bool) -> String {
        match (&self.digest, &self.image_id) {
            (Some(digest), _) => format!("{}@{digest}", image_ref::repository(&self.requested)),
            (None, Some(id)) if on_host_engine => id.clone(),
            _ => self.requested.clone(),
        }
    }

    /// The pinned content in one word, for messages: the digest, else the image id.
    pub fn content(&self) -> Option<&str> {
        self.digest.as_deref().or(self.image_id.as_deref())
    }

    /// Whether `now` (the same reference read again) names other content.
    pub fn moved(&self, now: &PinnedImage) -> bool {
        match (&self.digest, &now.digest, &self.image_id, &now.image_id) {
            (Some(before), Some(after), _, _) => before != after,
            (None, None, Some(before), Some(after)) => before != after,
            // Nothing comparable: no reason to stop.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(digest: Option<&str>, image_id: Option<&str>) -> PinnedImage {
        PinnedImage {
            requested: "127.0.0.1:5000/mcp/fixture:v1".into(),
            digest: digest.map(String::from),
            image_id: image_id.map(String::from),
            unresolved: None,
        }
    }

    #[test]
    fn the_backend_runs_the_digest_else_the_local_image_else_the_tag() {
        assert_eq!(pinned(Some("sha256:aa"), Some("sha256:bb")).runs(true), "127.0.0.1:5000/mcp/fixture@sha256:aa");
        assert_eq!(pinned(None, Some("sha256:bb")).runs(true), "sha256:bb");
        // A backend elsewhere (Code Engine) cannot pull an id only this engine knows.
        assert_eq!(pinned(None, Some("sha256:bb")).runs(false), "127.0.0.1:5000/mcp/fixture:v1");
        assert_eq!(pinned(None, None).runs(true), "127.0.0.1:5000/mcp/fixture:v1");
    }

    #[test]
    fn a_tag_has_moved_when_the_same_kind_of_pin_differs() {
        assert!(pinned(Some("sha256:aa"), None).moved(&pinned(Some("sha256:cc"), None)));
        assert!(!pinned(Some("sha256:aa"), None).moved(&pinned(Some("sha256:aa"), Some("sha256:bb"))));
        assert!(pinned(None, Some("sha256:bb")).moved(&pinned(None, Some("sha256:dd"))));
        // A registry that stopped answering is no evidence of a move.
        assert!(!pinned(Some("sha256:aa"), None).moved(&pinned(None, Some("sha256:bb"))));
    }
}
