//! `mcp-runtime plugin new NAME --kind guardrail-policy|approval-rule|mcp-server
//! --lang rust|python|js`: a project outside this repository with its WIT
//! (`wit/`: the contract for a rule, its own world for a tool component), a
//! minimal rule or two tools, its cases and how to build, test and ship it.
//! Each language's project builds with the tool its authors already use.

use std::path::{Path, PathBuf};

use super::PluginKind;

/// The contract, as this host speaks it.
const WIT: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// Memory (MB) and CPU (ms) limits with room to spare for a small rule:
    /// measured, one needs 2 MB in Rust and 12-16 MB in Python or JavaScript,
    /// whose interpreter's heap comes with it (docs/plugins.md).
    fn limits(self) -> (u32, u32) {
        match self {
            Lang::Rust => (16, 100),
            Lang::Python | Lang::Js => (32, 100),
        }
    }
}

/// What `plugin new` can start: a rule the host runs, or an MCP server it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProjectKind {
    GuardrailPolicy,
    ApprovalRule,
    /// A tool component for the `wasm` backend: every exported function a tool.
    McpServer,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("NAME: '{0}' must be lowercase letters, digits and '-', starting with a letter")]
    Name(String),
    #[error("{0} exists: choose a new directory")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Writes the project into `parent/NAME`; the files written, in order.
