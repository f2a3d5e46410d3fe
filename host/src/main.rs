//! `mcp-runtime`: loads the config, the store and the plugins, reconciles with
//! the backends, then serves the HTTP API.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mcp_runtime::capabilities::ContainerEngine;
use mcp_runtime::catalog::{self, CatalogEntry};
use mcp_runtime::config::RuntimeConfig;
use mcp_runtime::guardrails;
use mcp_runtime::plugins::PluginHost;
use mcp_runtime::runtime::{Runtime, HEALTH_INTERVAL};
use mcp_runtime::store::{NewEvent, Store, Table};

const SAMPLE_CATALOG: &str = include_str!("../defaults/catalog.yaml");

#[derive(Parser)]
#[command(
    name = "mcp-runtime",
    version,
    about = "Secure runtime for MCP servers"
)]
struct Cli {
    /// Config file (the seed's `runtime:` YAML); embedded defaults when absent.
    #[arg(long, env = "RUNTIME_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the service (the default).
    Serve,
    /// Validate the config and exit.
    CheckConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = RuntimeConfig::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("config is valid");
            Ok(())
        }
        Command::Serve => serve(config).await,
    }
}

async fn serve(config: RuntimeConfig) -> anyhow::Result<()> {
    if !config.enabled {
        tracing::warn!(
            "the runtime is disabled (runtime.enabled / MCPGATEWAY_RUNTIME_ENABLED); exiting"
        );
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Arc::new(Store::open(&config.data_dir.join("runtime.redb"))?);
    seed(&store, &config)?;

    let socket = config
        .backends
        .get("docker")
        .and_then(|b| b.socket.clone())
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let owner = std::env::var("RUNTIME_OWNER").unwrap_or_else(|_| "mcp-runtime".into());
    let (engine, engine_error) = match ContainerEngine::connect(&socket, &owner).await {
        Ok(engine) => (Some(Arc::new(engine)), None),
        Err(e) => {
            tracing::warn!("{e}; the docker backend is unavailable until an engine answers there");
            (None, Some(e.to_string()))
        }
    };

    let host = PluginHost::new(
        config.data_dir.join("plugin-cache"),
        store.clone(),
        engine.clone(),
    )?;
    let mut plugins = BTreeMap::new();
    for manifest in &config.plugins {
        let plugin = host
            .load(manifest, &config.plugin_dir)
            .with_context(|| "build the plugins with `make guests`".to_string())?;
        plugins.insert(manifest.id.clone(), Arc::new(plugin));
    }
    let runtime = Arc::new(Runtime::new(
        store,
        config.clone(),
        plugins,
        engine,
        engine_error,
    )?);
    if let Err(e) = runtime.reconcile().await {
        tracing::warn!("reconciliation incomplete: {e}");
    }
    let watcher = runtime.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEALTH_INTERVAL).await;
            watcher.watch_once().await;
        }
    });

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!("mcp-runtime listening on http://{}", listener.local_addr()?);
    axum::serve(listener, mcp_runtime::api::router(runtime))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// First start only: the guardrail presets (plus configured profiles) and the catalog.
fn seed(store: &Store, config: &RuntimeConfig) -> anyhow::Result<()> {
    if store.first_time("guardrails_seeded")? {
        let mut profiles = guardrails::presets();
        for (name, profile) in &config.guardrails.profiles {
            profiles.insert(
                name.clone(),
                guardrails::Profile {
                    name: name.clone(),
                    ..profile.clone()
                },
            );
        }
        for (name, profile) in profiles {
            store.put(
                Table::Guardrails,
                &name,
                &profile,
                NewEvent::new(
                    "guardrails.seeded",
                    format!("guardrails/{name}"),
                    serde_json::json!({}),
                ),
            )?;
        }
    }
    if store.first_time("catalog_seeded")? {
        let text = match &config.catalog.seed_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading catalog {}", path.display()))?,
            None => SAMPLE_CATALOG.to_string(),
        };
        let entries: Vec<CatalogEntry> =
            catalog::parse_catalog(&text).context("runtime.catalog.seed_file")?;
        for (i, entry) in entries.iter().enumerate() {
            entry
                .validate(|p| {
                    store
                        .get::<guardrails::Profile>(Table::Guardrails, p)
                        .ok()
                        .flatten()
                        .is_some()
                })
                .with_context(|| format!("catalog entry {i} ('{}')", entry.slug))?;
            store.put(
                Table::Catalog,
                &entry.slug,
                entry,
                NewEvent::new(
                    "catalog.seeded",
                    format!("catalog/{}", entry.slug),
                    serde_json::json!({}),
                ),
            )?;
        }
    }
    Ok(())
}
