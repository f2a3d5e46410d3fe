//! What the engine last said of each container, kept until the engine's
//! event stream says the container changed. The health watch asks for every
//! running deployment's state every few seconds and the usage sampler for
//! its start time, and the answer is almost always the one before: asking
//! the engine each time cost ~0.5 ms of host CPU a container, the bulk of an
//! idle host's CPU at a few hundred deployments.
//!
//! Nothing is kept while no event stream is open (the engine is down or
//! restarting), a reading that an event overtook is not kept, and nothing is
//! kept longer than `MOST_AGE`, so even an event the engine never sent costs
//! at most that long.

use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{engine_error, ContainerEngine, DEPLOYMENT_LABEL, OWNER_LABEL};
use crate::contract::container_engine::{ContainerInfo, ContainerState, EngineError};

/// The longest a reading is trusted without an event to say it changed.
const MOST_AGE: Duration = Duration::from_secs(120);
/// Events this long before a (re)subscription are replayed: the engine may
/// have sent some before the stream was open.
const REPLAY: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MOST_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Inspections {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// An event stream is open: only then is anything kept.
    following: bool,
    /// Bumped by every event: a reading begun before one may be stale.
    epoch: u64,
    infos: HashMap<String, (Instant, ContainerInfo)>,
    /// Containers seen to carry this runtime's label (labels never change).
    owned: HashSet<String>,
}

impl Inspections {
    fn with<R>(&self, f: impl FnOnce(&mut Kept) -> R) -> R {
        f(&mut self.kept.lock().expect("inspections poisoned"))
    }

    fn fresh(&self, id: &str) -> Option<ContainerInfo> {
        self.with(|k| match k.infos.get(id) {
            Some((at, info)) if k.following && at.elapsed() < MOST_AGE => Some(info.clone()),
            _ => None,
        })
    }

    fn known_owned(&self, id: &str) -> bool {
        self.with(|k| k.following && k.owned.contains(id))
    }

    fn epoch(&self) -> u64 {
        self.with(|k| k.epoch)
    }

    fn following(&self) -> bool {
        self.with(|k| k.following)
    }

    /// Keeps what a reading begun at `epoch` found, unless an event came since.
    fn keep(&self, id: &str, epoch: u64, info: Option<ContainerInfo>) {
        self.with(|k| {
            if k.following && k.epoch == epoch {
                k.owned.insert(id.to_string());
                if let Some(info) = info {
                    k.infos.insert(id.to_string(), (Instant::now(), info));
                }
            }
        })
    }

    /// Container `id` changed (or may have): its next reading asks the engine.
    pub(super) fn changed(&self, id: &str, removed: bool) {
        self.with(|k| {
            k.epoch += 1;
            k.infos.remove(id);
            if removed {
                k.owned.remove(id);
            }
        })
    }

    /// Starts or ends following: either way, nothing kept so far is trusted.
    fn set_following(&self, following: bool) {
        self.with(|k| {
            *k = Kept { following, epoch: k.epoch + 1, ..Kept::default() };
        })
    }
}

/// Following ends with this guard, however the follower ends (a panic included).
struct Following<'a>(&'a Inspections);

impl Drop for Following<'_> {
    fn drop(&mut self) {
        self.0.set_following(false);
    }
}

