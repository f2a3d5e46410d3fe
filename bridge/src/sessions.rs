//! The bridge's client sessions: which deployment each belongs to, which
//! server it talks to, and when it was last used. A session ends when its
//! client deletes it, when its deployment goes, or when nobody has used it
//! for the idle time and no stream of it is open — clients that vanish
//! without a DELETE leave nothing behind, not even a per-session server: the
//! server of a session that ends is passed to whoever retires them.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

use crate::link::Target;

/// The server a session talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionServer {
    /// The deployment's one server, shared with its other sessions.
    Shared,
    /// A server started for this session alone (per-session mode).
    Own(OwnServer),
}

/// A server started for one session: the backend knows it as `instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnServer {
    pub instance: String,
    pub target: Target,
}

struct Session {
    deployment: String,
    server: SessionServer,
    last_used: Instant,
}

pub struct Sessions {
    open: HashMap<String, Session>,
    /// Where the instances of per-session servers whose session ended go.
    retired: UnboundedSender<String>,
}

impl Sessions {
    pub fn new(retired: UnboundedSender<String>) -> Sessions {
        Sessions { open: HashMap::new(), retired }
    }

    /// A new session with a deployment's server; its id.
    pub fn open(&mut self, deployment: &str, server: SessionServer) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = Session { deployment: deployment.into(), server, last_used: Instant::now() };
        self.open.insert(id.clone(), session);
        id
    }

    /// The server of session `id`, if it is a session with `deployment`; a
    /// use keeps it alive.
    pub fn use_for(&mut self, id: &str, deployment: &str) -> Option<SessionServer> {
        match self.open.get_mut(id) {
            Some(s) if s.deployment == deployment => {
                s.last_used = Instant::now();
                Some(s.server.clone())
            }
            _ => None,
        }
    }

    pub fn belongs_to(&self, id: &str, deployment: &str) -> bool {
        self.open.get(id).is_some_and(|s| s.deployment == deployment)
    }

    /// Whether session `id` talks over the link known as `link` (its own
    /// server's instance, or the deployment a shared server belongs to).
    pub fn talks_over(&self, id: &str, link: &str) -> bool {
        self.open.get(id).is_some_and(|s| match &s.server {
            SessionServer::Shared => s.deployment == link,
            SessionServer::Own(own) => own.instance == link,
        })
    }

    pub fn close(&mut self, id: &str) {
        if let Some(session) = self.open.remove(id) {
            self.retire(session);
        }
    }

    /// Ends every session with a deployment; the instances of their own
    /// servers, for the caller to remove.
    pub fn close_all(&mut self, deployment: &str) -> Vec<String> {
        let ended: Vec<String> =
            self.open.iter().filter(|(_, s)| s.deployment == deployment).map(|(id, _)| id.clone()).collect();
        ended
            .iter()
            .filter_map(|id| match self.open.remove(id)?.server {
                SessionServer::Own(own) => Some(own.instance),
                SessionServer::Shared => None,
            })
            .collect()
    }

    /// Ends the session whose own server is `instance` (the server ended); its id.
    pub fn close_with_server(&mut self, instance: &str) -> Option<String> {
        let id = self
            .open
            .iter()
            .find(|(_, s)| matches!(&s.server, SessionServer::Own(o) if o.instance == instance))?
            .0
            .clone();
        self.close(&id);
        Some(id)
    }

    /// Ends sessions unused for `idle` whose client holds no stream open; how many.
    pub fn expire(&mut self, idle: Duration, now: Instant, streaming: impl Fn(&str) -> bool) -> usize {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(id, s)| now.duration_since(s.last_used) >= idle && !streaming(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.close(id);
        }
        expired.len()
    }

    fn retire(&self, session: Session) {
        if let SessionServer::Own(own) = session.server {
            // The receiver lives as long as the host; gone means the host is stopping.
            let _ = self.retired.send(own.instance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_one_deployment_and_idle_ones_end() {
        let (retired, mut ended) = tokio::sync::mpsc::unbounded_channel();
        let mut sessions = Sessions::new(retired);
        let own = |instance: &str| {
            SessionServer::Own(OwnServer { instance: instance.into(), target: Target::Stdio(instance.into()) })
        };
        let (a, b) = (sessions.open("d1", SessionServer::Shared), sessions.open("d1", own("i1")));
        let listening = sessions.open("d2", own("i2"));
        assert_eq!(sessions.use_for(&a, "d1"), Some(SessionServer::Shared));
        assert_eq!(sessions.use_for(&a, "d2"), None, "a session is its deployment's only");
        assert!(sessions.talks_over(&a, "d1") && sessions.talks_over(&b, "i1") && !sessions.talks_over(&b, "d1"));
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(sessions.expire(Duration::from_secs(60), later, |_| false), 0, "nothing is idle yet");
        assert_eq!(sessions.expire(Duration::from_secs(5), later, |id| id == listening), 2, "an open stream keeps one");
        assert!(!sessions.belongs_to(&a, "d1") && !sessions.belongs_to(&b, "d1"));
        assert_eq!(ended.try_recv().ok().as_deref(), Some("i1"), "an expired session's own server is retired");
        assert_eq!(sessions.close_all("d2"), ["i2"], "the caller removes the servers of a deployment that goes");
        assert!(!sessions.belongs_to(&listening, "d2") && ended.try_recv().is_err());
        let c = sessions.open("d3", own("i3"));
        assert_eq!(sessions.close_with_server("i3"), Some(c));
        assert_eq!(ended.try_recv().ok().as_deref(), Some("i3"));
    }
}
