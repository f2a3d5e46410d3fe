//! `mcp-runtime`: loads the config, then serves the HTTP API (see `app`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use mcp_runtime::auth::{Authenticator, Role};
use mcp_runtime::config::RuntimeConfig;

/// Each proxied or bridged call allocates a few dozen small buffers and JSON
/// nodes: glibc's malloc spent 12-15% of the host's CPU on them, and with
/// mimalloc a call took ~5% less of it (BENCH_BASELINE_BINARY, both orders).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` (its position in `mi_option_e`
/// of mimalloc 3's header; a test below pins it by its documented default).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Memory the host frees after starting (loading plugins, seeding the
/// store) goes back to the system: with mimalloc's arena committed eagerly
/// it stayed resident, 15 MB of the idle host's 57 (`make bench`). The
/// option must be set before the first allocation reserves that arena, so
/// this runs as a constructor, before `main` and the Rust runtime.
#[used]
#[link_section = ".init_array"]
static RETURN_FREED_MEMORY: extern "C" fn() = return_freed_memory;

extern "C" fn return_freed_memory() {
    // SAFETY: sets a process-wide option before any thread or allocation exists.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

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
    /// Print the API's OpenAPI document (as `/openapi.json` serves it).
    Openapi,
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
    /// Work on plugins outside a running host.
    Plugin {
        #[command(subcommand)]
        action: PluginCommand,
    },
    /// Write a backup of the whole state to a file: fetched from the running
    /// host (`GET /backup`), or read from the data directory when none runs.
    Backup {
        #[arg(long)]
        to: PathBuf,
        /// The running host's URL; `http://<listen>` by default.
        #[arg(long)]
        url: Option<String>,
        /// An admin's bearer token; by default one is minted with the configured secret.
        #[arg(long, env = "RUNTIME_BACKUP_TOKEN")]
        token: Option<String>,
    },
    /// Replace the state of a stopped host with a backup, once it is checked.
    Restore { from: PathBuf },
    /// Work on the store (`data_dir/runtime.redb`) while no host has it open.
    Store {
        #[command(subcommand)]
        action: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Report what redb's integrity check finds; exits non-zero when the store is damaged.
    Check {
        /// Let redb repair what it can (back the file up first).
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Run a rule on each case of a cases file, in the host's sandbox and limits;
    /// exits non-zero when a case fails.
    Test {
        /// The rule's component, or a tool component's (cases of `kind: mcp-server`).
        wasm: PathBuf,
        /// The cases (YAML; see `host/src/plugins/cases.rs`, `host/src/wasm_tools/cases.rs`).
        #[arg(long)]
        cases: PathBuf,
        /// Instead of the cases file's memory limit, in MB.
        #[arg(long)]
        memory_mb: Option<u32>,
        /// Instead of the cases file's CPU budget per call (a tool component's deadline), in ms.
        #[arg(long)]
        cpu_ms: Option<u64>,
    },
    /// Start a rule project: the contract, a minimal rule, its cases and a README
    /// saying how to build, test and ship it.
    New {
        /// The project's directory and package name (lowercase, digits, '-').
        name: String,
        #[arg(long, value_enum)]
        kind: mcp_runtime::plugins::ProjectKind,
        #[arg(long, value_enum)]
        lang: mcp_runtime::plugins::Lang,
        /// Where to create the project's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// Runs the cases with the command line's limits in place of the file's.
struct TestRun<'a> {
    wasm: &'a std::path::Path,
    cases: &'a std::path::Path,
    memory_mb: Option<u32>,
    cpu_ms: Option<u64>,
    cache_dir: PathBuf,
}

/// Prints each case's outcome and timing; whether all passed.
async fn test_rule(run: TestRun<'_>) -> anyhow::Result<bool> {
    let cases = run.cases;
    let text = std::fs::read_to_string(cases).map_err(|e| anyhow::anyhow!("{}: {e}", cases.display()))?;
    let kind: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cases.display()))?;
    if kind["kind"].as_str() == Some(mcp_runtime::wasm_tools::cases::KIND) {
        return test_tools(run, &text).await;
    }
    let mut file: mcp_runtime::plugins::CaseFile =
        serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cases.display()))?;
    file.limits.memory_mb = run.memory_mb.unwrap_or(file.limits.memory_mb);
    file.limits.cpu_ms = run.cpu_ms.unwrap_or(file.limits.cpu_ms);
    let results = mcp_runtime::plugins::run_cases(run.wasm, &file, run.cache_dir).await?;
    Ok(report(
        results.iter().map(|r| {
            (r.name.as_str(), r.failure.as_deref(), format!("p50 {:.3} ms, p99 {:.3} ms", ms(r.p50), ms(r.p99)))
        }),
    ))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints each case's verdict, timing and why it failed, then the tally;
