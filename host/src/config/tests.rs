use super::*;

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
}

#[test]
fn embedded_defaults_load() {
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[])).unwrap();
    assert!(c.backends.contains_key("docker"));
    assert_eq!(c.listen, "127.0.0.1:8080");
}

#[test]
fn env_overrides_and_interpolation() {
    let c = RuntimeConfig::parse(
        EMBEDDED_CONFIG,
        &env(&[("RUNTIME_LISTEN", "127.0.0.1:9999"), ("MCPGATEWAY_RUNTIME_ENABLED", "false")]),
    )
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:9999");
    assert!(!c.enabled);
    assert_eq!(expand("a${X}b${Y:-z}", "k", &env(&[("X", "1")])).unwrap(), "a1bz");
}

#[test]
fn the_gateway_is_off_unless_configured_and_checked_when_it_is() {
    assert!(RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[])).unwrap().gateway.is_none());
    let secret = "x".repeat(32);
    let c = RuntimeConfig::parse(
        EMBEDDED_CONFIG,
        &env(&[
            ("MCPGATEWAY_URL", "http://127.0.0.1:4444"),
            ("MCPGATEWAY_USER", "admin@example.com"),
            ("MCPGATEWAY_JWT_SECRET", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ]),
    )
    .unwrap();
    let gateway = c.gateway.expect("configured from the environment");
    assert_eq!(
        (gateway.url.as_str(), gateway.auth.user.as_deref()),
        ("http://127.0.0.1:4444", Some("admin@example.com"))
    );
    assert!(!format!("{gateway:?}").contains(&secret), "the secret reached a debug line");
    let key = |yaml: &str| match RuntimeConfig::parse(&format!("runtime:\n  gateway: {yaml}\n"), &env(&[])) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    assert_eq!(key("{url: 'nowhere', auth: {token: t}}"), "runtime.gateway.url");
    assert_eq!(key("{url: 'http://g', auth: {}}"), "runtime.gateway.auth");
    let no_user = format!("{{url: 'http://g', auth: {{jwt_secret: '{secret}'}}}}");
    assert_eq!(key(&no_user), "runtime.gateway.auth.user");
    assert_eq!(key("{url: 'http://g', auth: {jwt_secret: short, user: u}}"), "runtime.gateway.auth.jwt_secret");
    assert_eq!(key("{url: 'http://g', public_url: 'ftp://x', auth: {token: t}}"), "runtime.gateway.public_url");
}

#[test]
fn backend_settings_reach_their_plugin() {
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[])).unwrap();
    let docker = c.plugins.iter().find(|p| p.id == "docker").unwrap();
    let settings = c.effective_manifest(docker).settings;
    assert_eq!(settings["allowed_registries"][0], "docker.io", "{settings}");
}

