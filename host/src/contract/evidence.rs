//! The supply-chain evidence as `supply-chain.evidence` answers it (1.6).

use super::bindings::supply_chain as wit;
use crate::supply_chain::osv::Severity;
use crate::supply_chain::{Evidence, SignatureMode, SignatureOutcome};

impl From<&Evidence> for wit::Evidence {
    fn from(e: &Evidence) -> wit::Evidence {
        let findings = e.vulnerabilities.iter().flat_map(|r| &r.findings);
        let mut counts = wit::SeverityCounts { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 };
        let findings: Vec<wit::Finding> = findings
            .map(|f| {
                let severity = severity(f.severity);
                let count = match severity {
                    wit::Severity::Critical => &mut counts.critical,
                    wit::Severity::High => &mut counts.high,
                    wit::Severity::Medium => &mut counts.medium,
                    wit::Severity::Low => &mut counts.low,
                    wit::Severity::Unknown => &mut counts.unknown,
                };
                *count += 1;
                wit::Finding {
                    advisory: f.advisory.clone(),
                    aliases: f.aliases.clone(),
                    name: f.package.clone(),
                    version: f.version.clone(),
                    fixed: f.fixed.clone(),
                    severity,
                }
            })
            .collect();
        wit::Evidence {
            digest: e.digest.clone(),
            signature_mode: match e.signature.mode {
                SignatureMode::Off => wit::SignatureMode::Off,
                SignatureMode::Warn => wit::SignatureMode::Warn,
                SignatureMode::Require => wit::SignatureMode::Require,
            },
            signature: match &e.signature.outcome {
                SignatureOutcome::Valid { key } => wit::SignatureOutcome::Valid(key.clone()),
                SignatureOutcome::Missing => wit::SignatureOutcome::Missing,
                SignatureOutcome::Invalid { why } => wit::SignatureOutcome::Invalid(why.clone()),
                SignatureOutcome::NotConfigured => wit::SignatureOutcome::NotConfigured,
                SignatureOutcome::NotChecked { why } => wit::SignatureOutcome::NotChecked(why.clone()),
            },
            judged: e.vulnerabilities.is_some(),
            counts,
            findings,
        }
    }
}

fn severity(s: Severity) -> wit::Severity {
    match s {
        Severity::Critical => wit::Severity::Critical,
        Severity::High => wit::Severity::High,
        Severity::Medium => wit::Severity::Medium,
        Severity::Low => wit::Severity::Low,
        Severity::Unknown => wit::Severity::Unknown,
    }
}
