//! An OSV record (<https://ossf.github.io/osv-schema/>) as the OSV project
//! and GitHub's advisory database publish them, and whether it affects one
//! version of one package: each range's events sorted by version and walked
//! as the schema says (`introduced` opens, `fixed` closes at that version,
//! `last_affected` closes after it), or the version listed outright.

use serde::Deserialize;
use std::cmp::Ordering;

use super::severity::{cvss3_base_score, Severity};
use super::versions::Ecosystem;

#[derive(Debug, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: String,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    severity: Vec<Score>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Score {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Debug, Deserialize)]
pub struct Affected {
    pub package: Option<PackageRef>,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct PackageRef {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
}

impl Record {
    /// The CVSS v3 base score, when the record carries a vector.
    pub fn score(&self) -> Option<f64> {
        self.severity.iter().filter(|s| s.kind == "CVSS_V3").find_map(|s| cvss3_base_score(&s.score))
    }

    /// From the score where there is one, else the database's own label.
    pub fn severity(&self) -> Severity {
        match self.score() {
            Some(score) => Severity::of_score(score),
            None => self
                .database_specific
                .as_ref()
                .and_then(|d| d.get("severity"))
                .and_then(serde_json::Value::as_str)
                .map(Severity::of_label)
                .unwrap_or(Severity::Unknown),
        }
    }
}

/// Whether `version` is affected: `Some(fixed)` (the first version that fixes
/// it, if the record names one) when it is, `None` when not or when the
/// record's versions cannot be read in this ecosystem.
pub fn affects(affected: &Affected, ecosystem: Ecosystem, version: &str) -> Option<Option<String>> {
    let cmp = |a: &str, b: &str| ecosystem.compare(a, b);
    let listed = affected.versions.iter().any(|v| cmp(v, version) == Some(Ordering::Equal));
    let in_a_range = affected
        .ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .any(|r| in_range(&r.events, ecosystem, version) == Some(true));
    if !listed && !in_a_range {
        return None;
    }
    let fixes = affected.ranges.iter().flat_map(|r| &r.events).filter_map(|e| e.fixed.as_deref());
    let fixed = fixes
        .filter(|f| cmp(f, version) == Some(Ordering::Greater))
        .min_by(|a, b| cmp(a, b).unwrap_or(Ordering::Equal))
        .map(String::from);
    Some(fixed)
}

fn in_range(events: &[Event], ecosystem: Ecosystem, version: &str) -> Option<bool> {
    fn at(e: &Event) -> Option<&str> {
        e.introduced.as_deref().or(e.fixed.as_deref()).or(e.last_affected.as_deref())
    }
    let mut sorted: Vec<&Event> = events.iter().filter(|e| at(e).is_some()).collect();
    // `introduced: 0` is before every version; any other must be a version of this ecosystem.
    let key_order = |a: &&Event, b: &&Event| match (at(a), at(b)) {
        (Some("0"), Some("0")) => Ordering::Equal,
        (Some("0"), _) => Ordering::Less,
        (_, Some("0")) => Ordering::Greater,
        (Some(x), Some(y)) => ecosystem.compare(x, y).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    };
    if sorted.iter().any(|e| at(e).is_some_and(|v| v != "0" && ecosystem.compare(v, v).is_none())) {
        return None;
    }
    sorted.sort_by(key_order);
    let mut affected = false;
    for event in sorted {
        if let Some(introduced) = &event.introduced {
            if introduced == "0" || ecosystem.compare(version, introduced)? != Ordering::Less {
                affected = true;
            }
        } else if let Some(fixed) = &event.fixed {
            if ecosystem.compare(version, fixed)? != Ordering::Less {
                affected = false;
            }
        } else if let Some(last) = &event.last_affected {
            if ecosystem.compare(version, last)? == Ordering::Greater {
                affected = false;
            }
        }
    }
    Some(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn affected(ranges: serde_json::Value) -> Affected {
        serde_json::from_value(json!({"package": {"ecosystem": "npm", "name": "x"}, "ranges": ranges})).unwrap()
    }

    #[test]
    fn ranges_open_at_introduced_and_close_at_fixed_or_after_last_affected() {
        let two_ranges = affected(json!([
            {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.2.6"}]},
            {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.4"}]}
        ]));
        let npm = Ecosystem::Npm;
        assert_eq!(affects(&two_ranges, npm, "1.2.5"), Some(Some("1.2.6".into())));
        assert_eq!(affects(&two_ranges, npm, "0.0.1"), Some(Some("0.2.4".into())), "introduced 0: from the start");
        assert_eq!(affects(&two_ranges, npm, "0.5.0"), None, "between the ranges");
        assert_eq!(affects(&two_ranges, npm, "1.2.6"), None, "fixed is not affected");
        assert_eq!(
            affects(&two_ranges, npm, "1.2.6-rc.1"),
            Some(Some("1.2.6".into())),
            "a pre-release of the fix is not it"
        );
        let last =
            affected(json!([{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"last_affected": "2.3.1"}]}]));
        assert_eq!(affects(&last, npm, "2.3.1"), Some(None), "last_affected is affected, and nothing fixes it");
        assert_eq!(affects(&last, npm, "2.3.2"), None);
        // Events out of order in the file are sorted first; a GIT range is not a version range.
        let unsorted = affected(json!([{"type": "ECOSYSTEM", "events": [{"fixed": "3.0.0"}, {"introduced": "2.0.0"}]},
                                       {"type": "GIT", "events": [{"introduced": "0"}]}]));
        assert_eq!(affects(&unsorted, npm, "2.5.0"), Some(Some("3.0.0".into())));
        assert_eq!(affects(&unsorted, npm, "1.0.0"), None);
    }

    #[test]
    fn listed_versions_and_other_ecosystems_order() {
        let listed: Affected =
            serde_json::from_value(json!({"package": {"ecosystem": "PyPI", "name": "x"}, "versions": ["1.0", "1.1"]}))
                .unwrap();
        assert_eq!(affects(&listed, Ecosystem::Pypi, "1.1.0"), Some(None), "PEP 440: 1.1 is 1.1.0");
        assert_eq!(affects(&listed, Ecosystem::Pypi, "1.2"), None);
        let debian =
            affected(json!([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:2.36-9+deb12u4"}]}]));
        assert_eq!(
            affects(&debian, Ecosystem::Debian, "2.40-1"),
            Some(Some("1:2.36-9+deb12u4".into())),
            "the epoch wins"
        );
        assert_eq!(affects(&debian, Ecosystem::Debian, "1:2.36-9+deb12u10"), None);
        // Versions this ecosystem cannot read judge nothing.
        let garbled = affected(json!([{"type": "ECOSYSTEM", "events": [{"introduced": "banana"}]}]));
        assert_eq!(affects(&garbled, Ecosystem::Npm, "1.0.0"), None);
    }
}
