//! The contract's compatibility promise, checked when a plugin is loaded:
//! a minor version of `mcp-runtime:plugin` only adds (host functions,
//! interfaces, worlds), so a component built against this major version and
//! this or an earlier minor loads; a newer minor or another major is refused,
//! naming both versions, before the linker could fail less clearly.

use crate::contract::WIT_VERSION;

const PACKAGE: &str = "mcp-runtime:plugin/";

/// `(major, minor)` of a `major.minor.patch` version.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Why a component importing or exporting `names` cannot run on this host, if it cannot.
pub fn refuse<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let (major, minor) = major_minor(WIT_VERSION).expect("the host's own contract version parses");
    for name in names {
        let Some(rest) = name.strip_prefix(PACKAGE) else { continue };
        let Some((_, version)) = rest.split_once('@') else {
            return Some(format!("'{name}' names no version of mcp-runtime:plugin"));
        };
        let fits = match major_minor(version) {
            Some((m, n)) => m == major && n <= minor,
            None => false,
        };
        if !fits {
            return Some(format!(
                "built against mcp-runtime:plugin@{version}; this host speaks {WIT_VERSION} and runs \
                 components built against {major}.0 to {major}.{minor}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(version: &str) -> String {
        format!("mcp-runtime:plugin/policy@{version}")
    }

    #[test]
    fn this_and_earlier_minor_versions_of_the_major_load() {
        let (major, minor) = major_minor(WIT_VERSION).unwrap();
        for v in [format!("{major}.0.0"), format!("{major}.{minor}.0"), WIT_VERSION.to_string()] {
            assert_eq!(refuse([name(&v).as_str(), "wasi:io/streams@0.2.6"]), None, "{v}");
        }
    }

    #[test]
    fn a_newer_minor_another_major_or_no_version_is_refused_naming_it() {
        let (major, minor) = major_minor(WIT_VERSION).unwrap();
        for v in [format!("{major}.{}.0", minor + 1), format!("{}.0.0", major + 1), "0.4.0".into(), "x".into()] {
            let why = refuse([name(&v).as_str()]).unwrap_or_else(|| panic!("{v} loaded"));
            assert!(why.contains(&v) && why.contains(WIT_VERSION), "{why}");
        }
        assert!(refuse(["mcp-runtime:plugin/policy"]).unwrap().contains("no version"));
    }

    #[test]
    fn the_version_is_the_one_wit_declares() {
        let worlds = include_str!("../../../wit/worlds.wit");
        assert!(worlds.starts_with(&format!("package mcp-runtime:plugin@{WIT_VERSION};")), "wit/worlds.wit");
    }
}
