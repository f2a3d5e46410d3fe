//! Supply-chain evidence about what a deployment runs, gathered before
//! policies and approval rules see the request: the image pinned to its
//! content (`digest`), so that what is approved is what runs; and known
//! vulnerabilities matched offline against an OSV database (`osv`). Data and
//! its rules; the engine capability reads what an image is made of.

mod digest;
pub mod osv;
pub mod sbom;

pub use digest::PinnedImage;
