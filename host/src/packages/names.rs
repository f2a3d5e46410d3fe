//! Package names as each ecosystem allows them: npm's rules for new
//! packages (lowercase, URL-safe, an optional `@scope/`), PyPI's PEP 508
//! names and their PEP 503 normal form.

use super::{invalid, Ecosystem, PackageError};

pub fn check(ecosystem: Ecosystem, name: &str) -> Result<(), PackageError> {
    let checked = match ecosystem {
        Ecosystem::Npm => check_npm_name(name),
        Ecosystem::Pypi => check_python_name(name),
    };
    checked.map_err(|reason| {
        invalid("source.name", format!("'{name}' is not a {} package name: {reason}", ecosystem.as_str()))
    })
}

fn check_npm_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 214 {
        return Err("1-214 characters".into());
    }
    let bare = match name.strip_prefix('@') {
        Some(scoped) => {
            let (scope, bare) = scoped.split_once('/').ok_or("a scoped name is `@scope/name`")?;
            check_npm_part(scope)?;
            bare
        }
        None => name,
    };
    check_npm_part(bare)?;
    if ["node_modules", "favicon.ico"].contains(&bare) {
        return Err(format!("'{bare}' is reserved"));
    }
    Ok(())
}

/// One part of a name: what needs no escaping in a URL, lowercase, not
/// starting with `.` or `_`.
fn check_npm_part(part: &str) -> Result<(), String> {
    if part.is_empty() || part.starts_with(['.', '_']) {
        return Err("each part must be non-empty and not start with '.' or '_'".into());
    }
    if !part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c)) {
        return Err("lowercase letters, digits and - . _ ~ only".into());
    }
    Ok(())
}

/// A PEP 508 name (also what an extra is named by).
pub fn check_python_name(name: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let inner = name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if name.len() > 200 || !edge(name.chars().next()) || !edge(name.chars().last()) || !inner {
        return Err("letters, digits and . _ -, starting and ending with a letter or digit".into());
    }
    Ok(())
}

/// PEP 503: lowercase, every run of `-`, `_` and `.` one `-`.
pub fn normalize_python(name: &str) -> String {
    let mut normal = String::with_capacity(name.len());
    for c in name.chars() {
        if "-_.".contains(c) {
            if !normal.ends_with('-') {
                normal.push('-');
            }
        } else {
            normal.push(c.to_ascii_lowercase());
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_names() {
        for good in ["left-pad", "@modelcontextprotocol/server-everything", "a.b_c~d", "x"] {
            assert_eq!(check_npm_name(good), Ok(()), "{good}");
        }
        for bad in ["", "Left", "@scope", "@/x", "_x", ".x", "a b", "a/b", "node_modules", &"x".repeat(215)] {
            assert!(check_npm_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn python_names() {
        for good in ["mcp-server-time", "Django", "a", "zope.interface", "a_b"] {
            assert_eq!(check_python_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", "ä"] {
            assert!(check_python_name(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_python("Zope__Interface.x"), "zope-interface-x");
    }
}
