//! What is asked of an image's signature and what came of checking it. A
//! guardrail profile's mode applies only to images a configured key covers;
//! every other image is `not_configured`, which changes nothing.

use serde::{Deserialize, Serialize};

pub use crate::guardrails::SignatureMode;

/// The outcome of checking one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignatureOutcome {
    /// Verified with the configured key so named.
    Valid { key: String },
    /// A configured key covers the image and no signature was found.
    Missing,
    /// A signature was found and does not verify.
    Invalid { why: String },
    /// No configured key covers the image.
    NotConfigured,
    /// Not verified, and why (mode `off`, no digest to verify, nothing to read it from).
    NotChecked { why: String },
}

/// The mode that applied and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignatureCheck {
    pub mode: SignatureMode,
    #[serde(flatten)]
    pub outcome: SignatureOutcome,
}

impl SignatureOutcome {
    /// The outcome of one of several images, naming it where it says why.
    pub fn of_image(self, image: &str) -> SignatureOutcome {
        match self {
            SignatureOutcome::Invalid { why } => SignatureOutcome::Invalid { why: format!("{image}: {why}") },
            SignatureOutcome::NotChecked { why } => SignatureOutcome::NotChecked { why: format!("{image}: {why}") },
            other => other,
        }
    }
}

impl Default for SignatureCheck {
    fn default() -> Self {
        SignatureCheck::not_checked(SignatureMode::Off, "signatures are not checked")
    }
}

impl SignatureCheck {
    pub fn not_checked(mode: SignatureMode, why: impl Into<String>) -> SignatureCheck {
        SignatureCheck { mode, outcome: SignatureOutcome::NotChecked { why: why.into() } }
    }

    /// The outcome in one word, as the posture and the UI name it.
    pub fn name(&self) -> &'static str {
        match self.outcome {
            SignatureOutcome::Valid { .. } => "valid",
            SignatureOutcome::Missing => "missing",
            SignatureOutcome::Invalid { .. } => "invalid",
            SignatureOutcome::NotConfigured => "not_configured",
            SignatureOutcome::NotChecked { .. } => "not_checked",
        }
    }
}
