//! Checking a deploy request in full before anything is stored or created:
//! catalog entry, backend, profile, resources, the policy chain and the
//! backend's own validation.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::invalid;
use super::RuntimeError;
use crate::capabilities::CallAbout;
use crate::catalog::{CatalogEntry, ServerSource, Transport};
use crate::contract::types as wit;
use crate::contract::{self, policy::PolicyInput, GuardrailOptions};
use crate::deployment::{DeployBody, DeploymentRequest, ResourceRequest, Resources};
use crate::deployments::Runtime;
use crate::guardrails::{self, EffectiveGuardrails, Profile, Warning};
use crate::plugins::Plugin;
use crate::repositories::RepositoryError;
use crate::supply_chain::Evidence;

/// The outcome of checking a request: everything needed to deploy it.
pub struct Checked {
    /// The request as stored.
    pub request: DeploymentRequest,
    /// The same request as plugins see it.
    pub plugin_request: wit::DeployRequest,
    pub guardrails: EffectiveGuardrails,
    pub warnings: Vec<Warning>,
}

impl Runtime {
    /// The evaluator that always runs first.
    fn default_evaluator(&self) -> Option<Arc<Plugin>> {
        self.plugins.get(super::DEFAULT_EVALUATOR)
    }

    /// Runs the policy chain over a request: effective guardrails and warnings, or a denial.
    pub async fn evaluate_policies(
        &self,
        request: &wit::DeployRequest,
        profile: &Profile,
        capabilities: &wit::BackendCapabilities,
        asked: GuardrailOptions,
        evidence: &Evidence,
    ) -> Result<(EffectiveGuardrails, Vec<wit::Warning>), RuntimeError> {
        // Resolved now: this evaluation runs on these versions, whatever is swapped in meanwhile.
        let chain: Vec<Arc<Plugin>> = self.default_evaluator().into_iter().chain(self.plugins.policy_chain()).collect();
        self.evaluate_chain(&chain, request, profile, capabilities, asked, evidence).await
    }

    /// The chain is told the options the profile and entry ask for; the guardrails it
    /// decides keep those the backend can honour.
    async fn evaluate_chain(
        &self,
        chain: &[Arc<Plugin>],
        request: &wit::DeployRequest,
        profile: &Profile,
        capabilities: &wit::BackendCapabilities,
        asked: GuardrailOptions,
        evidence: &Evidence,
    ) -> Result<(EffectiveGuardrails, Vec<wit::Warning>), RuntimeError> {
        let mut input = PolicyInput {
            request: request.clone(),
            profile: profile.into(),
            capabilities: *capabilities,
            effective: crate::contract::initial_guardrails(profile),
            warnings: Vec::new(),
        };
        let evidence = Arc::new(evidence.clone());
        for policy in chain {
            match policy.evaluate(&input, CallAbout::judging(asked, &evidence)).await? {
                Ok(out) => {
                    input.effective = out.effective;
                    input.warnings = out.warnings;
                }
                Err(denial) => return Err(RuntimeError::Invalid { field: denial.field, reason: denial.reason }),
            }
        }
        Ok((contract::effective_guardrails(&input.effective, asked.on(capabilities)), input.warnings))
    }

