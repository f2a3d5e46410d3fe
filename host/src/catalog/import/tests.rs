use super::*;
use crate::catalog::{ServerSource, Transport};
use crate::packages::Ecosystem;

/// Read with the default package preference (oci, npm, pypi).
fn read(text: &str, format: Format) -> Result<(Format, Vec<Candidate>), Skip> {
    super::read(text, format, &PackageKind::PREFERENCE)
}

const PAGE: &str = r#"{
  "servers": [
    {"server": {
      "$schema": "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json",
      "name": "io.github.acme/weather", "title": "Weather", "description": "Forecasts", "version": "1.0.2",
      "packages": [{"registryType": "oci", "identifier": "ghcr.io/acme/weather", "version": "1.0.2",
                    "transport": {"type": "stdio"},
                    "environmentVariables": [
                      {"name": "WEATHER_API_KEY", "description": "the API key", "isRequired": true, "isSecret": true},
                      {"name": "UNITS", "default": "metric"}],
                    "packageArguments": [{"type": "named", "name": "--units", "value": "metric"},
                                         {"type": "positional", "value": "serve"}]}]},
     "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active"}}},
    {"server": {"name": "io.github.acme/search", "description": "Search", "version": "2.0.0",
      "packages": [{"registryType": "oci", "identifier": "ghcr.io/acme/search:2.0.0",
                    "transport": {"type": "streamable-http", "url": "http://localhost:9000/mcp/v1"}}]}},
    {"server": {"name": "io.github.acme/npm-thing", "version": "0.1.0",
      "packages": [{"registryType": "npm", "identifier": "@acme/thing", "version": "0.1.0"}]}},
    {"server": {"name": "io.github.acme/hosted", "version": "1.0.0",
      "remotes": [{"type": "streamable-http", "url": "https://mcp.acme.example/mcp"}]}},
    {"server": {"name": "io.github.acme/hostnet", "version": "1.0.0",
      "packages": [{"registryType": "oci", "identifier": "ghcr.io/acme/hostnet", "version": "1.0.0",
                    "runtimeArguments": [{"type": "named", "name": "--network", "value": "host"}]}]}},
    {"server": {"description": "no name at all", "packages": 7}}
  ],
  "metadata": {"nextCursor": "io.github.acme/hostnet:1.0.0", "count": 6}
}"#;

#[test]
fn a_registry_page_becomes_entries_or_reasons() {
    let (format, candidates) = read(PAGE, Format::Auto).unwrap();
    assert_eq!((format, candidates.len()), (Format::McpRegistry, 6));
    assert_eq!(next_page(PAGE).as_deref(), Some("io.github.acme/hostnet:1.0.0"));

    let weather = candidates[0].entry.as_ref().unwrap();
    assert_eq!((weather.slug.as_str(), weather.name.as_str()), ("io-github-acme-weather", "Weather"));
    assert_eq!(
        weather.source,
        ServerSource::Docker { image: "ghcr.io/acme/weather:1.0.2".into(), registry_secret: None }
    );
    assert_eq!(weather.transport, Transport::Stdio);
    assert_eq!(weather.args.as_deref(), Some(&["--units".to_string(), "metric".into(), "serve".into()][..]));
    let key = &weather.env_vars[0];
    assert!(key.required && key.secret && key.default.is_none() && key.name == "WEATHER_API_KEY");
    assert_eq!(weather.env_vars[1].default.as_deref(), Some("metric"));
    assert_eq!(candidates[0].version.as_deref(), Some("1.0.2"));

    let search = candidates[1].entry.as_ref().unwrap();
    assert_eq!((search.transport, search.port, search.mcp_path.as_str()), (Transport::StreamableHttp, 9000, "/mcp/v1"));
    assert_eq!(
        search.source,
        ServerSource::Docker { image: "ghcr.io/acme/search:2.0.0".into(), registry_secret: None }
    );

    let skipped = |i: usize| candidates[i].entry.as_ref().unwrap_err().clone();
    let npm = candidates[2].entry.as_ref().unwrap();
    let ServerSource::Package { ecosystem, name, version, bin, .. } = &npm.source else { panic!("{npm:?}") };
    assert_eq!((*ecosystem, name.as_str(), version.as_str(), bin), (Ecosystem::Npm, "@acme/thing", "0.1.0", &None));
    assert_eq!(npm.transport, Transport::Stdio);
    let hosted = candidates[3].entry.as_ref().unwrap();
    assert_eq!(hosted.source, ServerSource::Remote { url: "https://mcp.acme.example/mcp".into(), auth: None });
    assert_eq!(hosted.transport, Transport::StreamableHttp);
    assert_eq!(skipped(4).field, "packages[0].runtimeArguments[0]");
    assert!(skipped(4).reason.contains("--network host"), "{:?}", skipped(4));
    assert_eq!((candidates[5].upstream_id.as_str(), skipped(5).field.as_str()), ("(unnamed)", "server"));
}

