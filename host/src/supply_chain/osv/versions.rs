//! Version order as each ecosystem defines it, for OSV ranges: npm by
//! semver (pre-releases before their release), PyPI by PEP 440, Debian by
//! dpkg's rules (epoch, then upstream and revision compared part by part,
//! `~` before anything, even the end).

use std::cmp::Ordering;

/// An ecosystem whose versions the matcher can order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    Npm,
    Pypi,
    Debian,
}

impl From<crate::packages::Ecosystem> for Ecosystem {
    fn from(ecosystem: crate::packages::Ecosystem) -> Ecosystem {
        match ecosystem {
            crate::packages::Ecosystem::Npm => Ecosystem::Npm,
            crate::packages::Ecosystem::Pypi => Ecosystem::Pypi,
        }
    }
}

impl Ecosystem {
    /// The ecosystem an OSV `package.ecosystem` names (`Debian:12` is Debian).
    pub fn of_osv(name: &str) -> Option<Ecosystem> {
        match name.split(':').next()? {
            "npm" => Some(Ecosystem::Npm),
            "PyPI" => Some(Ecosystem::Pypi),
            "Debian" => Some(Ecosystem::Debian),
            _ => None,
        }
    }

    /// A package name as the ecosystem compares them (PyPI: PEP 503).
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Pypi => crate::packages::normalize_python(name),
            Ecosystem::Npm | Ecosystem::Debian => name.to_string(),
        }
    }

    /// `a` against `b`; `None` when either is not a version of this ecosystem.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::Npm => {
                let (a, b) = (semver::Version::parse(a).ok()?, semver::Version::parse(b).ok()?);
                Some(a.cmp_precedence(&b))
            }
            Ecosystem::Pypi => {
                let a: pep440_rs::Version = a.parse().ok()?;
                let b: pep440_rs::Version = b.parse().ok()?;
                Some(a.cmp(&b))
            }
            Ecosystem::Debian => Some(compare_debian(a, b)),
        }
    }
}

/// dpkg's version order: `[epoch:]upstream[-revision]`.
pub fn compare_debian(a: &str, b: &str) -> Ordering {
    let split = |v: &str| {
        let (epoch, rest) = match v.split_once(':') {
            Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => {
                (epoch.parse::<u64>().unwrap_or(0), rest)
            }
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream.to_string(), revision.to_string())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_debian_part(&ua, &ub)).then_with(|| compare_debian_part(&ra, &rb))
}

/// One part (upstream or revision): alternating runs of non-digits (by
/// dpkg's character order) and digits (by value).
fn compare_debian_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    // Letters before other characters; `~` before everything, even the end.
    let weight = |c: Option<&u8>| -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_alphabetic() => *c as i32,
            Some(c) => *c as i32 + 256,
        }
    };
    while !a.is_empty() || !b.is_empty() {
        // The non-digit run.
        loop {
            let (ca, cb) = (a.first().filter(|c| !c.is_ascii_digit()), b.first().filter(|c| !c.is_ascii_digit()));
            if ca.is_none() && cb.is_none() {
                break;
            }
            match weight(ca).cmp(&weight(cb)) {
                Ordering::Equal => {
                    a = &a[ca.is_some() as usize..];
                    b = &b[cb.is_some() as usize..];
                }
                other => return other,
            }
        }
        // The digit run, by value.
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (na, nb) = (digits(a), digits(b));
        let value = |s: &[u8]| s.iter().fold(0u128, |n, c| n.saturating_mul(10).saturating_add((c - b'0') as u128));
        match value(&a[..na]).cmp(&value(&b[..nb])) {
            Ordering::Equal => {
                a = &a[na..];
                b = &b[nb..];
            }
            other => return other,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn npm_orders_pre_releases_before_their_release() {
        let npm = Ecosystem::Npm;
        assert_eq!(npm.compare("1.2.6-beta.1", "1.2.6"), Some(Less));
        assert_eq!(npm.compare("1.2.5", "1.2.6-beta.1"), Some(Less));
        assert_eq!(npm.compare("1.10.0", "1.9.9"), Some(Greater));
        assert_eq!(npm.compare("not a version", "1.0.0"), None);
    }

    #[test]
    fn pypi_orders_by_pep_440() {
        let pypi = Ecosystem::Pypi;
        assert_eq!(pypi.compare("3.1.3rc1", "3.1.3"), Some(Less));
        assert_eq!(pypi.compare("3.1.3.post1", "3.1.3"), Some(Greater));
        assert_eq!(pypi.compare("1!0.1", "9.9"), Some(Greater), "an epoch outranks the release");
        assert_eq!(pypi.compare("3.1", "3.1.0"), Some(Equal));
        assert_eq!(Ecosystem::Pypi.normalize("Jinja2"), "jinja2");
        assert_eq!(Ecosystem::Pypi.normalize("mcp_server.time"), "mcp-server-time");
    }

    #[test]
    fn debian_orders_epochs_tildes_and_revisions_as_dpkg_does() {
        assert_eq!(compare_debian("1:1.0", "2.0"), Greater, "the epoch first");
        assert_eq!(compare_debian("1.0~rc1", "1.0"), Less, "a tilde sorts before the end");
        assert_eq!(compare_debian("1.0~rc1", "1.0~rc2"), Less);
        assert_eq!(compare_debian("1.0~~", "1.0~"), Less);
        assert_eq!(compare_debian("1.0-1", "1.0-1+deb12u1"), Less);
        assert_eq!(compare_debian("1.0a", "1.0+"), Less, "letters before other characters");
        assert_eq!(compare_debian("2.36-9+deb12u4", "2.36-9+deb12u10"), Less, "digits by value");
        assert_eq!(compare_debian("0:1.2-3", "1.2-3"), Equal);
        assert_eq!(compare_debian("1.2.3", "1.2.3"), Equal);
        assert_eq!(Ecosystem::of_osv("Debian:13"), Some(Ecosystem::Debian));
    }
}
