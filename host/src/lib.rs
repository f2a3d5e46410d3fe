//! mcp-runtime: a secure runtime for MCP servers. Backends, guardrail policies
//! and approval rules are WebAssembly components (see `wit/`); this crate is
//! the host that loads them and serves the HTTP API.

pub mod alerts;
pub mod api;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod backends;
pub mod backup;
pub mod capabilities;
pub mod catalog;
pub mod clock;
pub mod compiled;
pub mod components;
pub mod compose;
pub mod config;
pub mod contract;
pub mod deployment;
pub mod deployment_state;
pub mod deployments;
pub mod egress;
pub mod events;
pub mod gateway;
pub mod guardrails;
pub mod logs;
pub mod mcp;
pub mod metrics;
pub mod oci;
pub mod packages;
pub mod plugins;
pub mod profiles;
pub mod remote_catalogs;
pub mod repositories;
pub mod services;
pub mod store;
pub mod supply_chain;
pub mod tasks;
pub mod ui;
pub mod wasm_tools;
pub mod webhook;
pub mod working_set;