#[test]
fn a_docker_server_yaml_is_a_stdio_image_with_its_secrets() {
    let doc = r#"
name: github-official
image: ghcr.io/github/github-mcp-server
type: server
meta: {category: devops, tags: [github, devops]}
about: {title: GitHub Official, description: "GitHub's official MCP Server", icon: "https://example.invalid/i.png"}
source: {project: "https://github.com/github/github-mcp-server"}
config:
  description: Configure the connection to GitHub
  secrets:
    - {name: github.personal_access_token, env: GITHUB_PERSONAL_ACCESS_TOKEN, example: "<token>"}
  env:
    - {name: GITHUB_TOOLSETS, example: "repos,issues", value: "{{github.toolsets}}"}
    - {name: LOG_LEVEL, value: info}
  parameters:
    type: object
    properties: {toolsets: {type: string, description: "Toolsets to enable"}}
    required: [toolsets]
run: {command: [stdio]}
"#;
    let (format, candidates) = read(doc, Format::Auto).unwrap();
    assert_eq!(format, Format::Docker);
    let e = candidates[0].entry.as_ref().unwrap();
    assert_eq!(
        (e.slug.as_str(), e.name.as_str(), e.category.as_deref()),
        ("github-official", "GitHub Official", Some("devops"))
    );
    assert_eq!(e.transport, Transport::Stdio);
    assert_eq!(e.args.as_deref(), Some(&["stdio".to_string()][..]));
    let names: Vec<(&str, bool, bool, Option<&str>)> =
        e.env_vars.iter().map(|v| (v.name.as_str(), v.required, v.secret, v.default.as_deref())).collect();
    assert_eq!(
        names,
        [
            ("GITHUB_PERSONAL_ACCESS_TOKEN", true, true, None),
            ("GITHUB_TOOLSETS", true, false, None),
            ("LOG_LEVEL", false, false, Some("info"))
        ]
    );
    assert_eq!(e.env_vars[1].description, "Toolsets to enable", "the parameter's own words");
}

#[test]
fn contextforge_servers_are_remote_entries_with_their_auth() {
    let doc = r#"
catalog_servers:
  - {id: asana, name: Asana, category: Project Management, url: 'https://mcp.asana.com/sse', auth_type: OAuth2.1,
     provider: Asana, description: Tasks, tags: [tasks], logo_url: 'https://asana.example/logo.png'}
  - {id: time, name: Time, category: Utilities, url: 'http://127.0.0.1:9000/mcp/', auth_type: Open, provider: Local,
     description: Time}
  - {id: stripe, name: Stripe, category: Payments, url: 'https://mcp.stripe.com/', auth_type: Open,
     requires_api_key: true, provider: Stripe, description: Payments}
  - {id: socket, name: Socket, url: 'wss://ws.example/mcp', auth_type: Open, provider: X, description: ws}
  - {id: broken}
"#;
    let (format, candidates) = read(doc, Format::Auto).unwrap();
    assert_eq!((format, candidates.len()), (Format::Contextforge, 5));
    let asana = candidates[0].entry.as_ref().unwrap();
    assert_eq!(
        asana.source,
        ServerSource::Remote { url: "https://mcp.asana.com/sse".into(), auth: Some("OAuth2.1".into()) }
    );
    assert_eq!((asana.transport, asana.category.as_deref()), (Transport::Sse, Some("Project Management")));
    assert_eq!(
        (asana.tags.clone(), asana.icon.as_deref()),
        (vec!["tasks".to_string()], Some("https://asana.example/logo.png"))
    );
    let time = candidates[1].entry.as_ref().unwrap();
    assert_eq!((time.slug.as_str(), time.transport), ("time", Transport::StreamableHttp));
    assert_eq!(time.source, ServerSource::Remote { url: "http://127.0.0.1:9000/mcp/".into(), auth: None });
    let stripe = candidates[2].entry.as_ref().unwrap();
    assert_eq!(
        stripe.source,
        ServerSource::Remote { url: "https://mcp.stripe.com/".into(), auth: Some("API Key".into()) }
    );
    assert_eq!(stripe.transport, Transport::Sse, "ContextForge's default");
    assert_eq!(candidates[3].entry.as_ref().unwrap_err().field, "transport");
    assert_eq!(
        (candidates[4].upstream_id.as_str(), candidates[4].entry.as_ref().unwrap_err().field.as_str()),
        ("broken", "server")
    );
}

