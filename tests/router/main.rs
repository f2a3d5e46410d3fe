//! The fast tier's router tests: the real router called in-process, with no
//! listener, no container engine and no network (`make test-fast`).

#[path = "../support/mod.rs"]
mod support;

mod input;
mod roles;
mod store_compat;
