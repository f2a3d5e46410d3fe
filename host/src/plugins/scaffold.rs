//! `mcp-runtime plugin new NAME --kind guardrail-policy|approval-rule --lang
//! rust|python|js`: a project outside this repository with the contract
//! (`wit/`), a minimal rule, its cases and how to build, test and ship it.
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

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("NAME: '{0}' must be lowercase letters, digits and '-', starting with a letter")]
    Name(String),
    #[error("--kind: plugin new scaffolds guardrail-policy and approval-rule projects")]
    Kind,
    #[error("{0} exists: choose a new directory")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Writes the project into `parent/NAME`; the files written, in order.
pub fn create(parent: &Path, name: &str, kind: PluginKind, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.into()));
    }
    let (rule_kind, world) = match kind {
        PluginKind::GuardrailPolicy => ("policy", "guardrail-policy"),
        PluginKind::ApprovalRule => ("approval", "approval-rule"),
        PluginKind::RuntimeBackend => return Err(ScaffoldError::Kind),
    };
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let crate_name = name.replace('-', "_");
    let (wasm, build) = match lang {
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
    let (memory_mb, cpu_ms) = lang.limits();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{world}}", world)
            .replace("{{wasm}}", &wasm)
            .replace("{{build}}", &build)
            .replace("{{lang}}", lang.title())
            .replace("{{wit_version}}", crate::contract::WIT_VERSION)
            .replace("{{memory_mb}}", &memory_mb.to_string())
            .replace("{{cpu_ms}}", &cpu_ms.to_string())
    };
    let rule = match (lang, rule_kind) {
        (Lang::Rust, "policy") => ("src/lib.rs", include_str!("scaffold/policy.rs.tmpl")),
        (Lang::Rust, _) => ("src/lib.rs", include_str!("scaffold/approval.rs.tmpl")),
        (Lang::Python, "policy") => ("app.py", include_str!("scaffold/policy.py.tmpl")),
        (Lang::Python, _) => ("app.py", include_str!("scaffold/approval.py.tmpl")),
        (Lang::Js, "policy") => ("rule.js", include_str!("scaffold/policy.js.tmpl")),
        (Lang::Js, _) => ("rule.js", include_str!("scaffold/approval.js.tmpl")),
    };
    let cases = match kind {
        PluginKind::ApprovalRule => include_str!("scaffold/approval-cases.yaml.tmpl"),
        _ => include_str!("scaffold/policy-cases.yaml.tmpl"),
    };
    let mut files: Vec<(String, String)> = vec![
        (rule.0.into(), fill(rule.1)),
        ("cases.yaml".into(), fill(cases)),
        ("README.md".into(), fill(include_str!("scaffold/README.md.tmpl"))),
    ];
    match lang {
        Lang::Rust => files.push(("Cargo.toml".into(), fill(include_str!("scaffold/Cargo.toml.tmpl")))),
        Lang::Js => files.push(("package.json".into(), fill(include_str!("scaffold/package.json.tmpl")))),
        Lang::Python => {}
    }
    files.extend(WIT.iter().map(|(file, text)| (format!("wit/{file}"), text.to_string())));

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_package_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "Rule", "1rule", "my_rule", "../rule"] {
            let e = create(dir.path(), bad, PluginKind::GuardrailPolicy, Lang::Rust).unwrap_err();
            assert!(matches!(e, ScaffoldError::Name(_)), "{bad}: {e}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_project_is_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "rule", PluginKind::ApprovalRule, Lang::Js).unwrap();
        let e = create(dir.path(), "rule", PluginKind::ApprovalRule, Lang::Js).unwrap_err();
        assert!(matches!(e, ScaffoldError::Exists(_)), "{e}");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        for (i, lang) in [Lang::Rust, Lang::Python, Lang::Js].into_iter().enumerate() {
            for kind in [PluginKind::GuardrailPolicy, PluginKind::ApprovalRule] {
                let name = format!("rule-{i}-{}", kind.world());
                for path in create(dir.path(), &name, kind, lang).unwrap() {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(!text.contains("{{"), "{} keeps a placeholder", path.display());
                }
            }
        }
    }
}
