//! Guardrail options the contract's records cannot carry: options added in a
//! minor version reach plugins through the `guardrail-options` interface
//! (1.3), answered from this for the deployment the call serves.

use super::types::BackendCapabilities;
use crate::catalog::CatalogEntry;
use crate::guardrails::{EffectiveGuardrails, Profile};

/// What `guardrail-options` answers during one call; the defaults outside a
/// call about a deployment's guardrails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardrailOptions {
    /// Learn mode: egress open to every public host, each one recorded.
    pub egress_learn: bool,
    /// A package entry's install scripts run during its build (1.4).
    pub allow_install_scripts: bool,
    /// The deployment gives each MCP session a server of its own, linked over stdio (1.8).
    pub per_session: bool,
}

impl GuardrailOptions {
    /// The options of guardrails the host decided.
    pub fn of(g: &EffectiveGuardrails) -> GuardrailOptions {
        GuardrailOptions {
            egress_learn: g.network.egress_allowed && g.network.egress_audit,
            allow_install_scripts: g.install_scripts,
            per_session: false,
        }
    }

    /// The options of a deploy of a deployment that is per-session, or not.
    pub fn per_session(self, per_session: bool) -> GuardrailOptions {
        GuardrailOptions { per_session, ..self }
    }

    /// What a profile and an entry ask for: what the policy chain is told.
    pub fn asked_by(p: &Profile, entry: &CatalogEntry) -> GuardrailOptions {
        GuardrailOptions {
            egress_learn: p.network.egress_allowed && p.network.egress_audit,
            allow_install_scripts: entry.source.package().is_some_and(|p| p.allow_install_scripts),
            per_session: false,
        }
    }

    /// What a backend can do of them: learning needs one that filters
    /// egress by host (its proxy sees each host); the default policy warns
    /// when it cannot.
    pub fn on(self, capabilities: &BackendCapabilities) -> GuardrailOptions {
        GuardrailOptions { egress_learn: self.egress_learn && capabilities.supports_egress_host_filtering, ..self }
    }
}