    /// Checks a deploy request in full; nothing is stored or created.
    pub async fn check(&self, body: &DeployBody, id: &str, actor: Option<&str>) -> Result<Checked, RuntimeError> {
        let current: CatalogEntry = self
            .catalog
            .find(&body.slug)?
            .ok_or_else(|| invalid("slug", format!("no catalog entry '{}'", body.slug)))?;
        let revisions = self.catalog.revisions(&body.slug)?;
        let (entry, catalog_revision) = match body.catalog_revision {
            None => (current, revisions.last().map(|r| r.revision)),
            Some(wanted) => match revisions.into_iter().find(|r| r.revision == wanted) {
                // The server as it was, governed as the entry is now: naming an
                // old revision never escapes a tighter profile or an approval.
                Some(past) => (
                    CatalogEntry {
                        guardrails_profile: current.guardrails_profile,
                        requires_approval: current.requires_approval,
                        supported_backends: current.supported_backends,
                        ..past.entry
                    },
                    Some(wanted),
                ),
                None => return Err(invalid("catalog_revision", format!("'{}' has no revision {wanted}", body.slug))),
            },
        };
        if let ServerSource::Remote { url, .. } = &entry.source {
            let reason = format!(
                "'{}' is already hosted at {url}: nothing to deploy; an admin registers it with the gateway \
                 (PUT /catalog/{}/registration)",
                entry.slug, entry.slug
            );
            return Err(invalid("slug", reason));
        }
        let backend_name = body.backend.clone().unwrap_or_else(|| self.backend_for(&entry));
        if !entry.runs_on(&backend_name) {
            return Err(invalid(
                "backend",
                format!("'{}' supports {:?}, not '{backend_name}'", entry.slug, entry.supported_backends),
            ));
        }
        let backend = self.backends.get_checked(&backend_name).await?;
        let profile_name = body.profile.clone().unwrap_or_else(|| entry.guardrails_profile.clone());
        let profile = self
            .profiles
            .find(&profile_name)?
            .ok_or_else(|| invalid("profile", format!("no guardrails profile '{profile_name}'")))?;
        for key in body.env.keys() {
            if !crate::catalog::is_env_name(key) {
                return Err(invalid(&format!("env.{key}"), "not a valid environment variable name"));
            }
        }
        let mut stack_warnings = Vec::new();
        if let ServerSource::Compose { compose_file, main_service } = &entry.source {
            // Checked again here: the profile may differ from the entry's, and bounds the whole stack.
            let stack = crate::compose::Stack::parse(compose_file, main_service).map_err(compose_refused)?;
            stack.check_profile(&profile).map_err(compose_refused)?;
            stack_warnings = stack
                .warnings
                .into_iter()
                .map(|(at, message)| (format!("source.compose_file.{at}"), message))
                .collect();
        }
        let resources = self.resources(&body.resources, &backend_name, &profile)?;
        let env = crate::catalog::resolve_env(&entry.env_vars, &entry.environment, &body.env).map_err(|e| match e {
            crate::catalog::CatalogError::Invalid { field, reason } => invalid(&field, reason),
        })?;
        let mut request = DeploymentRequest {
            entry,
            env,
            resources,
            commit: None,
            catalog_revision,
            pinned_image: None,
            pinned_stack: Vec::new(),
            evidence: Default::default(),
        };
        match &request.entry.source {
            ServerSource::Docker { image, .. } => request.pinned_image = Some(self.pin_image(image).await),
            ServerSource::Compose { compose_file, main_service } => {
                let images = crate::compose::Stack::parse(compose_file, main_service).map(|s| s.images_owned());
                for image in images.unwrap_or_default() {
                    request.pinned_stack.push(self.pin_image(&image).await);
                }
            }
            _ => {}
        }
        let plugin_request = contract::deploy_request(id, &backend_name, &request, actor);
        let capabilities = self.capabilities_of(&backend_name)?;
        if request.entry.transport == Transport::Stdio && !capabilities.supports_stdio && !backend.bridges_stdio {
            let reason = format!("backend '{backend_name}' serves HTTP only: a stdio server needs one that runs stdio");
            return Err(invalid("transport", reason));
        }
        request.evidence = self.evidence_at_check(&request, &profile).await?;
        // What the host builds is signed and checked once it is built.
        let pulls = request.pinned_image.is_some() || !request.pinned_stack.is_empty();
        let signature_warning = match pulls {
            true => super::evidence::signature_verdict(&request.evidence.signature, &profile.name)?,
            false => None,
        };
        let asked = GuardrailOptions::asked_by(&profile, &request.entry);
        let evaluated =
            self.evaluate_policies(&plugin_request, &profile, &capabilities, asked, &request.evidence).await;
        if let Err(RuntimeError::Invalid { field, .. }) = &evaluated {
            self.metrics.policy_decision(field, "denied");
        }
        let (guardrails, mut warnings) = evaluated?;
        for warning in &warnings {
            self.metrics.policy_decision(&warning.field, "warned");
        }
        let decided = wit::EffectiveGuardrails::from(&guardrails);
        warnings.extend(backend.validate(&plugin_request, &decided, GuardrailOptions::of(&guardrails)).await??);
        warnings.extend(stack_warnings.into_iter().map(|(field, message)| wit::Warning { field, message }));
        warnings.extend(signature_warning);
        if let Some(why) = request.pinned_image.as_ref().and_then(|p| p.unresolved.clone()) {
            let message = format!("its digest could not be read, so it runs by its tag: {why}");
            warnings.push(wit::Warning { field: "source.image".into(), message });
        }
        for pinned in &request.pinned_stack {
            if let Some(why) = &pinned.unresolved {
                let message =
                    format!("{}: its digest could not be read, so it runs by its tag: {why}", pinned.requested);
                warnings.push(wit::Warning { field: "source.compose_file".into(), message });
            }
        }
        request.commit = self.pin_commit(&request, &backend).await?;
        // The plugin's view names the pinned commit when there is one.
        let plugin_request = match request.commit {
            Some(_) => contract::deploy_request(id, &backend_name, &request, actor),
            None => plugin_request,
        };
        Ok(Checked { request, guardrails, warnings: warnings.iter().map(Warning::from).collect(), plugin_request })
    }

