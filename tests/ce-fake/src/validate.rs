//! The reference's validation rules: name patterns, quantities and the valid
//! CPU/memory pairs.

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`, 1-63 characters (apps).
pub fn app_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, 1-63 characters (builds, build runs).
pub fn build_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// DNS subdomain, at most 253 characters (secrets).
pub fn secret_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|part| !part.is_empty() && !part.starts_with('-') && !part.ends_with('-'))
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// vCPU → the memory sizes (GB) allowed with it. Written out here from the
/// reference, not shared with the plugin: an oracle that reused the plugin's
/// table could never catch a wrong one.
const PAIRS: &[(f64, &[f64])] = &[
    (0.125, &[0.25, 0.5, 1.0]),
    (0.25, &[0.5, 1.0, 2.0]),
    (0.5, &[1.0, 2.0, 4.0]),
    (1.0, &[2.0, 4.0, 8.0]),
    (2.0, &[4.0, 8.0, 16.0]),
    (4.0, &[8.0, 16.0, 32.0]),
    (6.0, &[12.0, 24.0, 48.0]),
    (8.0, &[16.0, 32.0]),
    (10.0, &[20.0, 40.0]),
    (12.0, &[24.0, 48.0]),
];

/// A quantity string `^([0-9.]+)([eEinumkKMGTPB]*)$` of at most 10 characters, in base units.
pub fn quantity(text: &str) -> Option<f64> {
    if text.is_empty() || text.len() > 10 {
        return None;
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "" => 1.0,
        "m" => 1e-3,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

/// Whether `cpu` vCPU with `memory` is one of Code Engine's combinations.
pub fn valid_pair(cpu: &str, memory: &str) -> bool {
    let (Some(cpu), Some(bytes)) = (quantity(cpu), quantity(memory)) else { return false };
    let gb = bytes / 1e9;
    PAIRS.iter().any(|(c, mems)| (c - cpu).abs() < 1e-9 && mems.iter().any(|m| (m - gb).abs() < 1e-6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_follow_the_reference() {
        assert!(valid_pair("1", "4G"));
        assert!(valid_pair("0.25", "0.5G"));
        assert!(valid_pair("0.25", "500M"));
        assert!(valid_pair("12", "48G"));
        assert!(!valid_pair("0.25", "4G"));
        assert!(!valid_pair("3", "6G"));
        assert!(!valid_pair("16", "64G"));
        assert!(!valid_pair("1", "lots"));
    }

    #[test]
    fn names_follow_the_patterns() {
        assert!(app_name("mcp-echo-1"));
        assert!(!app_name("1abc") && !app_name("Abc") && !app_name("abc-") && !app_name(""));
        assert!(build_name("1abc"));
        assert!(secret_name("registry.icr") && !secret_name("-x"));
    }
}
