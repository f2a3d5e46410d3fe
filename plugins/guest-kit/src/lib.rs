//! What every guest would otherwise repeat. Guests reuse this crate's
//! bindings of the shared interfaces, so a `Denial` made here is the one
//! their worlds return:
//!
//! ```text
//! wit_bindgen::generate!({ world: "guardrail-policy", path: "../../wit", with: {
//!     "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
//!     "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
//! }});
//! ```

wit_bindgen::generate!({ world: "plugin-base", path: "../../wit" });

pub use mcp_runtime::plugin::{config, types};

use serde::de::DeserializeOwned;
use std::time::Duration;
use types::{Denial, Warning};

/// The plugin's settings (`plugins[].settings` plus its backend's keys).
/// Settings that cannot be read are an error the guest must answer with:
/// falling back to defaults could loosen what an operator configured.
/// Messages name the plugin by the id the operator gave it.
pub fn settings<T: DeserializeOwned>() -> Result<T, String> {
    parse_settings(&config::settings(), &config::plugin_id())
}

/// `settings`, from text (what `config::settings` returns).
pub fn parse_settings<T: DeserializeOwned>(text: &str, plugin: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| {
        format!("the {plugin} plugin's settings cannot be read ({e}); every request is refused until they are fixed")
    })
}

/// A refusal naming the field at fault, e.g. `source.image`.
pub fn denial(field: &str, reason: impl Into<String>) -> Denial {
    Denial { field: field.into(), reason: reason.into() }
}

/// A guardrail or setting not applied as asked, and why.
pub fn warning(field: &str, message: impl Into<String>) -> Warning {
    Warning { field: field.into(), message: message.into() }
}

/// How long to wait before retry `attempt` (1 for the first retry): 200 ms
/// doubling, at most 3 s; a server's `Retry-After` wins, capped alike.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doubling = Duration::from_millis(200u64.saturating_mul(1 << attempt.saturating_sub(1).min(4)));
    retry_after.unwrap_or(doubling).min(Duration::from_secs(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        allowed: Vec<String>,
    }

    #[test]
    fn unreadable_settings_are_an_error_never_defaults() {
        assert_eq!(parse_settings::<Settings>(r#"{"allowed": ["a"]}"#, "p").unwrap().allowed, ["a"]);
        assert!(parse_settings::<Settings>("{}", "p").unwrap().allowed.is_empty());
        for bad in [r#"{"allowed": "a"}"#, r#"{"alowed": []}"#, "not json"] {
            let err = parse_settings::<Settings>(bad, "docker").unwrap_err();
            assert!(err.contains("docker plugin's settings cannot be read"), "{err}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_yields_to_the_server() {
        let ms = |a| backoff(a, None).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4), ms(5), ms(9)], [200, 400, 800, 1600, 3000, 3000]);
        assert_eq!(backoff(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(backoff(1, Some(Duration::from_secs(60))), Duration::from_secs(3));
    }
}
