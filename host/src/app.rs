//! Start-up, shared by the binary and the tests: store, first-start seeding,
//! the container engine, the plugins, reconciliation and the health watch.

use anyhow::Context;
use axum::serve::ListenerExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::approvals::Approvals;
use crate::capabilities::ContainerEngine;
use crate::catalog::{self, Catalog, CatalogEntry};
use crate::clock::Clock;
use crate::config::RuntimeConfig;
use crate::deployments::HEALTH_TICK;
use crate::deployments::{Runtime, RuntimeParts};
use crate::gateway::GatewaySync;
use crate::mcp::upstream::PerClientConnection;
use crate::plugins::PluginHost;
use crate::profiles::Profiles;
use crate::remote_catalogs::RemoteCatalogs;
use crate::services::Services;
use crate::store::Store;

const SAMPLE_CATALOG: &str = include_str!("../defaults/catalog.yaml");

/// A built host, not serving yet: its services, and the handles its loops
/// share (made here, so nothing reads them back out of a service).
pub struct Built {
    pub services: Arc<Services>,
    store: Arc<Store>,
    tasks: crate::tasks::Supervisor,
    metrics: Arc<crate::metrics::Metrics>,
    http: reqwest::Client,
}

/// Builds a ready host on the system's clock: everything but the listener.
pub async fn build(config: RuntimeConfig) -> anyhow::Result<Built> {
    build_with(config, Arc::new(crate::clock::SystemClock)).await
}

/// `build`, with deadlines measured by `clock`.
pub async fn build_with(config: RuntimeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Built> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir.join(crate::store::FILE_NAME))?;
    let store = store.with_reserve(config.disk_reserve_mb * 1024 * 1024).with_event_limit(config.audit.keep_events);
    let store = Arc::new(store);
    let client = || reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).tcp_nodelay(true);
    let http = client().build()?;
    // The operator's pinned names (`runtime.egress.resolve`) hold for the host's own index lookups too.
    let mut index_http = client();
    for (name, ip) in &config.egress.resolve {
        index_http = index_http.resolve(name, std::net::SocketAddr::new(*ip, 0));
    }
    let indexes = crate::packages::Indexes::new(index_http.build()?, Arc::new(config.builders.clone()));
    let catalog = Arc::new(Catalog::new(store.clone(), config.catalog.allow_custom_entries, indexes));
    let profiles = Arc::new(Profiles::new(store.clone(), config.guardrails.default_profile.clone()));
    seed(&catalog, &profiles, &config)?;

    // One supervisor for every task of the host, the egress proxies' among them.
    let tasks = crate::tasks::Supervisor::default();
    let egress = crate::egress::EgressProxies::new(config.egress.resolve.clone().into_iter().collect(), tasks.clone());
    let engine = ContainerEngine::new(&config.container_engine_socket(), &config.owner, egress).map(Arc::new);
    let cache_dir = config.plugin_cache_dir.clone().unwrap_or_else(|| config.data_dir.join("plugin-cache"));
    let repositories = Arc::new(
        crate::repositories::Repositories::new(config.sources.clone(), &config.data_dir)
            .with_builders(config.builders.clone()),
    );
    let metrics = Arc::new(crate::metrics::Metrics::new());
    if let Ok(engine) = &engine {
        engine.egress().report_to(crate::deployments::egress_reports(store.clone(), metrics.clone()));
        tasks.spawn("engine events", engine.clone().follow_changes());
    }
    let components_dir = config.components.dir.clone().unwrap_or_else(|| config.plugin_dir.clone());
    let components = Arc::new(crate::components::ServerComponents::new(
        config.components.clone(),
        components_dir,
        &config.data_dir,
        cache_dir.clone(),
        http.clone(),
        store.clone(),
    ));
    let mut host =
        PluginHost::new(cache_dir, store.clone(), engine.as_ref().ok().cloned(), Some(repositories.clone()))?;
    host.serve_components_in(components.clone());
    host.record_calls_in(metrics.plugin_calls.clone());
    let mut plugins = BTreeMap::new();
    for manifest in &config.plugins {
        let manifest = config.effective_manifest(manifest);
        let plugin = crate::tasks::blocking(|| host.load(&manifest, &config.plugin_dir))
            .context("the plugins are built by `make guests`")?;
        plugins.insert(manifest.id.clone(), Arc::new(plugin));
    }
    let configured = plugins.keys().cloned().collect();
    let uploads = crate::plugins::Uploads::new(host, &config.data_dir, store.clone(), configured);
    let engine = engine.map_err(|e| e.to_string());

    let registry = Arc::new(crate::plugins::Registry::new(plugins));
    let notifier = crate::approvals::Notifier {
        config: config.approval.notification.clone(),
        http: http.clone(),
        store: store.clone(),
        tasks: tasks.clone(),
        clock: clock.clone(),
    };
    let approvals =
        Arc::new(Approvals::new(store.clone(), config.approval.clone(), registry.clone(), clock.clone(), notifier));
    let remote_catalogs = Arc::new(RemoteCatalogs::new(store.clone(), catalog.clone(), &config.catalog, http.clone()));
    let parts = RuntimeParts {
        store: store.clone(),
        config: config.clone(),
        plugins: registry,
        uploads,
        engine,
        repositories,
        metrics: metrics.clone(),
        tasks: tasks.clone(),
        clock,
        http: http.clone(),
        catalog: catalog.clone(),
        profiles: profiles.clone(),
        approvals: approvals.clone(),
        components,
    };
    let runtime = Arc::new(Runtime::new(parts).await?);
    runtime.refresh_backends().await;
    runtime.register_backends().await?;
    if let Err(e) = runtime.reconcile().await {
        tracing::warn!("reconciliation incomplete: {e}");
    }
    let services = Arc::new(Services {
        deployments: runtime,
        catalog,
        profiles,
        approvals,
        remote_catalogs,
        registrations: crate::gateway::Registrations::new(store.clone()),
        backups: Arc::new(crate::backup::Backups::new(store.clone(), &config.data_dir)),
        config: Arc::new(config),
    });
    Ok(Built { services, store, tasks, metrics, http })
}

