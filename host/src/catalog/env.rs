//! The environment a server declares it reads (the MCP registry's
//! `environmentVariables`, Docker's `config.env`/`secrets`): which variables
//! a deploy must supply, which are secrets, and their defaults.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{invalid, CatalogError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredEnv {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A deploy without it (and without a default) is refused, naming it.
    #[serde(default)]
    pub required: bool,
    /// Its value is never stored in the catalog nor shown (a deploy's env
    /// values never are).
    #[serde(default)]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn validate(declared: &[DeclaredEnv]) -> Result<(), CatalogError> {
    for (i, var) in declared.iter().enumerate() {
        let field = |what: &str| format!("env_vars[{i}]{what}");
        if !is_env_name(&var.name) {
            return Err(invalid(&field(".name"), format!("'{}' is not an environment variable name", var.name)));
        }
        if declared[..i].iter().any(|v| v.name == var.name) {
            return Err(invalid(&field(".name"), format!("'{}' is declared twice", var.name)));
        }
        if var.secret && var.default.is_some() {
            return Err(invalid(&field(".default"), "a secret has no default: its value is the deployer's to give"));
        }
    }
    Ok(())
}

/// The environment a deploy runs with: the declared defaults, under the
/// entry's fixed values, under what the deploy gives; a required variable
/// still missing is refused, named as the deploy's `env.NAME`.
pub fn resolve(
    declared: &[DeclaredEnv],
    fixed: &BTreeMap<String, String>,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, CatalogError> {
    let mut env: BTreeMap<String, String> =
        declared.iter().filter_map(|v| Some((v.name.clone(), v.default.clone()?))).collect();
    env.extend(fixed.clone());
    env.extend(given.clone());
    if let Some(missing) = declared.iter().find(|v| v.required && !env.contains_key(&v.name)) {
        let what = if missing.secret { "a secret" } else { "a variable" };
        let about = if missing.description.is_empty() { String::new() } else { format!(" ({})", missing.description) };
        return Err(invalid(&format!("env.{}", missing.name), format!("{what} the server requires{about}")));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, required: bool, secret: bool, default: Option<&str>) -> DeclaredEnv {
        DeclaredEnv {
            name: name.into(),
            description: String::new(),
            required,
            secret,
            default: default.map(Into::into),
        }
    }

    #[test]
    fn required_variables_must_be_given_and_defaults_fill_the_rest() {
        let declared = [
            var("API_KEY", true, true, None),
            var("REGION", true, false, Some("eu")),
            var("DEBUG", false, false, None),
        ];
        let none = BTreeMap::new();
        let e = resolve(&declared, &none, &none).unwrap_err();
        assert_eq!(e.to_string(), "env.API_KEY: a secret the server requires");
        let given = BTreeMap::from([("API_KEY".to_string(), "k".to_string())]);
        let env = resolve(&declared, &none, &given).unwrap();
        assert_eq!(env, BTreeMap::from([("API_KEY".into(), "k".into()), ("REGION".into(), "eu".into())]));
        let fixed = BTreeMap::from([("REGION".to_string(), "us".to_string())]);
        assert_eq!(resolve(&declared, &fixed, &given).unwrap()["REGION"], "us", "the entry's value over the default");
    }

    #[test]
    fn declarations_are_checked_naming_the_field() {
        let e = validate(&[var("1X", false, false, None)]).unwrap_err();
        assert!(e.to_string().starts_with("env_vars[0].name"), "{e}");
        let e = validate(&[var("A", false, false, None), var("A", true, false, None)]).unwrap_err();
        assert!(e.to_string().starts_with("env_vars[1].name"), "{e}");
        let e = validate(&[var("TOKEN", false, true, Some("x"))]).unwrap_err();
        assert!(e.to_string().starts_with("env_vars[0].default"), "{e}");
    }
}
