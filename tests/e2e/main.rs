//! The end-to-end suites, in one test binary so that wasmtime and the host are
//! linked once: real hosts on loopback against the real Docker engine, the
//! real ContextForge gateway, a real browser and the Code Engine fake. Each
//! module is one suite (`cargo test --test e2e docker::` runs one).

#[path = "../support/mod.rs"]
mod support;

mod api_fuzz;
mod api_input;
mod approvals;
mod auth_matrix;
mod authoring;
mod backup;
mod base_images;
mod catalog_import;
mod code_engine;
mod code_engine_builds;
mod components;
mod compose;
mod docker;
mod egress;
mod engine_restart;
mod full_disk;
mod gateway;
mod github;
mod guides;
mod operations;
mod package_builds;
mod package_mirrors;
mod packages;
mod plugin_host;
mod plugins;
mod pulled_images;
mod resilience;
mod signatures;
mod stdio;
mod store_damage;
mod supply_chain;
mod ui_browser;
