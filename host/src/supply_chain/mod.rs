//! Supply-chain evidence about what a deployment runs, gathered before
//! policies and approval rules see the request: the image pinned to its
//! content (`digest`), so that what is approved is what runs; its cosign
//! signature checked against trusted keys (`cosign`, `signatures`,
//! `signature`); what it installs (`inventory`, as CycloneDX: `sbom`); and
//! known vulnerabilities in that, matched offline against an OSV database
//! (`osv`) — together the `evidence` the rules and approvers judge. Data and
//! its rules; the engine capability reads what an image is made of, and the
//! `oci` client reads registries.

pub mod cosign;
mod digest;
mod evidence;
pub mod inventory;
pub mod osv;
pub mod producers;
pub mod sbom;
pub mod signature;
pub mod signatures;

pub use digest::PinnedImage;
pub use evidence::Evidence;
pub use signature::{SignatureCheck, SignatureMode, SignatureOutcome};
