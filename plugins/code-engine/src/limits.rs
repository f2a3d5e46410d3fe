//! Code Engine's resource rules: CPU and memory come in fixed pairs, so a
//! request is rounded up to the smallest valid pair that covers it.

/// vCPU → the memory sizes (GB, decimal) allowed with it.
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

/// A valid pair as Code Engine writes it (`"0.25"`, `"0.5G"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub cpu: String,
    pub memory: String,
    /// True when the pair is larger than what was asked.
    pub rounded: bool,
}

/// The smallest pair with at least `cpu_millis` and `memory_bytes`; `None`
/// when nothing fits (above 12 vCPU / 48 GB).
pub fn pair_for(cpu_millis: u32, memory_bytes: u64) -> Option<Pair> {
    let cpu = f64::from(cpu_millis) / 1000.0;
    let gb = memory_bytes as f64 / 1e9;
    let mut candidates: Vec<(f64, f64)> = PAIRS
        .iter()
        .flat_map(|(c, mems)| mems.iter().map(move |m| (*c, *m)))
        .filter(|(c, m)| *c >= cpu - 1e-9 && *m >= gb - 1e-9)
        .collect();
    // Least memory first (the scarcer, costlier resource), then least CPU.
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    let (c, m) = *candidates.first()?;
    Some(Pair {
        cpu: trim(c),
        memory: format!("{}G", trim(m)),
        rounded: (c - cpu).abs() > 1e-9 || (m - gb).abs() > 1e-6,
    })
}

fn trim(n: f64) -> String {
    let text = format!("{n:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// App names must match `^[a-z]([-a-z0-9]*[a-z0-9])?$`; deployment ids are hex.
pub fn app_name(deployment_id: &str) -> String {
    let id: String = deployment_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    format!("mcp-{}", id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_up_to_a_valid_pair() {
        let exact = pair_for(250, 500_000_000).unwrap();
        assert_eq!((exact.cpu.as_str(), exact.memory.as_str(), exact.rounded), ("0.25", "0.5G", false));
        let up = pair_for(250, 256 << 20).unwrap();
        assert_eq!((up.cpu.as_str(), up.memory.as_str(), up.rounded), ("0.25", "0.5G", true));
        let cpu_bound = pair_for(3000, 1 << 30).unwrap();
        assert_eq!((cpu_bound.cpu.as_str(), cpu_bound.memory.as_str()), ("4", "8G"));
        assert_eq!(pair_for(100, 100_000_000).unwrap().cpu, "0.125");
        assert_eq!(pair_for(12_000, 48_000_000_000).unwrap().memory, "48G");
        assert!(pair_for(13_000, 1).is_none());
        assert!(pair_for(1000, 64_000_000_000).is_none());
    }

    #[test]
    fn app_names_follow_the_pattern() {
        assert_eq!(app_name("3f9a1c2e4b5d6f708192a3b4c5d6e7f8"), "mcp-3f9a1c2e4b5d");
    }
}
