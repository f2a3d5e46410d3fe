//! How a stdio server is served. By default the host's static
//! `mcp-stdio-bridge` becomes the image's entrypoint (`source.bridge-stdio`,
//! owned by root and writable by no one) and the host speaks streamable HTTP
//! to the container, as to any HTTP server: the engine is out of the data
//! path, which otherwise copies every message through its attach stream, and
//! the guardrails apply unchanged. The attach stream (the host linked to the
//! container's stdin and stdout) stays where the bridge inside cannot serve:
//! a per-session deployment (the host links to each session's own server),
//! a compose stack, a host without the bridge binary, and a backend
//! whose `stdio` setting is `attach`. The deployment's warnings say which.

use crate::mcp_runtime::plugin::{guardrail_options, source};
use guest_kit::types::{DeployRequest, Source, Transport, Warning};
use guest_kit::warning;
use serde::Deserialize;

/// Where `source.bridge-stdio` places the bridge: an entry's own `command`
/// replaces the image's entrypoint, so the bridge is put before it again.
const BRIDGE_PATH: &str = "/.mcp-runtime/mcp-stdio-bridge";
/// The port the bridge listens on unless the server's `PORT` says otherwise.
const BRIDGE_PORT: u16 = 8080;
const BRIDGE_MCP_PATH: &str = "/mcp";

/// The backend's `stdio` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StdioSetting {
    /// The host's bridge inside the container, where it can serve.
    #[default]
    InContainer,
    /// Always the engine's attach stream.
    Attach,
}

/// How the server of a deployment is reached.
pub enum Served {
    /// Not a stdio server: as its entry says.
    AsEntered { image: String },
    /// The bridge inside the container serves it over HTTP.
    Bridged { image: String, port: u16 },
    /// The host attaches to the container's stdin and stdout.
    Attached { image: String },
}

impl Served {
    /// As the entry says, stdio over the attach stream (a compose stack's services).
    pub fn attached_if_stdio(request: &DeployRequest, image: String) -> Served {
        match request.entry.transport {
            Transport::Stdio => Served::Attached { image },
            _ => Served::AsEntered { image },
        }
    }

    pub fn image(&self) -> &str {
        match self {
            Served::AsEntered { image } | Served::Bridged { image, .. } | Served::Attached { image } => image,
        }
    }
}

/// How `request`'s server runs from `image`, and a warning that says so for a stdio server.
pub fn serve(request: &DeployRequest, image: String, setting: StdioSetting) -> (Served, Option<Warning>) {
    if request.entry.transport != Transport::Stdio {
        return (Served::AsEntered { image }, None);
    }
    let attached = |why: &str| {
        let message = format!("served over the engine's attach stream ({why})");
        (Served::Attached { image: image.clone() }, Some(warning("transport", &message)))
    };
    if setting == StdioSetting::Attach {
        return attached("the backend's `stdio` setting is `attach`");
    }
    if guardrail_options::per_session() {
        return attached("per-session: the host links to each session's own server");
    }
    if matches!(request.entry.source, Source::Compose(_)) {
        return attached("a compose stack's service");
    }
    match source::bridge_stdio(&request.deployment_id, &image, &[]) {
        Ok(bridged) => {
            let port = port_of(&request.env);
            let message = format!(
                "served over HTTP by the host's mcp-stdio-bridge inside the container (port {port}, {BRIDGE_MCP_PATH})"
            );
            (Served::Bridged { image: bridged, port }, Some(warning("transport", &message)))
        }
        Err(e) => attached(&format!("the bridge could not be placed in the image: {}", why(e))),
    }
}

fn why(e: source::SourceError) -> String {
    use source::SourceError::*;
    match e {
        Invalid(denial) => format!("{}: {}", denial.field, denial.reason),
        Denied(why) | BuildFailed(why) | Stopped(why) | Unavailable(why) => why,
    }
}

/// The bridge reads `$PORT`, as Code Engine sets it.
fn port_of(env: &[(String, String)]) -> u16 {
    env.iter().find(|(name, _)| name == "PORT").and_then(|(_, port)| port.parse().ok()).unwrap_or(BRIDGE_PORT)
}

/// The bridged container's command: an entry's own command comes after the bridge.
pub fn command(served: &Served, entry_command: Option<Vec<String>>) -> Option<Vec<String>> {
    match (served, entry_command) {
        (Served::Bridged { .. }, Some(command)) => {
            Some([BRIDGE_PATH.to_string(), "--".into()].into_iter().chain(command).collect())
        }
        (_, command) => command,
    }
}

/// Where the bridged server answers: the bridge's port and path.
pub fn endpoint_of(served: &Served) -> Option<(u16, String)> {
    match served {
        Served::Bridged { port, .. } => Some((*port, BRIDGE_MCP_PATH.into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_listens_where_port_says() {
        assert_eq!(port_of(&[]), 8080);
        assert_eq!(port_of(&[("PORT".into(), "3000".into())]), 3000);
        assert_eq!(port_of(&[("PORT".into(), "not a port".into())]), 8080);
    }

    #[test]
    fn an_entrys_own_command_runs_under_the_bridge() {
        let bridged = Served::Bridged { image: "i".into(), port: 8080 };
        let command = command(&bridged, Some(vec!["node".into(), "server.js".into()])).unwrap();
        assert_eq!(command, [BRIDGE_PATH, "--", "node", "server.js"]);
        let attached = Served::Attached { image: "i".into() };
        assert_eq!(super::command(&attached, Some(vec!["node".into()])), Some(vec!["node".to_string()]));
        assert_eq!(super::command(&bridged, None), None, "the bridged image's own entrypoint is the bridge");
    }
}
