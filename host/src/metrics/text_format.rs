//! The Prometheus text format (0.0.4), for scrapers that do not ask for
//! OpenMetrics (`curl | promtool check metrics` among them).
//!
//! `prometheus-client` writes OpenMetrics only. The two differ in what
//! matters here in two ways: OpenMetrics names a counter's family without
//! the `_total` its samples carry, and ends with `# EOF`. The 0.0.4 form names
//! the family as its samples, and has no end marker.

/// The media type of what `from_openmetrics` returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn from_openmetrics(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            continue;
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (family, said) = help.split_once(' ').unwrap_or((help, ""));
            let counter = lines.peek().is_some_and(|next| *next == format!("# TYPE {family} counter"));
            if counter {
                lines.next();
                text += &format!("# HELP {family}_total {said}\n# TYPE {family}_total counter\n");
                continue;
            }
        }
        text += line;
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_are_named_as_their_samples_and_the_end_marker_goes() {
        let openmetrics = "# HELP a_calls Calls.\n# TYPE a_calls counter\na_calls_total{x=\"1\"} 2\n\
                           # HELP a_up Up.\n# TYPE a_up gauge\na_up 1\n# EOF\n";
        assert_eq!(
            super::from_openmetrics(openmetrics),
            "# HELP a_calls_total Calls.\n# TYPE a_calls_total counter\na_calls_total{x=\"1\"} 2\n\
             # HELP a_up Up.\n# TYPE a_up gauge\na_up 1\n"
        );
    }
}