/// How long a stopping host waits for deploys and requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the plugin drop-in directory is looked at.
const DROPIN_SCAN: Duration = Duration::from_secs(2);
/// How often remote catalogs are looked at to see whether one is due a sync.
const CATALOG_SYNC_TICK: Duration = Duration::from_secs(60);
/// How often approval deadlines are looked at.
const APPROVAL_TICK: Duration = Duration::from_secs(1);

/// A host serving its API until shut down.
pub struct RunningHost {
    pub addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    tasks: crate::tasks::Supervisor,
}

impl RunningHost {
    /// Stops accepting requests, stops every loop, and waits (within a grace)
    /// for deploys and requests in flight; the store closes when the last
    /// handle goes.
    pub async fn shutdown(self) {
        if !self.tasks.shutdown(SHUTDOWN_GRACE).await {
            tracing::warn!(
                "work still in flight after {}s; it is reconciled at the next start",
                SHUTDOWN_GRACE.as_secs()
            );
        }
    }
}

/// Every route the host serves: the API and the admin UI (the in-process
/// router tests call it without a listener).
pub fn router(services: &Arc<Services>, auth: &Arc<crate::auth::Authenticator>) -> axum::Router {
    crate::api::router(services.clone(), auth.clone()).merge(crate::ui::router(services.clone(), auth.clone()))
}

/// Builds the runtime and serves it on `config.listen`, with its background
/// loops supervised.
pub async fn start(config: RuntimeConfig) -> anyhow::Result<RunningHost> {
    start_with(config, Arc::new(crate::clock::SystemClock)).await
}