#[test]
fn errors_name_the_key() {
    let text = "runtime:\n  backends:\n    docker:\n      plugin: docker\n      api_key: ${MISSING_KEY}\n";
    let err = RuntimeConfig::parse(text, &env(&[])).unwrap_err().to_string();
    assert!(err.starts_with("runtime.backends.docker.api_key: environment variable MISSING_KEY"), "{err}");
    let err = RuntimeConfig::parse("runtime:\n  listen: nowhere\n", &env(&[])).unwrap_err().to_string();
    assert!(err.starts_with("runtime.listen:"), "{err}");
    let err = RuntimeConfig::parse("runtime:\n  backends:\n    docker: {plugin: ghost}\n", &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("runtime.backends.docker.plugin:"), "{err}");
    let err = RuntimeConfig::parse("runtime:\n  lisen: x\n", &env(&[])).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn backends_are_whatever_plugins_implement_them() {
    let plugins = "  plugins:\n    - {id: k8s, kind: runtime-backend, path: k8s.wasm}\n    - {id: rule, kind: approval-rule, path: r.wasm}\n";
    let one = format!("runtime:\n  backends:\n    my_cluster: {{plugin: k8s}}\n{plugins}");
    let c = RuntimeConfig::parse(&one, &env(&[])).unwrap();
    assert_eq!(c.default_backend, "my_cluster", "the only backend is the default");
    assert_eq!(c.container_engine_socket(), "/var/run/docker.sock", "not granted the engine: the default socket");
    let two = format!("runtime:\n  backends:\n    a: {{plugin: k8s}}\n    b: {{plugin: k8s}}\n{plugins}");
    let err = RuntimeConfig::parse(&two, &env(&[])).unwrap_err().to_string();
    assert!(err.starts_with("runtime.default_backend:"), "{err}");
    let wrong = format!("runtime:\n  backends:\n    a: {{plugin: rule}}\n{plugins}");
    let err = RuntimeConfig::parse(&wrong, &env(&[])).unwrap_err().to_string();
    assert!(err.starts_with("runtime.backends.a.plugin:") && err.contains("approval-rule"), "{err}");
}

#[test]
fn worker_threads_default_to_half_the_cores_and_are_checked() {
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[])).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(c.api.worker_threads(), (cores / 2).max(1));
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[("RUNTIME_WORKER_THREADS", "3")])).unwrap();
    assert_eq!(c.api.worker_threads(), 3);
    for wrong in ["0", "5000"] {
        let env = move |k: &str| (k == "RUNTIME_WORKER_THREADS").then(|| wrong.to_string());
        match RuntimeConfig::parse(EMBEDDED_CONFIG, &env) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "runtime.api.worker_threads"),
            other => panic!("{wrong}: {other:?}"),
        }
    }
}

#[test]
fn builders_are_set_for_a_site_behind_a_proxy_or_a_mirror() {
    let site = env(&[
        ("RUNTIME_NPM_REGISTRY", "http://npm.mirror.internal:4873"),
        ("RUNTIME_BUILDERS_CA_BUNDLE", "/etc/hostname"),
        ("RUNTIME_BUILDERS_INDEX_ADDRESSES", "203.0.113.80/32, 10.1.0.0/16"),
    ]);
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &site).unwrap();
    assert_eq!(c.builders.ecosystem(crate::packages::Ecosystem::Npm).index, "http://npm.mirror.internal:4873/");
    assert_eq!(c.builders.index_addresses, ["203.0.113.80/32", "10.1.0.0/16"]);
    assert_eq!(c.builders.ca_bundle.as_deref(), Some(std::path::Path::new("/etc/hostname")));
    let unset = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[("RUNTIME_BUILDERS_CA_BUNDLE", "")])).unwrap();
    assert_eq!(unset.builders.ca_bundle, None, "empty is none");

    let wrong =
        |pairs: &'static [(&'static str, &'static str)]| match RuntimeConfig::parse(EMBEDDED_CONFIG, &env(pairs)) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{pairs:?}: {:?}", other.map(|_| ())),
        };
    assert_eq!(wrong(&[("RUNTIME_BUILDERS_INDEX_ADDRESSES", "10.0.0.0/99")]), "runtime.builders.index_addresses[0]");
    assert_eq!(wrong(&[("RUNTIME_PYPI_INDEX_URL", "ftp://pypi.internal/")]), "runtime.builders.pypi.index_url");
    assert_eq!(wrong(&[("RUNTIME_BUILDERS_CA_BUNDLE", "/nonexistent.pem")]), "runtime.builders.ca_bundle");
    assert_eq!(wrong(&[("RUNTIME_BUILDERS_STDIO_BRIDGE", "/nonexistent")]), "runtime.builders.stdio_bridge");
}

#[test]
fn the_stdio_bridge_is_found_where_it_was_put() {
    let c = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[("RUNTIME_BUILDERS_STDIO_BRIDGE", "/etc/hostname")])).unwrap();
    assert_eq!(c.builders.stdio_bridge().unwrap(), std::path::Path::new("/etc/hostname"));
    // Unset, it is looked for beside the host's executable, and its absence names the key.
    let unset = RuntimeConfig::parse(EMBEDDED_CONFIG, &env(&[])).unwrap();
    let (key, why) = unset.builders.stdio_bridge().unwrap_err();
    assert_eq!(key, "runtime.builders.stdio_bridge");
    assert!(why.contains("mcp-stdio-bridge") && why.contains("make bridge"), "{why}");
}
