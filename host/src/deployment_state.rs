//! The deployment state machine: every state and every move between them,
//! defined once. Every path that changes a deployment's state (deploy,
//! approval, stop/start, reconcile, health) asks `can_go_to` first.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DeploymentStatus)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Held until an approver decides.
    AwaitingApproval,
    /// An approver said no, or nobody decided in time. Final.
    Rejected,
    Pending,
    Pulling,
    Building,
    Starting,
    Running,
    Connected,
    /// Its health check failed `failure_threshold` times in a row; restarted
    /// (or failed) according to its restart policy, or back to `connected`
    /// when a check passes first.
    Unhealthy,
    Stopped,
    Error,
}

impl State {
    pub const ALL: [State; 11] = [
        State::AwaitingApproval,
        State::Rejected,
        State::Pending,
        State::Pulling,
        State::Building,
        State::Starting,
        State::Running,
        State::Connected,
        State::Unhealthy,
        State::Stopped,
        State::Error,
    ];

    /// As the API writes it: `awaiting_approval`, `connected`, …
    pub fn name(self) -> &'static str {
        match self {
            State::AwaitingApproval => "awaiting_approval",
            State::Rejected => "rejected",
            State::Pending => "pending",
            State::Pulling => "pulling",
            State::Building => "building",
            State::Starting => "starting",
            State::Running => "running",
            State::Connected => "connected",
            State::Unhealthy => "unhealthy",
            State::Stopped => "stopped",
            State::Error => "error",
        }
    }

    /// The states a deployment is created in.
    pub fn is_initial(self) -> bool {
        matches!(self, State::Pending | State::AwaitingApproval)
    }

    /// Whether a deployment in this state may move to `next`. Staying put
    /// (a new message, a new restart count) is a move too, where it makes sense.
    pub fn can_go_to(self, next: State) -> bool {
        use State::*;
        match (self, next) {
            // A decision, once: approved goes on, rejected or expired ends.
            (AwaitingApproval, Pending | Rejected) => true,
            // Approved, but the content it names moved before it started, or
            // what it pulled or built showed the rules more than they judged: asked again.
            (Pending | Pulling | Building, AwaitingApproval) => true,
            (AwaitingApproval | Rejected, _) | (_, AwaitingApproval | Rejected | Pending) => false,
            // Forward while deploying.
            (Pending, Pulling | Building) => true,
            (Pulling | Building, Starting) => true,
            // Up: first time, after a restart of the server, or adopted after a host restart.
            (Starting | Running | Connected | Unhealthy | Stopped | Error, Running) => true,
            (Running, Connected) => true,
            // Health checks failing, then passing again.
            (Connected, Unhealthy) | (Unhealthy, Connected) => true,
            // Anything that lives may fail; a failure may be observed again with a new message.
            (_, Error) => true,
            // Once created on the backend, it can be stopped and started.
            (Starting | Running | Connected | Unhealthy | Stopped | Error, Stopped | Starting) => true,
            _ => false,
        }
    }

    /// Whether the backend may hold objects for a deployment in this state
    /// (before approval and before its drive began, it cannot).
    pub fn may_have_created_objects(self) -> bool {
        !matches!(self, State::AwaitingApproval | State::Rejected | State::Pending)
    }

    /// Whether the health watch looks at deployments in this state.
    pub fn is_watched(self) -> bool {
        matches!(self, State::Running | State::Connected | State::Unhealthy | State::Error)
    }

    /// Whether a deployment in this state has a process of its own that
    /// should be up: started, serving, or failing its checks.
    pub fn is_running(self) -> bool {
        matches!(self, State::Running | State::Connected | State::Unhealthy)
    }

    /// Whether a deployment in this state has settled: nothing is driving it.
    pub fn is_settled(self) -> bool {
        matches!(self, State::Error | State::Stopped | State::AwaitingApproval | State::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn the_deploy_path_is_allowed_and_nothing_skips_ahead() {
        for path in
            [[Pending, Pulling, Starting, Running, Connected], [Pending, Building, Starting, Running, Connected]]
        {
            for pair in path.windows(2) {
                assert!(pair[0].can_go_to(pair[1]), "{:?} -> {:?}", pair[0], pair[1]);
            }
        }
        for (from, to) in [(Pending, Running), (Pending, Connected), (Pulling, Running), (Stopped, Connected)] {
            assert!(!from.can_go_to(to), "{from:?} -> {to:?} skips ahead");
        }
    }

    #[test]
    fn approval_decides_once_and_rejection_is_final() {
        assert!(AwaitingApproval.can_go_to(Pending) && AwaitingApproval.can_go_to(Rejected));
        for next in State::ALL {
            assert!(!Rejected.can_go_to(next), "rejected -> {next:?}");
            if !matches!(next, Pending | Rejected) {
                assert!(!AwaitingApproval.can_go_to(next), "awaiting_approval -> {next:?} without a decision");
            }
        }
        for from in State::ALL {
            // Asked again: an approved image moved before it started, or a build found more.
            let again = matches!(from, Pending | Pulling | Building);
            assert_eq!(
                from.can_go_to(AwaitingApproval),
                again,
                "{from:?} -> awaiting_approval: at creation, or asked again"
            );
        }
        assert!(State::ALL.iter().filter(|s| s.is_initial()).eq([&AwaitingApproval, &Pending]));
    }

    #[test]
    fn a_created_deployment_can_stop_start_and_fail() {
        for from in [Starting, Running, Connected, Unhealthy, Stopped, Error] {
            for to in [Stopped, Starting, Error] {
                assert!(from.can_go_to(to), "{from:?} -> {to:?}");
            }
        }
        assert!(!Pending.can_go_to(Stopped), "nothing to stop before it is created");
    }

    #[test]
    fn only_a_connected_server_becomes_unhealthy_and_it_may_recover() {
        assert!(Connected.can_go_to(Unhealthy) && Unhealthy.can_go_to(Connected));
        for from in [Pending, Pulling, Building, Starting, Running, Stopped, Error] {
            assert!(!from.can_go_to(Unhealthy), "{from:?} -> unhealthy");
        }
    }

    #[test]
    fn names_are_the_serialized_form() {
        for state in State::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.name());
        }
    }
}
