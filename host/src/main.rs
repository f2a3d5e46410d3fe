//! `mcp-runtime`: loads the config, then serves the HTTP API (see `app`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use mcp_runtime::auth::{Authenticator, Role};
use mcp_runtime::config::RuntimeConfig;

#[derive(Parser)]
#[command(name = "mcp-runtime", version, about = "Secure runtime for MCP servers")]
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
    /// Print a bearer token for local use, signed with the configured secret.
    MintToken {
        /// The token's subject (`sub`).
        #[arg(long)]
        user: String,
        /// Comma-separated: viewer, developer, operator, admin, approver.
        #[arg(long, value_delimiter = ',', default_value = "viewer")]
        roles: Vec<String>,
        /// Comma-separated groups (approvers may be named by group, e.g. `security-team`).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        expires_in_minutes: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let cli = Cli::parse();
    let config = RuntimeConfig::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => println!("config is valid"),
        Command::MintToken { user, roles, groups, expires_in_minutes } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r.trim()).ok_or_else(|| anyhow::anyhow!("--roles: unknown role '{r}'")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let auth = Authenticator::new(&config.auth, &config.data_dir)?;
            let groups: Vec<&str> = groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).collect();
            let ttl = std::time::Duration::from_secs(expires_in_minutes * 60);
            println!("{}", auth.mint_with_groups(&user, &roles, &groups, ttl));
        }
        Command::Serve if !config.enabled => {
            tracing::warn!("the runtime is disabled (runtime.enabled / MCPGATEWAY_RUNTIME_ENABLED); exiting");
        }
        Command::Serve => {
            let host = mcp_runtime::app::start(config).await?;
            tracing::info!("mcp-runtime listening on http://{}", host.addr);
            tracing::info!("API calls need a bearer token: `mcp-runtime mint-token --user you --roles admin`");
            tokio::signal::ctrl_c().await?;
            host.shutdown().await;
        }
    }
    Ok(())
}