/// `start`, with deadlines measured by `clock`.
pub async fn start_with(config: RuntimeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<RunningHost> {
    let listen = config.listen.clone();
    let auth = std::sync::Arc::new(crate::auth::Authenticator::new(&config.auth, &config.data_dir)?);
    let Built { services, store, tasks, metrics, http } = build_with(config.clone(), clock).await?;
    let runtime = services.deployments.clone();
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    // Streamed answers go out in small writes: never let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY on an accepted connection: {e}");
        }
    });
    let router = router(&services, &auth);
    let stopping = tasks.stopping();
    tasks.spawn_to_completion("api server", async move {
        // Each client connection gets its own connections to the servers it calls (`mcp::upstream`).
        let server =
            axum::serve(listener, PerClientConnection(router)).with_graceful_shutdown(stopping.cancelled_owned());
        if let Err(e) = server.await {
            tracing::error!("server stopped: {e}");
        }
    });
    tasks.spawn("audit log", crate::events::log_events(store.subscribe(), tasks.stopping()));
    tasks.spawn("metrics from events", crate::metrics::follow_events(metrics, store.subscribe(), tasks.stopping()));
    match config.gateway.clone() {
        Some(gateway) => {
            let sync = GatewaySync::new(store.clone(), gateway, &addr.to_string(), &config.owner, auth, http.clone());
            tasks.spawn("gateway sync", Arc::new(sync).run(store.subscribe(), tasks.stopping()));
        }
        None => tracing::info!("no gateway configured (runtime.gateway): deployments are not registered with one"),
    }
    if let Some(retired) = runtime.retired_session_servers() {
        tasks.spawn("session server removal", runtime.clone().remove_retired_session_servers(retired));
    }
    tasks.spawn("engine changes", runtime.clone().follow_engine_changes());
    let watched = runtime.clone();
    tasks.every("health watch", config.health.watch_interval(), move || {
        let runtime = watched.clone();
        async move { runtime.watch_once().await }
    });
    let alerts =
        crate::alerts::Alerts { config: config.alerts.clone(), http, store: store.clone(), tasks: tasks.clone() };
    tasks.spawn("alerts", Arc::new(alerts).run(store.subscribe(), tasks.stopping()));
    let sampled = runtime.clone();
    tasks.every("usage sampler", config.health.usage_interval(), move || {
        let runtime = sampled.clone();
        async move { runtime.sample_usage_once().await }
    });
    let checked = runtime.clone();
    tasks.every("health checks", HEALTH_TICK, move || {
        let runtime = checked.clone();
        async move { runtime.check_health_once().await }
    });
    if let Some(dir) = config.plugin_dropin_dir.clone() {
        let scanned = runtime.clone();
        tasks.every("plugin drop-in", DROPIN_SCAN, move || {
            let (runtime, dir) = (scanned.clone(), dir.clone());
            async move {
                for dropped in crate::tasks::blocking(|| runtime.scan_dropins(&dir)) {
                    runtime.put_dropped_in(dropped).await;
                }
            }
        });
    }
    if services.remote_catalogs.any() {
        // On start, then whenever a source falls due.
        let starting = services.remote_catalogs.clone();
        tasks.spawn("catalog sync at start", async move { starting.sync_due(false).await });
        let syncing = services.remote_catalogs.clone();
        tasks.every("catalog sync", CATALOG_SYNC_TICK, move || {
            let remote_catalogs = syncing.clone();
            async move { remote_catalogs.sync_due(false).await }
        });
    }
    let approvals = runtime.clone();
    tasks.every("approval deadlines", APPROVAL_TICK, move || {
        let runtime = approvals.clone();
        async move {
            if let Err(e) = runtime.approvals_tick().await {
                tracing::warn!("approval deadlines: {e}");
            }
        }
    });
    Ok(RunningHost { addr, runtime, tasks })
}

/// At the first start: the guardrail presets and profiles of the config,
/// then the sample catalog or the configured one, through their services.
fn seed(catalog: &Catalog, profiles: &Profiles, config: &RuntimeConfig) -> anyhow::Result<()> {
    profiles.seed(&config.guardrails.profiles).context("seeding the guardrail profiles")?;
    if catalog.seeding()? {
        let text = match &config.catalog.seed_file {
            Some(path) => {
                std::fs::read_to_string(path).with_context(|| format!("reading catalog {}", path.display()))?
            }
            None => SAMPLE_CATALOG.to_string(),
        };
        let entries: Vec<CatalogEntry> = catalog::parse_catalog(&text).context("runtime.catalog.seed_file")?;
        for (i, entry) in entries.iter().enumerate() {
            catalog.seed(entry).with_context(|| format!("catalog entry {i} ('{}')", entry.slug))?;
        }
    }
    Ok(())
}