    /// The commit a repository source's revision names now, for a backend
    /// that builds repositories through the host (`source.build`): pinned in the request,
    /// it is what an approver sees and what is built, even if the branch moves.
    async fn pin_commit(&self, request: &DeploymentRequest, backend: &Plugin) -> Result<Option<String>, RuntimeError> {
        let ServerSource::Github { repo, revision, credential, .. } = &request.entry.source else { return Ok(None) };
        if !backend.builds_repositories {
            return Ok(None);
        }
        match self.repositories.resolve(repo, revision.as_deref(), credential.as_deref()).await {
            Ok(commit) => Ok(Some(commit)),
            Err(RepositoryError::Invalid { field, reason }) => Err(invalid(&field, reason)),
            Err(RepositoryError::Denied(why)) => {
                Err(invalid("source.repo", format!("the repository refused the host's credential: {why}")))
            }
            Err(RepositoryError::Unavailable(why)) => Err(RuntimeError::Unavailable(why)),
        }
    }

    /// Requested resources in host units; unset ones take the backend's
    /// defaults where those are within the profile's maxima.
    fn resources(&self, asked: &ResourceRequest, backend: &str, profile: &Profile) -> Result<Resources, RuntimeError> {
        let cpu = asked
            .cpu
            .as_deref()
            .map(|c| {
                guardrails::parse_cpu(c)
                    .ok_or_else(|| invalid("resources.cpu", format!("'{c}' is not a CPU quantity such as \"0.5\"")))
            })
            .transpose()?;
        let memory = asked
            .memory
            .as_deref()
            .map(|m| {
                guardrails::parse_memory(m).ok_or_else(|| {
                    invalid("resources.memory", format!("'{m}' is not a memory quantity such as \"256m\""))
                })
            })
            .transpose()?;
        if asked.pids == Some(0) {
            return Err(invalid("resources.pids", "must be at least 1"));
        }
        if let (Some(min), Some(max)) = (asked.min_scale, asked.max_scale) {
            if min > max {
                return Err(invalid("resources.min_scale", "must not exceed max_scale"));
            }
        }
        let defaults = self.config.backends.get(backend).map(|b| b.default_limits.clone()).unwrap_or_default();
        let limits = wit::GuardrailProfile::from(profile).resources;
        Ok(Resources {
            cpu_millis: cpu
                .or_else(|| within(defaults.cpu.as_deref().and_then(guardrails::parse_cpu), limits.max_cpu_millis)),
            memory_bytes: memory.or_else(|| {
                within(defaults.memory.as_deref().and_then(guardrails::parse_memory), limits.max_memory_bytes)
            }),
            pids: asked.pids.or_else(|| within(defaults.pids, limits.max_pids)),
            min_scale: asked.min_scale,
            max_scale: asked.max_scale,
            visibility: asked.visibility,
        })
    }
}

/// A backend default applies only within the profile's maximum.
fn within<T: PartialOrd>(default: Option<T>, max: Option<T>) -> Option<T> {
    default.filter(|d| max.as_ref().is_none_or(|m| d <= m))
}

/// Per field of a profile: enforced on a backend, or ignored and why.
/// Derived by running the default evaluator and the backend's validation on a
/// sample request, so it says exactly what a deployment would get.
/// What a backend would do with each guardrail of a profile.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Compatibility {
    pub profile: String,
    pub backend: String,
    /// Guardrail by guardrail (`network.allowed_hosts`, `resources.max_cpu`…).
    pub fields: BTreeMap<String, FieldSupport>,
    /// What a deploy would warn besides the profile's own fields.
    pub notes: Vec<Warning>,
    /// Each MCP transport: `supported` (and how) or `refused` (and why).
    pub transports: BTreeMap<&'static str, TransportSupport>,
}

