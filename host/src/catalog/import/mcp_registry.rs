//! The official MCP registry's `server.json` (one document, or a `/v0/servers`
//! page `{servers: [{server, _meta}], metadata: {nextCursor}}`). Of a server's
//! packages, the first kind in the preference (`oci`, `npm`, `pypi` unless
//! `runtime.catalog.package_preference` says otherwise) becomes the entry: an
//! image a Docker source, an npm or PyPI package a package source (built by
//! the host). A server with only `remotes` becomes a remote entry (registered
//! with the gateway, never deployed); other package kinds (`nuget`, `mcpb`)
//! are skipped naming their `registryType`.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{blank_entry, Candidate, PackageKind, Skip};
use crate::catalog::{is_env_name, CatalogEntry, DeclaredEnv, Transport};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Server {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    website_url: Option<String>,
    #[serde(default)]
    packages: Vec<Package>,
    #[serde(default)]
    remotes: Vec<Remote>,
}

#[derive(Deserialize)]
struct Remote {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    /// Headers the client sends, e.g. an API key.
    #[serde(default)]
    headers: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    registry_type: String,
    identifier: String,
    #[serde(default)]
    version: Option<String>,
    /// How the publisher runs it: `npx`, `uvx`, `docker`…
    #[serde(default)]
    runtime_hint: Option<String>,
    #[serde(default)]
    transport: Option<PackageTransport>,
    #[serde(default)]
    environment_variables: Vec<EnvironmentVariable>,
    #[serde(default)]
    package_arguments: Vec<Argument>,
    #[serde(default)]
    runtime_arguments: Vec<Argument>,
}

