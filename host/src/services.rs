//! What the API and the admin UI serve from: one handle per service, each
//! owning its state and its rules. Handlers and pages map input and errors
//! onto these and reach nothing else.

use std::sync::Arc;

use crate::approvals::Approvals;
use crate::catalog::Catalog;
use crate::deployments::Runtime;
use crate::profiles::Profiles;

#[derive(Clone)]
pub struct Services {
    /// Deploying, operating and serving deployments (and the backends, plugins and MCP routes they use).
    pub deployments: Arc<Runtime>,
    pub catalog: Arc<Catalog>,
    pub profiles: Arc<Profiles>,
    pub approvals: Arc<Approvals>,
}

impl Services {
    /// The services of a built runtime, which shares them with the deployments service.
    pub fn of(deployments: &Arc<Runtime>) -> Services {
        Services {
            catalog: deployments.catalog.clone(),
            profiles: deployments.profiles.clone(),
            approvals: deployments.approvals.clone(),
            deployments: deployments.clone(),
        }
    }
}
