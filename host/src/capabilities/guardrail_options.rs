//! Always linked (contract 1.3; `allow-install-scripts` 1.4, `per-session`
//! 1.8): the options of the deployment the current call serves, which the
//! records of the contract cannot carry.

use super::CallState;
use crate::contract::guardrail_options::Host;

impl Host for CallState {
    async fn egress_learn(&mut self) -> bool {
        self.about.options.egress_learn
    }

    async fn allow_install_scripts(&mut self) -> bool {
        self.about.options.allow_install_scripts
    }

    async fn per_session(&mut self) -> bool {
        self.about.options.per_session
    }
}
