//! Where an entry's server comes from: an image, a Git build, a compose
//! stack, a package, a component, or a server hosted elsewhere.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[schema(as = Source)]
pub enum ServerSource {
    Docker {
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registry_secret: Option<String>,
    },
    Github {
        repo: String,
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "branch")]
        revision: Option<String>,
        #[serde(default = "default_dockerfile")]
        dockerfile: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_dir: Option<String>,
        #[serde(default)]
        build_args: BTreeMap<String, String>,
        /// The stage of a multi-stage Dockerfile to build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The host credential to fetch with: a name in `runtime.sources.credentials`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        #[serde(default)]
        push_to_registry: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registry: Option<String>,
    },
    Compose {
        compose_file: String,
        main_service: String,
    },
    /// A server published as an npm or PyPI package, built into an image
    /// on its base image with its whole dependency tree pinned.
    Package {
        ecosystem: crate::packages::Ecosystem,
        name: String,
        /// Exact once written: a range or `latest` is resolved against the
        /// index when the entry is written (see `requested_version`).
        version: String,
        /// What the writer asked for when it was not an exact version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_version: Option<String>,
        /// The executable to run (npm `bin`, a Python console script);
        /// chosen when the entry is written if the package has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bin: Option<String>,
        /// Python extras installed with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        extras: Vec<String>,
        /// Let the install run the packages' own scripts (npm
        /// `preinstall`/`postinstall`, Python source builds): arbitrary code,
        /// so the default approval rule holds such a deploy.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_install_scripts: bool,
    },
    /// A server shipped as a WebAssembly component, run inside the host by a
    /// backend granted `server-components` (`components/`): fetched from
    /// exactly one of `url` (an allowed HTTP(S) host), `path` (a file in the
    /// operator's `runtime.components.dir`) or `oci` (an artifact in an
    /// allowed registry), and refused unless its bytes have `sha256`.
    Wasm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oci: Option<String>,
        /// `sha256:<hex>` (or the bare hex) of the component's bytes.
        sha256: String,
        /// What the component asks of storage, network and environment, in
        /// wassette's permission-file format (YAML); the profile decides
        /// what it gets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        permissions: Option<String>,
    },
    /// A server already hosted at `url`: nothing is deployed; an admin
    /// registers it with the gateway (`PUT /catalog/{slug}/registration`).
    Remote {
        url: String,
        /// The credential the server asks of its clients as its publisher
        /// names it (`OAuth2.1`, `API Key`); none for an open server. Such
        /// credentials are the gateway's to hold, so an entry with one is
        /// registered in the gateway itself, not from here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

impl ServerSource {
    /// The package a package source names, as the resolver and builder take it.
    pub fn package(&self) -> Option<crate::packages::PackageRequest<'_>> {
        match self {
            ServerSource::Package { ecosystem, name, version, bin, extras, allow_install_scripts, .. } => {
                Some(crate::packages::PackageRequest {
                    ecosystem: *ecosystem,
                    name,
                    version,
                    bin: bin.as_deref(),
                    extras,
                    allow_install_scripts: *allow_install_scripts,
                })
            }
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ServerSource::Docker { .. } => "docker",
            ServerSource::Github { .. } => "github",
            ServerSource::Compose { .. } => "compose",
            ServerSource::Package { .. } => "package",
            ServerSource::Remote { .. } => "remote",
            ServerSource::Wasm { .. } => "wasm",
        }
    }
}
