//! The plugins in use, by id, and the order rules run in.
//!
//! Each id maps to the version new calls get. A call clones the `Arc` it
//! starts with and finishes on it, so swapping a version in never fails a
//! call or splits one across versions; the old version is dropped when its
//! last call ends (the same idea as OPA's instance pool, without the pool:
//! every call has a fresh store already).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Plugin, PluginKind};

#[derive(Default)]
pub struct Registry {
    live: RwLock<BTreeMap<String, Arc<Plugin>>>,
    /// Guardrail policies run after the default evaluator, in order.
    policy_chain: RwLock<Vec<String>>,
    /// Approval rules, all asked, in order.
    approval_rules: RwLock<Vec<String>>,
}

/// Why an order cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct OrderError {
    pub field: String,
    pub reason: String,
}

impl Registry {
    pub fn new(plugins: BTreeMap<String, Arc<Plugin>>) -> Registry {
        Registry { live: RwLock::new(plugins), ..Default::default() }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.live.read().expect("plugin registry poisoned").get(id).cloned()
    }

    /// Every plugin in use, by id.
    pub fn all(&self) -> BTreeMap<String, Arc<Plugin>> {
        self.live.read().expect("plugin registry poisoned").clone()
    }

    /// Makes `plugin` the version new calls get; the one it replaces, if any.
    pub fn swap_in(&self, plugin: Plugin) -> Option<Arc<Plugin>> {
        let id = plugin.manifest.id.clone();
        self.live.write().expect("plugin registry poisoned").insert(id, Arc::new(plugin))
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Plugin>> {
        self.live.write().expect("plugin registry poisoned").remove(id)
    }

    fn resolve(&self, ids: &[String]) -> Vec<Arc<Plugin>> {
        let live = self.live.read().expect("plugin registry poisoned");
        ids.iter().filter_map(|id| live.get(id).cloned()).collect()
    }

    /// The configured policies, resolved now: the versions this evaluation uses.
    pub fn policy_chain(&self) -> Vec<Arc<Plugin>> {
        self.resolve(&self.policy_chain.read().expect("plugin registry poisoned"))
    }

    pub fn approval_rules(&self) -> Vec<Arc<Plugin>> {
        self.resolve(&self.approval_rules.read().expect("plugin registry poisoned"))
    }

    pub fn policy_chain_ids(&self) -> Vec<String> {
        self.policy_chain.read().expect("plugin registry poisoned").clone()
    }

    pub fn approval_rule_ids(&self) -> Vec<String> {
        self.approval_rules.read().expect("plugin registry poisoned").clone()
    }

    /// Sets the policy chain; every id must name a loaded guardrail policy.
    pub fn set_policy_chain(&self, ids: Vec<String>, field: &str) -> Result<(), OrderError> {
        self.check_kinds(&ids, PluginKind::GuardrailPolicy, field)?;
        *self.policy_chain.write().expect("plugin registry poisoned") = ids;
        Ok(())
    }

    pub fn set_approval_rules(&self, ids: Vec<String>, field: &str) -> Result<(), OrderError> {
        self.check_kinds(&ids, PluginKind::ApprovalRule, field)?;
        *self.approval_rules.write().expect("plugin registry poisoned") = ids;
        Ok(())
    }

    fn check_kinds(&self, ids: &[String], kind: PluginKind, field: &str) -> Result<(), OrderError> {
        let live = self.live.read().expect("plugin registry poisoned");
        for (i, id) in ids.iter().enumerate() {
            let refuse = |reason: String| OrderError { field: format!("{field}[{i}]"), reason };
            match live.get(id) {
                None => return Err(refuse(format!("no plugin '{id}'"))),
                Some(p) if p.manifest.kind != kind => {
                    return Err(refuse(format!("'{id}' is a {}, not a {}", p.world(), kind.world())))
                }
                Some(_) if ids[..i].contains(id) => return Err(refuse(format!("'{id}' is named twice"))),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// What uses the plugin now, if anything: it may not be deleted then.
    pub fn used_by(&self, id: &str) -> Option<&'static str> {
        if self.policy_chain.read().expect("plugin registry poisoned").iter().any(|p| p == id) {
            return Some("the policy chain");
        }
        if self.approval_rules.read().expect("plugin registry poisoned").iter().any(|p| p == id) {
            return Some("the approval rules");
        }
        None
    }
}
