//! What the API and the admin UI serve from: one handle per service, each
//! owning its state and its rules. Handlers and pages map input and errors
//! onto these and reach nothing else.

use std::sync::Arc;

use crate::approvals::Approvals;
use crate::catalog::Catalog;
use crate::config::RuntimeConfig;
use crate::deployments::Runtime;
use crate::gateway::Registrations;
use crate::profiles::Profiles;
use crate::remote_catalogs::RemoteCatalogs;

#[derive(Clone)]
pub struct Services {
    /// Deploying, operating and serving deployments (and the backends, plugins and MCP routes they use).
    pub deployments: Arc<Runtime>,
    pub catalog: Arc<Catalog>,
    pub profiles: Arc<Profiles>,
    pub approvals: Arc<Approvals>,
    /// Imports, and the sync of the configured remote catalogs.
    pub remote_catalogs: Arc<RemoteCatalogs>,
    /// The gateway registrations, as the gateway sync keeps them.
    pub registrations: Registrations,
    /// Backups of the whole state, taken while the host serves.
    pub backups: Arc<crate::backup::Backups>,
    /// The host's settings, read-only: the limits and defaults requests meet.
    pub config: Arc<RuntimeConfig>,
}