#[test]
fn a_docker_remote_server_yaml_is_a_remote_entry() {
    let doc = r#"
name: linear
type: remote
meta: {category: productivity, tags: [productivity, remote]}
about: {title: Linear, description: Track issues}
remote: {transport_type: streamable-http, url: "https://mcp.linear.app/mcp"}
oauth:
  - {provider: linear, secret: linear.personal_access_token, env: LINEAR_PERSONAL_ACCESS_TOKEN}
"#;
    let (format, candidates) = read(doc, Format::Auto).unwrap();
    assert_eq!(format, Format::Docker);
    let e = candidates[0].entry.as_ref().unwrap();
    assert_eq!((e.name.as_str(), e.transport), ("Linear", Transport::StreamableHttp));
    assert_eq!(e.source, ServerSource::Remote { url: "https://mcp.linear.app/mcp".into(), auth: Some("OAuth".into()) });
    let unnamed = read("name: x\ntype: remote\nabout: {title: X}\n", Format::Docker).unwrap().1;
    assert_eq!(unnamed[0].entry.as_ref().unwrap_err().field, "remote");
}

#[test]
fn documents_that_are_no_catalog_are_refused_naming_why() {
    assert_eq!(read("{not yaml: [", Format::Auto).err().unwrap().field, "document");
    assert_eq!(read("hello: world", Format::Auto).err().unwrap().field, "format");
}

#[test]
fn filters_and_merges_keep_what_the_admin_chose() {
    let (_, candidates) = read(PAGE, Format::McpRegistry).unwrap();
    let mut weather = candidates[0].entry.clone().unwrap();
    weather.origin = Some(Origin {
        source: "document".into(),
        format: Format::McpRegistry,
        upstream_id: "io.github.acme/weather".into(),
        version: Some("1.0.2".into()),
    });
    let by = |q: &str| ImportFilter { q: Some(q.into()), ..Default::default() };
    assert!(by("FORECAST").keeps(&weather) && !by("search").keeps(&weather));
    let tagged = ImportFilter { tags: vec!["x".into()], ..Default::default() };
    assert!(!tagged.keeps(&weather));

    assert_eq!(merge(weather.clone(), None).unwrap(), Some(weather.clone()), "new: added as read");
    let mut admin = weather.clone();
    admin.guardrails_profile = "restricted".into();
    admin.requires_approval = true;
    assert_eq!(merge(weather.clone(), Some(&admin)).unwrap(), None, "the admin's choices are no upstream change");
    let mut newer = weather.clone();
    newer.description = "Forecasts, hourly".into();
    let merged = merge(newer, Some(&admin)).unwrap().unwrap();
    assert_eq!((merged.guardrails_profile.as_str(), merged.requires_approval), ("restricted", true));
    assert_eq!(merged.description, "Forecasts, hourly");
    let local = CatalogEntry { origin: None, ..weather.clone() };
    assert_eq!(merge(weather, Some(&local)).unwrap_err().field, "slug", "a local entry is never overwritten");
}

#[test]
fn upstream_names_that_read_as_other_yaml_still_make_slugs() {
    for (name, slug) in [("true", "true"), ("123", "123"), ("null", "null"), ("io.github.x/Y Z", "io-github-x-y-z")] {
        let doc =
            serde_json::json!({"name": name, "packages": [{"registryType": "oci", "identifier": "ghcr.io/x/y:1"}]});
        let (_, candidates) = read(&doc.to_string(), Format::McpRegistry).unwrap();
        assert_eq!(candidates[0].entry.as_ref().map(|e| e.slug.as_str()), Ok(slug), "{name}");
    }
}