/// Whether the backend enforces one guardrail.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FieldSupport {
    pub status: FieldStatus,
    /// Why it would be ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    Enforced,
    /// The backend cannot enforce it: a deploy warns and goes on.
    Ignored,
    /// The profile does not set it.
    NotSet,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TransportSupport {
    /// `supported` or `refused`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

pub async fn compatibility(
    runtime: &Runtime,
    profile: &Profile,
    backend_name: &str,
) -> Result<Compatibility, RuntimeError> {
    let backend = runtime.backend(backend_name)?;
    let capabilities = runtime.capabilities_of(backend_name)?;
    let sample = CatalogEntry {
        name: "compatibility check".into(),
        slug: "compatibility-check".into(),
        description: String::new(),
        icon: None,
        category: None,
        tags: Vec::new(),
        source: crate::catalog::ServerSource::Docker { image: "compatibility-check:0".into(), registry_secret: None },
        supported_backends: vec![backend_name.into()],
        guardrails_profile: profile.name.clone(),
        requires_approval: false,
        documentation_url: None,
        version: None,
        featured: false,
        deprecated: false,
        port: 8080,
        mcp_path: "/mcp".into(),
        transport: Default::default(),
        session_mode: Default::default(),
        command: None,
        args: None,
        environment: BTreeMap::new(),
        env_vars: Vec::new(),
        register_with_gateway: false,
        origin: None,
        health_check: Default::default(),
        restart_policy: Default::default(),
        max_restarts: 0,
    };
    let sample = DeploymentRequest {
        entry: sample,
        env: BTreeMap::new(),
        resources: Resources::default(),
        commit: None,
        catalog_revision: None,
        pinned_image: None,
        pinned_stack: Vec::new(),
        evidence: Default::default(),
    };
    let request = contract::deploy_request("compatibility-check", backend_name, &sample, None);
    let default_only: Vec<_> = runtime.default_evaluator().into_iter().collect();
    let asked = GuardrailOptions::asked_by(profile, &sample.entry);
    let (effective, mut warnings) =
        runtime.evaluate_chain(&default_only, &request, profile, &capabilities, asked, &Evidence::default()).await?;
    // The sample image may not pass a registry allowlist; only warnings matter here.
    let options = GuardrailOptions::of(&effective);
    if let Ok(Ok(more)) = backend.validate(&request, &(&effective).into(), options).await {
        warnings.extend(more);
    }
    let fields: BTreeMap<String, FieldSupport> = profile
        .reported_fields()
        .into_iter()
        .map(|(field, set)| {
            let warning = warnings.iter().find(|w| w.field == field);
            let support = match (set, warning) {
                (_, Some(w)) => FieldSupport { status: FieldStatus::Ignored, reason: Some(w.message.clone()) },
                (false, None) => FieldSupport { status: FieldStatus::NotSet, reason: None },
                (true, None) => FieldSupport { status: FieldStatus::Enforced, reason: None },
            };
            (field.to_string(), support)
        })
        .collect();
    let notes: Vec<Warning> = warnings.iter().filter(|w| !fields.contains_key(&w.field)).map(Warning::from).collect();
    let supported = |how| TransportSupport { status: "supported", how, reason: None };
    let stdio = match (capabilities.supports_stdio, backend.bridges_stdio) {
        (true, true) => supported(Some(
            "bridged to streamable HTTP inside the container (mcp-stdio-bridge), or by the host where the backend links it to stdin and stdout",
        )),
        (true, false) => supported(Some("bridged to streamable HTTP by the host")),
        (false, true) => supported(Some("bridged to streamable HTTP inside the image (mcp-stdio-bridge)")),
        (false, false) => {
            TransportSupport { status: "refused", how: None, reason: Some("the backend serves HTTP only") }
        }
    };
    let transports = BTreeMap::from([("streamable-http", supported(None)), ("stdio", stdio)]);
    Ok(Compatibility { profile: profile.name.clone(), backend: backend_name.into(), fields, notes, transports })
}

fn compose_refused(e: crate::compose::ComposeError) -> RuntimeError {
    invalid(&e.field(), e.reason)
}
