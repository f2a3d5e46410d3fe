//! Deployments: from a request to a connected MCP server and back.
//!
//! A request is checked in full before anything is stored (`check`). Then the
//! deployment is recorded as `pending` and driven in the background
//! (`driver`); owners stop, start and delete it (`lifecycle`); after a restart
//! and every few seconds the record is brought in line with what the backend
//! reports (`reconcile`). A per-session deployment starts a server for each
//! MCP session (`per_session`). Every state change goes through the state machine
//! in `crate::deployment` and is one store transaction with its event.

mod approval_flow;
mod check;
mod contents;
mod driver;
mod egress_reports;
mod error;
mod evidence;
mod health;
mod lifecycle;
mod per_session;
mod pinning;
mod plugin_changes;
mod posture;
mod reconcile;
mod scrape;
mod service;
mod serving;
mod signing;
mod unrecorded;
mod usage;

pub use approval_flow::Submitted;
pub use check::{compatibility, Checked, Compatibility};
pub use egress_reports::egress_reports;
pub use error::RuntimeError;
pub use health::{CheckResult, HEALTH_TICK};
pub use posture::Posture;
pub use service::{Runtime, RuntimeParts};
pub use usage::Usage;

/// The guardrail evaluator that always runs first.
pub const DEFAULT_EVALUATOR: &str = "default-guardrails";