/// whether all passed.
fn report<'a>(cases: impl Iterator<Item = (&'a str, Option<&'a str>, String)>) -> bool {
    let (mut passed, mut failed) = (0, 0);
    for (name, failure, timing) in cases {
        let verdict = if failure.is_none() { "PASS" } else { "FAIL" };
        println!("{verdict}  {name}  ({timing})");
        match failure {
            Some(why) => {
                println!("      {why}");
                failed += 1;
            }
            None => passed += 1,
        }
    }
    println!("{passed} passed, {failed} failed");
    failed == 0
}

/// `plugin test` of a tool component: its tools called on each case.
async fn test_tools(run: TestRun<'_>, text: &str) -> anyhow::Result<bool> {
    use mcp_runtime::wasm_tools::cases;
    let mut file: cases::ToolCaseFile =
        serde_yaml_ng::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", run.cases.display()))?;
    file.limits.memory_mb = run.memory_mb.unwrap_or(file.limits.memory_mb);
    file.limits.deadline_ms = run.cpu_ms.unwrap_or(file.limits.deadline_ms);
    let bytes = std::fs::read(run.wasm).map_err(|e| anyhow::anyhow!("{}: {e}", run.wasm.display()))?;
    let results = cases::run(&bytes, &file).await?;
    Ok(report(results.iter().map(|r| (r.name.as_str(), r.failure.as_deref(), format!("{:.3} ms", ms(r.took))))))
}

/// Where `plugin test` keeps compiled rules between runs, unless configured:
/// a rule author's own cache, not a `data/` in their project.
fn user_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    base.unwrap_or_else(std::env::temp_dir).join("mcp-runtime/plugin-cache")
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into());
    // Logs go to stderr: `plugin test` prints its verdicts on stdout.
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let config = RuntimeConfig::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.api.worker_threads())
        .enable_all()
        .build()?
        .block_on(run(cli, config))
}

async fn run(cli: Cli, config: RuntimeConfig) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => println!("config is valid"),
        Command::Openapi => print!("{}", mcp_runtime::api::openapi_json()),
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
        Command::Plugin { action: PluginCommand::Test { wasm, cases, memory_mb, cpu_ms } } => {
            let cache_dir = config.plugin_cache_dir.clone().unwrap_or_else(user_cache_dir);
            let run = TestRun { wasm: &wasm, cases: &cases, memory_mb, cpu_ms, cache_dir };
            if !test_rule(run).await? {
                std::process::exit(1);
            }
        }
        Command::Plugin { action: PluginCommand::New { name, kind, lang, dir } } => {
            for path in mcp_runtime::plugins::scaffold(&dir, &name, kind, lang)? {
                println!("{}", path.display());
            }
        }
        Command::Store { action: StoreCommand::Check { repair } } => {
            use mcp_runtime::store::integrity::{check, Verdict};
            let path = config.data_dir.join(mcp_runtime::store::FILE_NAME);
            match check(&path, repair).map_err(|why| anyhow::anyhow!(why))? {
                Verdict::Sound => println!("{}: sound", path.display()),
                Verdict::Repaired => println!("{}: repaired", path.display()),
                Verdict::Damaged(why) => {
                    println!("{}: damaged: {why}", path.display());
                    std::process::exit(1);
                }
            }
        }
        Command::Backup { to, url, token } => {
            let remote = mcp_runtime::backup::cli::Remote { url, token };
            let files = mcp_runtime::backup::cli::backup_to(&config, &to, remote).await?;
            println!("{}: {files} files, checked", to.display());
        }
        Command::Restore { from } => {
            let restored = mcp_runtime::backup::cli::restore_from(&config, &from)?;
            println!("restored {} files into {}", restored.files, config.data_dir.display());
            if let Some(previous) = restored.previous_store {
                println!("the store it replaced is kept as {}", previous.display());
            }
        }
        Command::Serve if !config.enabled => {
            tracing::warn!("the runtime is disabled (runtime.enabled / MCPGATEWAY_RUNTIME_ENABLED); exiting");
        }
        Command::Serve => {
            let host = mcp_runtime::app::start(config).await?;
            match mcp_runtime::working_set::release_start_up_code() {
                Ok(bytes) => tracing::debug!(bytes, "start-up code released"),
                Err(e) => tracing::warn!("start-up code stays resident: {e}"),
            }
            tracing::info!("mcp-runtime listening on http://{}", host.addr);
            tracing::info!("API calls need a bearer token: `mcp-runtime mint-token --user you --roles admin`");
            tokio::signal::ctrl_c().await?;
            host.shutdown().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_allocator_option_is_the_one_its_header_documents() {
        // The constructor ran in this binary too; mimalloc documents the next
        // option's (purge_decommits) default as 1: a renumbering fails here.
        let value = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(value(super::ARENA_EAGER_COMMIT), 0, "set before main");
        assert_eq!(value(super::ARENA_EAGER_COMMIT + 1), 1, "purge_decommits, the next option, keeps its default");
    }
}
