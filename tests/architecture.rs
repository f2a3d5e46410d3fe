//! The host's shape, checked: modules depend on each other one way only (no
//! cycles), no file grows past what a reader holds in their head, and the
//! module graph in docs/architecture.md is the one the code has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Past this a file is split by concern.
const MAX_LINES: usize = 520;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's node in the graph: its top-level module.
fn node_of(relative: &str) -> String {
    relative.split('/').next().unwrap().trim_end_matches(".rs").into()
}

/// The modules a file's production code names through `crate::`; test
/// modules at the end are left out.
fn references(code: &str) -> BTreeSet<String> {
    let code: String = code
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let named = |path: &str| ident(path);
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(list) => {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                found.extend(list.split(',').map(|p| named(p.trim())).filter(|m| !m.is_empty()));
            }
            None => {
                found.insert(named(rest));
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if relative == "lib.rs" || relative == "main.rs" {
            continue;
        }
        let node = node_of(&relative);
        let code = std::fs::read_to_string(&file).unwrap();
        let deps = references(&code);
        let entry = graph.entry(node.clone()).or_default();
        entry.extend(deps.into_iter().filter(|d| *d != node));
    }
    graph
}

/// Modules by layer, top first: each depends only on layers below it.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, Vec<String>> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut left: BTreeSet<String> = graph.keys().chain(graph.values().flatten()).cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|n| graph.get(*n).is_none_or(|deps| deps.iter().all(|d| depth.contains_key(d))))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(left.into_iter().collect());
        }
        for n in ready {
            let d = graph.get(&n).map_or(0, |deps| deps.iter().map(|d| depth[d] + 1).max().unwrap_or(0));
            depth.insert(n.clone(), d);
            left.remove(&n);
        }
    }
    let top = depth.values().copied().max().unwrap_or(0);
    let mut layers = vec![Vec::new(); top + 1];
    for (n, d) in depth {
        layers[top - d].push(n);
    }
    Ok(layers)
}

#[test]
fn modules_depend_one_way_and_the_docs_show_the_graph() {
    let graph = graph();
    let layers = layers(&graph).unwrap_or_else(|cycle| panic!("modules in or behind a cycle: {cycle:?}\n{graph:#?}"));
    let drawn: String = layers.iter().map(|l| l.join(" · ")).collect::<Vec<_>>().join("\n");
    let docs = include_str!("../docs/architecture.md");
    assert!(
        docs.contains(&format!("```text\n{drawn}\n```")),
        "docs/architecture.md must show the module graph:\n{drawn}"
    );
}

#[test]
fn no_file_grows_past_what_a_reader_holds() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:?}");
}

#[test]
fn a_cycle_is_caught() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(layers(&graph).is_err());
    let found = references("use crate::{a, b::c};\nuse crate::deployment::X;");
    assert_eq!(found, BTreeSet::from(["a", "b", "deployment"].map(String::from)));
}
