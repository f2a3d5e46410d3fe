//! Tokens already verified, by their text. A client sends the same bearer
//! token on every request, and verifying it (an HMAC over the token, its
//! claims parsed from JSON) is most of what authorizing a proxied MCP
//! request costs. Only tokens that verified are kept, each until it expires;
//! the cache holds at most `CAPACITY`, dropping the expired ones when full
//! and, should that free nothing, starting over.

use std::collections::HashMap;
use std::sync::RwLock;

use super::Principal;

const CAPACITY: usize = 1024;

#[derive(Default)]
pub(super) struct VerifiedTokens(RwLock<HashMap<String, Verified>>);

struct Verified {
    principal: Principal,
    /// The token's `exp`, in seconds since the epoch.
    expires: u64,
}

impl VerifiedTokens {
    /// Who `token` names, if it verified before and has not expired at `now`.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Principal> {
        let cache = self.0.read().expect("token cache poisoned");
        cache.get(token).filter(|v| now < v.expires).map(|v| v.principal.clone())
    }

    /// Remembers a token that verified, until `expires`.
    pub(super) fn insert(&self, token: &str, principal: &Principal, expires: u64, now: u64) {
        let mut cache = self.0.write().expect("token cache poisoned");
        if cache.len() >= CAPACITY {
            cache.retain(|_, v| now < v.expires);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), Verified { principal: principal.clone(), expires });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn someone(user: &str) -> Principal {
        Principal { user: user.into(), roles: Default::default(), groups: Vec::new() }
    }

    #[test]
    fn a_token_is_known_until_it_expires() {
        let cache = VerifiedTokens::default();
        cache.insert("t", &someone("a"), 100, 10);
        assert_eq!(cache.get("t", 99).map(|p| p.user), Some("a".into()));
        assert!(cache.get("t", 100).is_none(), "expired at its exp");
        assert!(cache.get("other", 10).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first() {
        let cache = VerifiedTokens::default();
        cache.insert("lasting", &someone("a"), 1_000, 0);
        for n in 1..CAPACITY {
            cache.insert(&format!("brief-{n}"), &someone("b"), 10, 0);
        }
        cache.insert("new", &someone("c"), 1_000, 20);
        assert!(cache.get("lasting", 20).is_some(), "a live token survives");
        assert!(cache.get("new", 20).is_some());
        assert_eq!(cache.0.read().unwrap().len(), 2, "the expired ones went");
        for n in 0..CAPACITY {
            cache.insert(&format!("live-{n}"), &someone("d"), 1_000, 20);
        }
        assert!(cache.0.read().unwrap().len() <= CAPACITY, "never more than its capacity");
    }
}