#[test]
fn publisher_engine_flags_are_read_for_what_they_mean_never_forwarded() {
    let with = |flags: serde_json::Value| {
        let doc = serde_json::json!({"name": "io.github.x/y", "packages": [{"registryType": "oci",
            "identifier": "ghcr.io/x/y:1", "transport": {"type": "stdio"}, "runtimeArguments": flags}]});
        read(&doc.to_string(), Format::McpRegistry).unwrap().1.remove(0).entry
    };
    let harmless = serde_json::json!([
        {"type": "positional", "value": "-i"}, {"type": "named", "name": "--rm"},
        {"type": "named", "name": "--cap-drop", "value": "ALL"}, {"type": "positional", "value": "--read-only"},
        {"type": "named", "name": "-e", "value": "LOG_LEVEL=info"},
        {"type": "named", "name": "--env", "value": "TOKEN={token}"}]);
    let e = with(harmless).unwrap();
    assert_eq!(e.environment.get("LOG_LEVEL").map(String::as_str), Some("info"));
    let token = e.env_vars.iter().find(|v| v.name == "TOKEN").expect("declared");
    assert!(token.required && token.secret);
    for (flags, at) in [
        (serde_json::json!([{"type": "named", "name": "-i"}, {"type": "named", "name": "--privileged"}]), 1),
        (serde_json::json!([{"type": "named", "name": "-v", "value": "/:/host"}]), 0),
        (serde_json::json!([{"type": "positional", "value": "--network=host"}]), 0),
        (serde_json::json!([{"type": "named", "name": "-e", "value": "no pair"}]), 0),
    ] {
        let skip = with(flags.clone()).unwrap_err();
        assert_eq!(skip.field, format!("packages[0].runtimeArguments[{at}]"), "{flags}");
    }
}

/// A page listing every kind of package the registry knows.
const KINDS: &str = r#"{"servers": [
  {"server": {"name": "io.github.acme/n", "version": "1.0.0", "packages": [
     {"registryType": "npm", "identifier": "@acme/n", "version": "1.0.0", "runtimeHint": "npx",
      "runtimeArguments": [{"type": "positional", "value": "-y"}],
      "packageArguments": [{"type": "positional", "value": "stdio"}],
      "environmentVariables": [{"name": "TOKEN", "isRequired": true, "isSecret": true}]}]}},
  {"server": {"name": "io.github.acme/p", "version": "2.0", "packages": [
     {"registryType": "pypi", "identifier": "acme-p", "version": "2.0", "runtimeHint": "uvx"}]}},
  {"server": {"name": "io.github.acme/both", "version": "1.0.0", "packages": [
     {"registryType": "npm", "identifier": "@acme/both", "version": "1.0.0"},
     {"registryType": "oci", "identifier": "ghcr.io/acme/both", "version": "1.0.0"}]}},
  {"server": {"name": "io.github.acme/dotnet", "version": "1.0.0", "packages": [
     {"registryType": "nuget", "identifier": "Acme.Mcp", "version": "1.0.0"}]}},
  {"server": {"name": "io.github.acme/bundle", "version": "1.0.0", "packages": [
     {"registryType": "mcpb", "identifier": "https://example.invalid/a.mcpb", "version": "1.0.0"}]}},
  {"server": {"name": "io.github.acme/odd", "version": "1.0.0", "packages": [
     {"registryType": "npm", "identifier": "@acme/odd", "version": "1.0.0", "runtimeHint": "docker"}]}}
]}"#;

#[test]
fn npm_and_pypi_packages_become_package_entries_in_the_preferred_order() {
    let (_, candidates) = read(KINDS, Format::McpRegistry).unwrap();
    let entry = |i: usize| candidates[i].entry.as_ref().unwrap().clone();
    let skipped = |i: usize| candidates[i].entry.as_ref().unwrap_err().clone();
    let n = entry(0);
    assert!(matches!(&n.source, ServerSource::Package { ecosystem: Ecosystem::Npm, name, .. } if name == "@acme/n"));
    assert_eq!(n.args.as_deref(), Some(&["stdio".to_string()][..]), "npx's own -y is not the server's");
    assert!(n.env_vars[0].secret && n.env_vars[0].name == "TOKEN");
    let p = entry(1);
    assert!(matches!(&p.source, ServerSource::Package { ecosystem: Ecosystem::Pypi, version, .. } if version == "2.0"));
    assert!(matches!(entry(2).source, ServerSource::Docker { .. }), "an image before a package");
    for (i, kind) in [(3, "nuget"), (4, "mcpb")] {
        assert_eq!(skipped(i).field, "packages[0].registryType");
        assert!(skipped(i).reason.starts_with(kind), "{:?}", skipped(i));
    }
    assert_eq!(skipped(5).field, "packages[0].runtimeHint");

    let npm_first = super::read(KINDS, Format::McpRegistry, &[PackageKind::Npm, PackageKind::Oci]).unwrap().1;
    let both = npm_first[2].entry.as_ref().unwrap();
    assert!(matches!(both.source, ServerSource::Package { .. }), "package_preference puts npm first");
    let images_only = super::read(KINDS, Format::McpRegistry, &[PackageKind::Oci]).unwrap().1;
    assert_eq!(images_only[0].entry.as_ref().unwrap_err().field, "packages[0].registryType");
}
