//! `mcp-stdio-bridge [--] COMMAND [ARG...]`: starts a stdio MCP server and
//! serves it as streamable HTTP at `/mcp` on `$PORT` (8080 by default), with
//! the bridge the host itself uses. Built static and made an image's
//! entrypoint by the host, so a platform that runs only HTTP servers can run
//! a stdio one. Exits when the server does, with its exit code.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use mcp_bridge::link::Target;
use mcp_bridge::process::{ChildProcess, SERVER};
use mcp_bridge::{Bridge, Servers, TokioTasks};
use std::sync::Arc;
use std::time::Duration;

/// How long a client's session is kept when it is not used.
const IDLE_SESSION: Duration = Duration::from_secs(30 * 60);
const DEFAULT_PORT: u16 = 8080;

struct Served {
    bridge: Bridge,
    target: Target,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BRIDGE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() || args[0] == "--help" {
        eprintln!("usage: mcp-stdio-bridge [--] COMMAND [ARG...]   (serves it at http://0.0.0.0:$PORT/mcp)");
        std::process::exit(2);
    }
    let port = match std::env::var("PORT") {
        Ok(port) => port.parse::<u16>().unwrap_or_else(|_| fail(&format!("PORT={port} is not a port number"))),
        Err(_) => DEFAULT_PORT,
    };
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on port {port}: {e}")));
    let (process, mut child) =
        ChildProcess::spawn(&args).unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", args[0])));
    let served =
        Arc::new(Served { bridge: Bridge::new(Arc::new(process), IDLE_SESSION), target: Target::Stdio(SERVER.into()) });
    let expiring = served.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            expiring.bridge.expire_idle_sessions();
        }
    });
    // Streamed answers go out in small writes: never let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = axum::Router::new().route("/mcp", axum::routing::any(serve)).with_state(served);
    tracing::info!(port, command = %args.join(" "), "serving the stdio server at /mcp");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            fail(&format!("serving stopped: {e}"));
        }
    });
    let code = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => {
                tracing::info!(%status, "the server ended");
                status.code().unwrap_or(1)
            }
            Err(e) => fail(&format!("waiting for the server: {e}")),
        },
        signal = stopped() => {
            // The platform stops the container: the server goes first.
            let _ = child.kill().await;
            128 + signal
        }
    };
    std::process::exit(code);
}

async fn serve(State(served): State<Arc<Served>>, request: Request) -> Response<Body> {
    served.bridge.serve(&TokioTasks, SERVER, Servers::Shared(&served.target), request).await
}

/// The signal that stopped the bridge (SIGTERM or SIGINT): as PID 1 in a
/// container, nothing else would end it.
async fn stopped() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => 15,
        _ = int.recv() => 2,
    }
}

fn fail(why: &str) -> ! {
    eprintln!("mcp-stdio-bridge: {why}");
    std::process::exit(1);
}
