//! Images the host makes for Code Engine, which runs only HTTP servers and
//! cannot see the host's engine: a package entry is built by the host
//! (`source.build-package`), a stdio server gets the host's stdio bridge as
//! its entrypoint (`source.bridge-stdio`), and the result is pushed to
//! `build.output_registry` (`source.push`), whose digest the app runs. A
//! bridged app serves MCP at `/mcp` on the port Code Engine hands it.

use crate::exports::mcp_runtime::plugin::backend::{BackendError, BuildFacts, Prepared};
use crate::mcp_runtime::plugin::source::{self, SourceError};
use crate::{invalid, limits, warn};
use guest_kit::types::{DeployRequest, Source, Transport, Warning};

/// Where `source.bridge-stdio` places the bridge, for an entry whose own
/// `command` replaces the image's: the bridge still goes first.
pub const BRIDGE_PATH: &str = "/.mcp-runtime/mcp-stdio-bridge";
/// The port the bridge listens on (Code Engine sets `$PORT` to it).
pub const BRIDGE_PORT: u16 = 8080;
pub const BRIDGE_MCP_PATH: &str = "/mcp";

/// A package entry reaches the backend as an image named by its purl.
pub fn is_package(image: &str) -> bool {
    image.starts_with("pkg:")
}

/// Whether the host makes this deployment's image (a package, or a stdio server to bridge).
pub fn made_by_host(request: &DeployRequest) -> bool {
    let package = matches!(&request.entry.source, Source::Image(s) if is_package(&s.image));
    package || is_bridged(request)
}

pub fn is_bridged(request: &DeployRequest) -> bool {
    request.entry.transport == Transport::Stdio
}

/// What `validate` says of a deployment whose image the host makes: it needs
/// somewhere to push to, and a Git build (which runs on Code Engine) cannot be bridged.
pub fn check(
    request: &DeployRequest,
    output_registry: Option<&str>,
    output_secret: Option<&str>,
) -> Result<Vec<Warning>, BackendError> {
    check_entry(&request.entry.source, request.entry.transport, output_registry, output_secret)
}

fn check_entry(
    source: &Source,
    transport: Transport,
    output_registry: Option<&str>,
    output_secret: Option<&str>,
) -> Result<Vec<Warning>, BackendError> {
    let bridged = transport == Transport::Stdio;
    if bridged && matches!(source, Source::Github(_)) {
        return Err(invalid(
            "transport",
            "a stdio server from a Git repository cannot run on Code Engine: it builds there, where the host cannot add its stdio bridge",
        ));
    }
    let field = if bridged { "transport" } else { "source.type" };
    let (Some(registry), Some(_)) = (output_registry, output_secret) else {
        return Err(invalid(
            field,
            "the host builds this image and pushes it for Code Engine to pull: set build.output_registry and build.output_secret in the ibm_code_engine backend",
        ));
    };
    let mut warnings = Vec::new();
    if bridged {
        let how = format!(
            "Code Engine serves HTTP only: the stdio server is served at {BRIDGE_MCP_PATH} by the host's mcp-stdio-bridge inside the image, pushed to {registry}"
        );
        warnings.push(warn("transport", &how));
    }
    Ok(warnings)
}

/// Builds (a package), bridges (a stdio server) and pushes; the pushed image by digest.
pub fn prepare(request: &DeployRequest, output_registry: &str) -> Result<Prepared, BackendError> {
    let id = &request.deployment_id;
    let (mut image, build) = match &request.entry.source {
        Source::Image(s) if is_package(&s.image) => {
            let built = source::build_package(id, &[]).map_err(source_error)?;
            (built.image, Some(BuildFacts { commit: built.lock, cache_hit: built.cache_hit }))
        }
        Source::Image(s) => (s.image.clone(), None),
        _ => return Err(invalid("source.type", "only images and packages are made by the host for Code Engine")),
    };
    if is_bridged(request) {
        image = source::bridge_stdio(id, &image, &[]).map_err(source_error)?;
    }
    let app = limits::app_name(id);
    let destination = format!("{}/{app}:{}", output_registry.trim_end_matches('/'), image_tag(&image));
    let pushed = source::push(id, &image, &destination).map_err(source_error)?;
    Ok(Prepared { image: pushed, warnings: Vec::new(), build })
}

/// The pushed tag: an image id's first 12 digits, or a named image's tag.
fn image_tag(image: &str) -> String {
    if let Some(id) = image.strip_prefix("sha256:") {
        return id.chars().take(12).collect();
    }
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|t| !t.contains('/')).unwrap_or("latest");
    tag.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(128).collect()
}

/// The command a bridged app runs: the bridge first, then the entry's own command.
pub fn bridged_command(command: &[String]) -> Vec<String> {
    let mut run = vec![BRIDGE_PATH.to_string(), "--".into()];
    run.extend(command.iter().cloned());
    run
}

fn source_error(e: SourceError) -> BackendError {
    match e {
        SourceError::Invalid(denial) => BackendError::Invalid(denial),
        SourceError::Denied(why) => BackendError::Invalid(guest_kit::denial("build.output_registry", &why)),
        SourceError::BuildFailed(why) => BackendError::Failed(format!("the build failed: {why}")),
        SourceError::Stopped(why) => BackendError::Failed(why),
        SourceError::Unavailable(why) => BackendError::Unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_kit::types::{GithubSource, ImageSource};

    fn refused_field(outcome: Result<Vec<Warning>, BackendError>) -> String {
        match outcome {
            Err(BackendError::Invalid(denial)) => denial.field,
            other => panic!("not refused: {:?}", other.map(|w| w.len())),
        }
    }

    #[test]
    fn a_stdio_server_needs_a_registry_and_cannot_come_from_git() {
        let image = Source::Image(ImageSource { image: "ghcr.io/org/server:1".into(), registry_secret: None });
        let package = Source::Image(ImageSource { image: "pkg:npm/server@1.0.0".into(), registry_secret: None });
        let (registry, secret) = (Some("icr.io/ns"), Some("push"));
        let warned = check_entry(&image, Transport::Stdio, registry, secret).unwrap();
        assert_eq!(warned[0].field, "transport");
        assert!(warned[0].message.contains("mcp-stdio-bridge") && warned[0].message.contains("icr.io/ns"));
        assert!(check_entry(&package, Transport::StreamableHttp, registry, secret).unwrap().is_empty());
        assert_eq!(refused_field(check_entry(&image, Transport::Stdio, None, secret)), "transport");
        assert_eq!(refused_field(check_entry(&package, Transport::StreamableHttp, registry, None)), "source.type");
        let git = Source::Github(GithubSource {
            repo: "org/server".into(),
            revision: None,
            dockerfile: "Dockerfile".into(),
            context_dir: None,
            build_args: Vec::new(),
            target: None,
            credential: None,
            push_to_registry: false,
            registry: None,
        });
        assert_eq!(refused_field(check_entry(&git, Transport::Stdio, registry, secret)), "transport");
    }

    #[test]
    fn pushed_tags_and_commands_keep_the_bridge_first() {
        assert_eq!(image_tag("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(image_tag("mcp-runtime.local/npm/x:1.2.3-abc-def"), "1.2.3-abc-def");
        assert_eq!(image_tag("127.0.0.1:5000/x"), "latest");
        assert_eq!(bridged_command(&["node".into(), "server.js".into()]), [BRIDGE_PATH, "--", "node", "server.js"]);
    }
}
