//! The bridge's client sessions: which deployment each belongs to and when it
//! was last used. A session ends when its client deletes it, when its
//! deployment goes, or when nobody has used it for `IDLE` and no stream of it
//! is open — clients that vanish without a DELETE leave nothing behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an unused session with no open stream is kept.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

struct Session {
    deployment: String,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions(HashMap<String, Session>);

impl Sessions {
    /// A new session with the deployment's server; its id.
    pub fn open(&mut self, deployment: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.0.insert(id.clone(), Session { deployment: deployment.into(), last_used: Instant::now() });
        id
    }

    /// Whether `id` is a session with `deployment`; a use keeps it alive.
    pub fn use_for(&mut self, id: &str, deployment: &str) -> bool {
        match self.0.get_mut(id) {
            Some(s) if s.deployment == deployment => {
                s.last_used = Instant::now();
                true
            }
            _ => false,
        }
    }

    pub fn belongs_to(&self, id: &str, deployment: &str) -> bool {
        self.0.get(id).is_some_and(|s| s.deployment == deployment)
    }

    pub fn close(&mut self, id: &str) {
        self.0.remove(id);
    }

    pub fn close_all(&mut self, deployment: &str) {
        self.0.retain(|_, s| s.deployment != deployment);
    }

    /// Ends sessions unused for `idle` whose client holds no stream open; how many.
    pub fn expire(&mut self, idle: Duration, now: Instant, streaming: impl Fn(&str) -> bool) -> usize {
        let before = self.0.len();
        self.0.retain(|id, s| now.duration_since(s.last_used) < idle || streaming(id));
        before - self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_one_deployment_and_idle_ones_end() {
        let mut sessions = Sessions::default();
        let (a, b, listening) = (sessions.open("d1"), sessions.open("d1"), sessions.open("d2"));
        assert!(sessions.use_for(&a, "d1") && !sessions.use_for(&a, "d2"), "a session is its deployment's only");
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(sessions.expire(Duration::from_secs(60), later, |_| false), 0, "nothing is idle yet");
        assert_eq!(sessions.expire(Duration::from_secs(5), later, |id| id == listening), 2, "an open stream keeps one");
        assert!(
            !sessions.belongs_to(&a, "d1") && !sessions.belongs_to(&b, "d1") && sessions.belongs_to(&listening, "d2")
        );
        sessions.close_all("d2");
        assert!(!sessions.belongs_to(&listening, "d2"));
    }
}