pub fn create(parent: &Path, name: &str, kind: ProjectKind, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.into()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let files = match kind {
        ProjectKind::McpServer => server_files(name, lang),
        ProjectKind::GuardrailPolicy => rule_files(name, PluginKind::GuardrailPolicy, lang),
        ProjectKind::ApprovalRule => rule_files(name, PluginKind::ApprovalRule, lang),
    };
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dir.join(relative);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        std::fs::create_dir_all(path.parent().expect("a file in the project")).map_err(io)?;
        std::fs::write(&path, text).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

/// How a project in `lang` is built: the component it makes and the command
/// its README gives, for a world named `world`; the JavaScript build script
/// reads `source`.
struct Build {
    wasm: String,
    command: String,
    js_build: String,
}

impl Build {
    fn of(name: &str, lang: Lang, world: &str, source: &str, disabled: &str) -> Build {
        let crate_name = name.replace('-', "_");
        let (wasm, command) = match lang {
            Lang::Rust => (
                format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
                "cargo build --release --target wasm32-wasip2".to_string(),
            ),
            Lang::Python => (
                format!("{crate_name}.wasm"),
                format!("componentize-py -d wit -w {world} componentize app -o {crate_name}.wasm"),
            ),
            Lang::Js => (format!("{crate_name}.wasm"), "npm install && npm run build".to_string()),
        };
        let js_build = format!("componentize-js {source} --wit wit -n {world} -d {disabled} -o {wasm}");
        Build { wasm, command, js_build }
    }

    /// `template` with every placeholder this build knows filled.
    fn fill(&self, template: &str, name: &str, lang: Lang) -> String {
        template
            .replace("{{name}}", name)
            .replace("{{wasm}}", &self.wasm)
            .replace("{{build}}", &self.command)
            .replace("{{js_build}}", &self.js_build)
            .replace("{{lang}}", lang.title())
            .replace("{{wit_version}}", crate::contract::WIT_VERSION)
    }
}

/// The language's manifest (`Cargo.toml`, `package.json`), if it has one.
fn manifest(lang: Lang, dependencies: &str) -> Option<(String, String)> {
    match lang {
        Lang::Rust => Some((
            "Cargo.toml".into(),
            include_str!("scaffold/Cargo.toml.tmpl").replace("{{dependencies}}", dependencies),
        )),
        Lang::Js => Some(("package.json".into(), include_str!("scaffold/package.json.tmpl").into())),
        Lang::Python => None,
    }
}

/// A rule against the host's contract (`wit/` is the contract itself).
fn rule_files(name: &str, kind: PluginKind, lang: Lang) -> Vec<(String, String)> {
    let world = kind.world();
    // The JavaScript rule needs neither HTTP nor an event handler.
    let build = Build::of(name, lang, world, "rule.js", "http fetch-event");
    let (memory_mb, cpu_ms) = lang.limits();
    let fill = |template: &str| {
        build
            .fill(template, name, lang)
            .replace("{{world}}", world)
            .replace("{{memory_mb}}", &memory_mb.to_string())
            .replace("{{cpu_ms}}", &cpu_ms.to_string())
    };
    let policy = kind == PluginKind::GuardrailPolicy;
    let rule = match (lang, policy) {
        (Lang::Rust, true) => ("src/lib.rs", include_str!("scaffold/policy.rs.tmpl")),
        (Lang::Rust, false) => ("src/lib.rs", include_str!("scaffold/approval.rs.tmpl")),
        (Lang::Python, true) => ("app.py", include_str!("scaffold/policy.py.tmpl")),
        (Lang::Python, false) => ("app.py", include_str!("scaffold/approval.py.tmpl")),
        (Lang::Js, true) => ("rule.js", include_str!("scaffold/policy.js.tmpl")),
        (Lang::Js, false) => ("rule.js", include_str!("scaffold/approval.js.tmpl")),
    };
    let cases = if policy {
        include_str!("scaffold/policy-cases.yaml.tmpl")
    } else {
        include_str!("scaffold/approval-cases.yaml.tmpl")
    };
    let serde = "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n";
    let mut files: Vec<(String, String)> = vec![
        (rule.0.into(), fill(rule.1)),
        ("cases.yaml".into(), fill(cases)),
        ("README.md".into(), fill(include_str!("scaffold/README.md.tmpl"))),
    ];
    files.extend(manifest(lang, serde).map(|(file, text)| (file, fill(&text))));
    files.extend(WIT.iter().map(|(file, text)| (format!("wit/{file}"), text.to_string())));
    files
}

/// A tool component: its own world (`wit/world.wit`), no contract to import.
fn server_files(name: &str, lang: Lang) -> Vec<(String, String)> {
    // Outgoing HTTP stays (the guardrails decide where it may go); an incoming
    // handler would make it a `wasi:http` server instead of a tool component.
    let build = Build::of(name, lang, "tools", "tools.js", "fetch-event");
    let fill = |template: &str| build.fill(template, name, lang);
    let tools = match lang {
        Lang::Rust => ("src/lib.rs", include_str!("scaffold/tools.rs.tmpl")),
        Lang::Python => ("app.py", include_str!("scaffold/tools.py.tmpl")),
        Lang::Js => ("tools.js", include_str!("scaffold/tools.js.tmpl")),
    };
    let mut files: Vec<(String, String)> = vec![
        (tools.0.into(), fill(tools.1)),
        ("cases.yaml".into(), fill(include_str!("scaffold/tools-cases.yaml.tmpl"))),
        ("README.md".into(), fill(include_str!("scaffold/tools-README.md.tmpl"))),
        ("wit/world.wit".into(), fill(include_str!("scaffold/tools.wit.tmpl"))),
    ];
    files.extend(manifest(lang, "").map(|(file, text)| (file, fill(&text))));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_package_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "Rule", "1rule", "my_rule", "../rule"] {
            let e = create(dir.path(), bad, ProjectKind::GuardrailPolicy, Lang::Rust).unwrap_err();
            assert!(matches!(e, ScaffoldError::Name(_)), "{bad}: {e}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_project_is_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "rule", ProjectKind::ApprovalRule, Lang::Js).unwrap();
        let e = create(dir.path(), "rule", ProjectKind::ApprovalRule, Lang::Js).unwrap_err();
        assert!(matches!(e, ScaffoldError::Exists(_)), "{e}");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        for (i, lang) in [Lang::Rust, Lang::Python, Lang::Js].into_iter().enumerate() {
            for kind in [ProjectKind::GuardrailPolicy, ProjectKind::ApprovalRule, ProjectKind::McpServer] {
                let name = format!("project-{i}-{kind:?}").to_lowercase();
                for path in create(dir.path(), &name, kind, lang).unwrap() {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(!text.contains("{{"), "{} keeps a placeholder", path.display());
                }
            }
        }
    }
}