#[derive(Deserialize)]
struct PackageTransport {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentVariable {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    is_required: bool,
    #[serde(default)]
    is_secret: bool,
    #[serde(default)]
    default: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Argument {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    default: Option<String>,
}

/// The servers of a document: a page of the registry's API, or one server.
pub fn servers(document: &Value) -> Vec<Value> {
    match document.get("servers").and_then(Value::as_sequence) {
        Some(page) => page.iter().map(|item| item.get("server").unwrap_or(item).clone()).collect(),
        None => vec![document.clone()],
    }
}

/// Where the next page is, when the document is a page that has one.
pub fn next_cursor(document: &Value) -> Option<String> {
    let cursor =
        document.get("metadata")?.get("nextCursor").or_else(|| document.get("metadata")?.get("next_cursor"))?;
    cursor.as_str().filter(|c| !c.is_empty()).map(String::from)
}

pub fn read(server: &Value, preference: &[PackageKind]) -> Candidate {
    let upstream_id = server.get("name").and_then(Value::as_str).unwrap_or("(unnamed)").to_string();
    let version = server.get("version").and_then(Value::as_str).map(String::from);
    let entry = serde_yaml_ng::from_value::<Server>(server.clone())
        .map_err(|e| Skip::new("server", format!("not a server.json document: {e}")))
        .and_then(|server| entry(server, preference));
    Candidate { upstream_id, version, entry }
}

fn image_of(package: &Package) -> String {
    let named = package.identifier.rsplit('/').next().unwrap_or_default();
    match (&package.version, named.contains(':') || package.identifier.contains('@')) {
        (Some(version), false) => format!("{}:{version}", package.identifier),
        _ => package.identifier.clone(),
    }
}

/// The package to run: the first of the preferred kinds the server lists.
fn preferred<'a>(server: &'a Server, preference: &[PackageKind]) -> Option<(usize, &'a Package, PackageKind)> {
    preference.iter().find_map(|kind| {
        let (i, package) = server.packages.iter().enumerate().find(|(_, p)| p.registry_type == kind.registry_type())?;
        Some((i, package, *kind))
    })
}

fn entry(server: Server, preference: &[PackageKind]) -> Result<CatalogEntry, Skip> {
    let Some((index, package, kind)) = preferred(&server, preference) else {
        if let Some((i, other)) = server.packages.iter().enumerate().next() {
            let runs: Vec<&str> = preference.iter().map(|k| k.registry_type()).collect();
            let reason =
                format!("{} packages are not run here (this runtime runs {})", other.registry_type, runs.join(", "));
            return Err(Skip::new(&format!("packages[{i}].registryType"), reason));
        }
        if !server.remotes.is_empty() {
            return remote_entry(server);
        }
        return Err(Skip::new("packages", "no package to run"));
    };
    let at = |field: &str| format!("packages[{index}].{field}");
    let (source, flags) = match kind {
        PackageKind::Oci => {
            let flags = runtime_flags(&package.runtime_arguments)
                .map_err(|(i, reason)| Skip::new(&at(&format!("runtimeArguments[{i}]")), reason))?;
            (crate::catalog::ServerSource::Docker { image: image_of(package), registry_secret: None }, flags)
        }
        // The runner's own flags (`npx -y`, `uvx --from`) mean nothing here: the host builds and runs it.
        PackageKind::Npm | PackageKind::Pypi => (package_source(package, kind, &at)?, RuntimeFlags::default()),
    };
    let (transport, port, mcp_path) = match package.transport.as_ref().map(|t| (t.kind.as_str(), t.url.as_deref())) {
        None | Some(("stdio", _)) => (Transport::Stdio, 8080, "/mcp".to_string()),
        Some((kind @ ("streamable-http" | "sse"), url)) => {
            let (port, path) = url.map(port_and_path).unwrap_or((8080, "/mcp".into()));
            let transport = if kind == "sse" { Transport::Sse } else { Transport::StreamableHttp };
            (transport, port, path)
        }
        Some((other, _)) => return Err(Skip::new(&at("transport.type"), format!("unknown transport '{other}'"))),
    };
    let mut args = Vec::new();
    for argument in &package.package_arguments {
        let value = argument.value.clone().or_else(|| argument.default.clone());
        match (argument.kind.as_str(), &argument.name, value) {
            ("named", Some(name), Some(value)) => args.extend([name.clone(), value]),
            ("named", Some(name), None) => args.push(name.clone()),
            (_, _, Some(value)) => args.push(value),
            _ => return Err(Skip::new(&at("packageArguments"), "an argument without a value or a default")),
        }
    }
    let declared = package.environment_variables.iter().map(|v| DeclaredEnv {
        name: v.name.clone(),
        description: v.description.clone(),
        required: v.is_required,
        secret: v.is_secret,
        default: v.default.clone().filter(|_| !v.is_secret),
    });
    let env_vars = declared.chain(flags.declared).collect();
    let mut entry = listed(&server)?;
    entry.source = source;
    entry.transport = transport;
    entry.port = port;
    entry.mcp_path = mcp_path;
    entry.args = (!args.is_empty()).then_some(args);
    entry.env_vars = env_vars;
    entry.environment = flags.environment;
    Ok(entry)
}

/// An npm or PyPI package as a package source: the version the publisher
/// pinned (resolved against the index when the entry is written).
fn package_source(
    package: &Package,
    kind: PackageKind,
    at: &dyn Fn(&str) -> String,
) -> Result<crate::catalog::ServerSource, Skip> {
    let (ecosystem, runners) = match kind {
        PackageKind::Npm => (crate::packages::Ecosystem::Npm, ["npx", "node", "npm"]),
        _ => (crate::packages::Ecosystem::Pypi, ["uvx", "python", "pipx"]),
    };
    if let Some(hint) = package.runtime_hint.as_deref().filter(|h| !runners.contains(h)) {
        let reason = format!("'{hint}' is not how {} packages run ({})", kind.registry_type(), runners.join(", "));
        return Err(Skip::new(&at("runtimeHint"), reason));
    }
    let version = package.version.clone().unwrap_or_else(|| "latest".into());
    Ok(crate::catalog::ServerSource::Package {
        ecosystem,
        name: package.identifier.clone(),
        version,
        requested_version: None,
        bin: None,
        extras: Vec::new(),
        allow_install_scripts: false,
    })
}

/// What the publisher's `docker run` flags come to here.
#[derive(Default)]
struct RuntimeFlags {
    /// `-e NAME=value`.
    environment: BTreeMap<String, String>,
    /// `-e NAME={variable}`: the deployer gives it.
    declared: Vec<DeclaredEnv>,
}

/// The publisher's engine flags, read for what they mean rather than
/// forwarded: those the runtime does itself (`-i`, `--rm`, `--init`) or the
/// guardrails already enforce (`--read-only`, `--cap-drop ALL`,
/// `--security-opt no-new-privileges`) are dropped, `-e` becomes the
/// environment, and any other — `--network host` in the spec's own example,
/// `--privileged`, mounts — is refused with its index: guardrails decide those.
fn runtime_flags(arguments: &[Argument]) -> Result<RuntimeFlags, (usize, String)> {
    let mut flags = RuntimeFlags::default();
    for (i, argument) in arguments.iter().enumerate() {
        let given = argument.value.as_deref().or(argument.default.as_deref());
        let (flag, value) = match (argument.kind.as_str(), argument.name.as_deref()) {
            ("named", Some(name)) => (name, given),
            _ => (given.unwrap_or_default(), None),
        };
        let (flag, value) = match flag.split_once('=') {
            Some((flag, joined)) if value.is_none() => (flag, Some(joined)),
            _ => (flag, value),
        };
        match (flag, value) {
            ("-i" | "--interactive" | "--rm" | "--init" | "--read-only", _) => {}
            ("--cap-drop", Some(all)) if all.eq_ignore_ascii_case("all") => {}
            ("--security-opt", Some(opt)) if opt.starts_with("no-new-privileges") => {}
            ("-e" | "--env", Some(pair)) => match pair.split_once('=') {
                Some((name, value)) if is_env_name(name) && value.contains('{') => flags.declared.push(DeclaredEnv {
                    name: name.to_string(),
                    description: format!("the publisher's {value}"),
                    required: true,
                    secret: true,
                    default: None,
                }),
                Some((name, value)) if is_env_name(name) => {
                    flags.environment.insert(name.to_string(), value.to_string());
                }
                _ => return Err((i, format!("'{pair}' is not NAME=value"))),
            },
            (flag, value) => {
                let said = [Some(flag), value].into_iter().flatten().collect::<Vec<_>>().join(" ");
                return Err((
                    i,
                    format!("'{said}' is a container-engine flag the publisher chose; guardrails decide those here"),
                ));
            }
        }
    }
    Ok(flags)
}

/// The entry as the registry lists it: name, title, words, version, website.
fn listed(server: &Server) -> Result<CatalogEntry, Skip> {
    let mut entry = blank_entry(&server.name)?;
    entry.name = server.title.clone().unwrap_or_else(|| server.name.clone());
    entry.description = server.description.clone();
    entry.version = server.version.clone();
    entry.documentation_url = server.website_url.clone();
    Ok(entry)
}

/// An already-hosted server, reached at its first remote.
fn remote_entry(server: Server) -> Result<CatalogEntry, Skip> {
    let Some(remote) = server.remotes.first() else { return Err(Skip::new("remotes", "none given")) };
    let at = |field: &str| format!("remotes[0].{field}");
    let transport = match remote.kind.as_str() {
        "streamable-http" => Transport::StreamableHttp,
        "sse" => Transport::Sse,
        other => return Err(Skip::new(&at("type"), format!("unknown transport '{other}'"))),
    };
    let mut entry = listed(&server)?;
    // Headers (a key) sent with every call are the gateway's to hold.
    let auth = (!remote.headers.is_empty()).then(|| "API Key".to_string());
    entry.source = crate::catalog::ServerSource::Remote { url: remote.url.clone(), auth };
    entry.transport = transport;
    Ok(entry)
}

/// `http://localhost:8080/mcp` → 8080 and `/mcp` (a `{port}` template is 8080).
fn port_and_path(url: &str) -> (u16, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.find('/').map_or((rest, "/mcp"), |i| (&rest[..i], &rest[i..]));
    let port = authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(8080);
    (port, path.to_string())
}
