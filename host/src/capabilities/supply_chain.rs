//! Always linked (contract 1.6): the supply-chain evidence about the
//! deployment a policy's or an approval rule's call judges. Outside such a
//! call nothing is known, and the answer says so (no digest, not judged).

use super::CallState;
use crate::contract::supply_chain::{Evidence, Host};

impl Host for CallState {
    async fn what_runs(&mut self) -> Evidence {
        match &self.about.evidence {
            Some(evidence) => evidence.as_ref().into(),
            None => (&crate::supply_chain::Evidence::default()).into(),
        }
    }
}