impl ContainerEngine {
    /// Follows the engine's events on this runtime's containers for as long
    /// as the host runs, opening the stream again after the engine went away.
    pub async fn follow_changes(self: Arc<Self>) {
        let mut retry = FIRST_RETRY;
        loop {
            let replay_from = std::time::SystemTime::now() - REPLAY;
            let since = replay_from.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let filters = HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("label".to_string(), vec![format!("{OWNER_LABEL}={}", self.owner)]),
            ]);
            let options = EventsOptions { since: Some(since.to_string()), until: None, filters: Some(filters) };
            self.inspections.set_following(true);
            let following = Following(&self.inspections);
            let mut events = self.docker().events(Some(options));
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        retry = FIRST_RETRY;
                        let action = event.action.unwrap_or_default();
                        // A command run inside the container changes nothing the readings hold.
                        if action.starts_with("exec_") {
                            continue;
                        }
                        let Some(actor) = event.actor else { continue };
                        if let Some(id) = &actor.id {
                            self.inspections.changed(id, action == "destroy");
                        }
                        // Events carry the container's labels: whose deployment changed.
                        if let Some(deployment) = actor.attributes.and_then(|mut a| a.remove(DEPLOYMENT_LABEL)) {
                            let _ = self.changed_deployments.send(deployment);
                        }
                    }
                    Err(e) => {
                        tracing::debug!("the engine's event stream ended: {e}");
                        break;
                    }
                }
            }
            drop(following);
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MOST_RETRY);
        }
    }

    /// Whether the engine's events are followed now: while they are, every
    /// change of a container this runtime owns is heard of (`changed_deployments`).
    pub fn hears_changes(&self) -> bool {
        self.inspections.following()
    }

    /// The deployment of each container that changes, as the engine's events say.
    pub fn changed_deployments(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed_deployments.subscribe()
    }

    pub(super) async fn ensure_container_owned(&self, id: &str) -> Result<(), EngineError> {
        if self.inspections.known_owned(id) {
            return Ok(());
        }
        let epoch = self.inspections.epoch();
        let c = self.docker().inspect_container(id, None).await.map_err(engine_error)?;
        if !self.owned_by_us(c.config.as_ref().and_then(|c| c.labels.as_ref())) {
            return Err(EngineError::NotOwned(format!("container '{id}' is not owned by this runtime")));
        }
        if c.id.as_deref() == Some(id) {
            self.inspections.keep(id, epoch, None);
        }
        Ok(())
    }

    pub async fn inspect_container(&self, id: &str) -> Result<ContainerInfo, EngineError> {
        if let Some(info) = self.inspections.fresh(id) {
            return Ok(info);
        }
        let epoch = self.inspections.epoch();
        let c = self.docker().inspect_container(id, None).await.map_err(engine_error)?;
        if !self.owned_by_us(c.config.as_ref().and_then(|c| c.labels.as_ref())) {
            return Err(EngineError::NotOwned(format!("container '{id}' is not owned by this runtime")));
        }
        let state = c.state.unwrap_or_default();
        let ip_address = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.into_values().find_map(|e| e.ip_address.filter(|ip| !ip.is_empty())));
        let error = match (state.oom_killed, state.error) {
            (Some(true), _) => Some("killed: out of memory".into()),
            (_, e) => e.filter(|e| !e.is_empty()),
        };
        let info = ContainerInfo {
            id: c.id.unwrap_or_default(),
            state: match state.status {
                Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
                Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
                Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
                Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::STOPPING) => {
                    ContainerState::Exited
                }
                Some(ContainerStateStatusEnum::DEAD) | Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Dead,
                _ => ContainerState::Created,
            },
            ip_address,
            restart_count: c.restart_count.unwrap_or(0).max(0) as u32,
            started_at: state.started_at.filter(|t| !t.starts_with("0001-")),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error,
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()).filter(|s| !s.is_empty() && s != "none"),
        };
        // Kept only under its full id, the name events use.
        if info.id == id {
            self.inspections.keep(id, epoch, Some(info.clone()));
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            id: "c1".into(),
            state,
            ip_address: None,
            restart_count: 0,
            started_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            health: None,
        }
    }

    #[test]
    fn nothing_is_kept_unless_an_event_stream_is_open() {
        let kept = Inspections::default();
        kept.keep("c1", kept.epoch(), Some(info(ContainerState::Running)));
        assert!(kept.fresh("c1").is_none() && !kept.known_owned("c1"));
        kept.set_following(true);
        kept.keep("c1", kept.epoch(), Some(info(ContainerState::Running)));
        assert!(kept.fresh("c1").is_some() && kept.known_owned("c1"));
        drop(Following(&kept));
        assert!(kept.fresh("c1").is_none() && !kept.known_owned("c1"), "a closed stream forgets everything");
    }

    #[test]
    fn an_event_forgets_the_reading_and_one_it_overtook_is_not_kept() {
        let kept = Inspections::default();
        kept.set_following(true);
        kept.keep("c1", kept.epoch(), Some(info(ContainerState::Running)));
        kept.changed("c1", false);
        assert!(kept.fresh("c1").is_none(), "the container changed");
        assert!(kept.known_owned("c1"), "it is still ours");
        let begun = kept.epoch();
        kept.changed("c2", false);
        kept.keep("c1", begun, Some(info(ContainerState::Exited)));
        assert!(kept.fresh("c1").is_none(), "an event came while it was read");
        kept.changed("c1", true);
        assert!(!kept.known_owned("c1"), "a destroyed container is forgotten");
    }
}
