//! Which destinations a deployment may reach, read as users write them:
//! `api.example.com` (that name), `*.example.com` (its subdomains, not the
//! apex), an optional `:port` (443 and 80 otherwise), and IP literals only
//! when listed as such. A permitted name must also resolve somewhere public:
//! loopback, link-local, private and shared ranges are refused unless the
//! address itself is listed, so DNS cannot point a name back into the host.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// `*.example.com`: stored as `.example.com`.
    Subdomains(String),
    Address(IpAddr),
    /// `10.0.0.0/8`: every address in it.
    Network(IpAddr, u8),
}

impl Host {
    fn covers(&self, ip: IpAddr) -> bool {
        match *self {
            Host::Address(listed) => listed == ip,
            Host::Network(base, bits) => in_network(ip, base, bits),
            _ => false,
        }
    }
}

fn in_network(ip: IpAddr, base: IpAddr, bits: u8) -> bool {
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: Host,
    port: Option<u16>,
    /// As written, for events and metrics.
    text: String,
}

/// What lets a connection through in learn mode, as metrics and events name
/// the rule: every public destination, recorded, so an allowlist can be
/// proposed from what was seen.
pub const LEARN_MODE: &str = "learn mode";

#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    rules: Vec<Rule>,
    learn: bool,
    /// Networks the listed names may resolve into though they are not
    /// public (a private package mirror): reached by name only, never as a
    /// literal address.
    resolvable: Vec<(IpAddr, u8)>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotListed,
    /// An IP literal that is not listed as one.
    AddressLiteral,
    /// The name resolves to an address the deployment may not reach.
    Resolved(IpAddr),
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Refusal::NotListed => "not in the allowlist".into(),
            Refusal::AddressLiteral => "an address not listed as one".into(),
            Refusal::Resolved(ip) => format!("resolves to {ip}, which is not public or is this host's"),
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `host:port`, `[v6]:port`, `host` or a bare IPv6 address.
fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed '['")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("port '{p}' is not a number"))?),
            None if after.is_empty() => None,
            None => return Err(format!("'{after}' after the address")),
        };
        return Ok((host, port));
    }
    match entry.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Ok((entry, None)),
        Some((host, port)) => Ok((host, Some(port.parse().map_err(|_| format!("port '{port}' is not a number"))?))),
        None => Ok((entry, None)),
    }
}

/// `10.0.0.0/8`, or one address (all its bits): a network as written.
pub fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (base, bits) = text.split_once('/').unwrap_or((text, ""));
    let base: IpAddr = base.trim().parse().map_err(|_| format!("'{base}' is not an IP address"))?;
    let max = if base.is_ipv4() { 32 } else { 128 };
    match bits {
        "" => Ok((base, max)),
        bits => match bits.parse::<u8>() {
            Ok(bits) if bits <= max => Ok((base, bits)),
            _ => Err(format!("a prefix length is 0-{max}")),
        },
    }
}

impl Allowlist {
    /// The list as configured; an error names the entry.
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        let mut rules = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let fail = |why: String| format!("allowed_hosts[{i}] '{entry}': {why}");
            let (host, port) = split_port(entry.trim()).map_err(fail)?;
            let host = normalise(host);
            let host = if let Ok(ip) = host.parse::<IpAddr>() {
                Host::Address(ip)
            } else if host.contains('/') {
                let (base, bits) = parse_network(&host).map_err(fail)?;
                Host::Network(base, bits)
            } else if let Some(domain) = host.strip_prefix("*.") {
                if domain.is_empty() || domain.contains('*') {
                    return Err(fail("a wildcard names a domain: *.example.com".into()));
                }
                Host::Subdomains(format!(".{domain}"))
            } else if host.is_empty() || host.contains('*') || host.contains('/') {
                return Err(fail("a host name, *.domain or an IP address".into()));
            } else {
                Host::Exact(host)
            };
            rules.push(Rule { host, port, text: entry.clone() });
        }
        Ok(Allowlist { rules, learn: false, resolvable: Vec::new() })
    }

    /// The same list, its names allowed to resolve into `networks` too.
    pub fn resolving_into(self, networks: &[(IpAddr, u8)]) -> Allowlist {
        Allowlist { resolvable: networks.to_vec(), ..self }
    }

    /// The same list in learn mode: everything public passes too, to be recorded.
    pub fn learning(self) -> Allowlist {
        Allowlist { learn: true, ..self }
    }

    /// Learn mode: everything public passes, to be recorded.
    pub fn learns(&self) -> bool {
        self.learn
    }

    fn port_fits(rule: &Rule, port: u16) -> bool {
        rule.port.map_or(port == 443 || port == 80, |p| p == port)
    }

    /// The entry that allows `host` (a name or an IP literal) on `port`.
    pub fn allows(&self, host: &str, port: u16) -> Result<&str, Refusal> {
        let name = normalise(host.trim_start_matches('[').trim_end_matches(']'));
        if self.learn {
            // Any name or address; where it leads is checked by `reachable`.
            return Ok(LEARN_MODE);
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self
                .rules
                .iter()
                .find(|r| r.host.covers(ip) && Self::port_fits(r, port))
                .map(|r| r.text.as_str())
                .ok_or(Refusal::AddressLiteral);
        }
        self.rules
            .iter()
            .find(|r| {
                let named = match &r.host {
                    Host::Exact(exact) => *exact == name,
                    Host::Subdomains(suffix) => name.ends_with(suffix.as_str()),
                    _ => false,
                };
                named && Self::port_fits(r, port)
            })
            .map(|r| r.text.as_str())
            .ok_or(Refusal::NotListed)
    }

    /// Whether DNS may answer `name`: some entry names it, whatever the port.
    pub fn names(&self, name: &str) -> bool {
        let name = normalise(name);
        if self.learn {
            return true;
        }
        self.rules.iter().any(|r| match &r.host {
            Host::Exact(exact) => *exact == name,
            Host::Subdomains(suffix) => name.ends_with(suffix.as_str()),
            _ => false,
        })
    }

    /// Whether `ip` is in a network the names may resolve into: the
    /// operator's word that such a name may lead there, even to this host.
    pub fn resolves_into(&self, ip: IpAddr) -> bool {
        self.resolvable.iter().any(|(base, bits)| in_network(ip, *base, *bits))
    }

    /// Whether a name may be reached at `ip`: public addresses, one listed
    /// itself, or one in the networks the names may resolve into.
    pub fn reachable(&self, ip: IpAddr) -> Result<(), Refusal> {
        if is_public(ip) || self.resolves_into(ip) || self.rules.iter().any(|r| r.host.covers(ip)) {
            Ok(())
        } else {
            Err(Refusal::Resolved(ip))
        }
    }
}

/// Not loopback, link-local (cloud metadata), private, shared, multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_private()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_match_as_written_and_wildcards_mean_subdomains_only() {
        let l = list(&["api.openai.com", "*.googleapis.com"]);
        assert!(l.allows("api.openai.com", 443).is_ok());
        assert!(l.allows("API.OpenAI.com.", 443).is_ok(), "case and a trailing dot do not matter");
        assert_eq!(l.allows("openai.com", 443), Err(Refusal::NotListed));
        assert_eq!(l.allows("evil-api.openai.com", 443), Err(Refusal::NotListed));
        assert!(l.allows("storage.googleapis.com", 443).is_ok());
        assert!(l.allows("a.b.googleapis.com", 80).is_ok());
        assert_eq!(l.allows("googleapis.com", 443), Err(Refusal::NotListed), "the apex only when listed too");
        assert_eq!(l.allows("googleapis.com.evil.net", 443), Err(Refusal::NotListed));
        assert_eq!(l.allows("xgoogleapis.com", 443), Err(Refusal::NotListed));
    }

    #[test]
    fn ports_default_to_https_and_http_and_can_be_named() {
        let l = list(&["api.example.com", "db.example.com:5432"]);
        assert!(l.allows("api.example.com", 80).is_ok());
        assert_eq!(l.allows("api.example.com", 22), Err(Refusal::NotListed));
        assert!(l.allows("db.example.com", 5432).is_ok());
        assert_eq!(l.allows("db.example.com", 443), Err(Refusal::NotListed));
    }

    #[test]
    fn ip_literals_pass_only_when_listed_as_such() {
        let l = list(&["api.example.com", "10.0.0.5:8443", "[fd00::1]:443"]);
        assert_eq!(l.allows("93.184.216.34", 443), Err(Refusal::AddressLiteral));
        assert!(l.allows("10.0.0.5", 8443).is_ok());
        assert_eq!(l.allows("10.0.0.5", 443), Err(Refusal::AddressLiteral));
        assert!(l.allows("[fd00::1]", 443).is_ok());
    }

    #[test]
    fn names_may_not_resolve_into_the_host_or_private_networks_unless_listed() {
        let l = list(&["api.example.com", "10.0.0.5"]);
        for ip in
            ["127.0.0.1", "169.254.169.254", "172.17.0.1", "192.168.1.1", "100.64.0.1", "::1", "fe80::1", "fd00::2"]
        {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(l.reachable(ip), Err(Refusal::Resolved(ip)), "{ip}");
        }
        assert!(l.reachable("93.184.216.34".parse().unwrap()).is_ok());
        assert!(l.reachable("10.0.0.5".parse().unwrap()).is_ok(), "listed itself");
        assert!(l.reachable("::ffff:127.0.0.1".parse().unwrap()).is_err(), "mapped loopback");
    }

    #[test]
    fn learn_mode_lets_anything_public_through_and_only_listed_private_addresses() {
        let l = list(&["10.0.0.5"]).learning();
        assert!(l.learns() && l.names("anything.example") && l.allows("anything.example", 8443) == Ok(LEARN_MODE));
        assert!(l.reachable("93.184.216.34".parse().unwrap()).is_ok());
        assert!(l.reachable("10.0.0.5".parse().unwrap()).is_ok());
        assert!(
            l.reachable("127.0.0.1".parse().unwrap()).is_err() && l.reachable("10.0.0.6".parse().unwrap()).is_err()
        );
        assert!(!list(&["api.example.com"]).learns());
        let e = Allowlist::parse(&["*:audit".into()]).unwrap_err();
        assert!(e.contains("'*:audit'"), "learn mode is no allowlist entry: {e}");
    }

    #[test]
    fn entries_that_cannot_be_read_are_refused_naming_them() {
        for bad in ["*", "*.", "a.*.com", "x:port", "[::1", "http://a.com", "10.0.0.0/33", "x/8"] {
            let e = Allowlist::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.starts_with("allowed_hosts[0]"), "{bad}: {e}");
        }
        let networks = list(&["10.0.0.0/8", "fd00::/8"]);
        assert!(networks.allows("10.1.2.3", 443).is_ok() && networks.reachable("10.9.9.9".parse().unwrap()).is_ok());
        assert!(networks.allows("11.0.0.1", 443).is_err() && networks.allows("fd12::1", 80).is_ok());
        assert!(list(&["api.example.com"]).names("API.example.com"));
        assert!(!list(&["*.example.com"]).names("example.com"));
    }

    #[test]
    fn names_may_resolve_into_networks_their_literals_may_not_reach() {
        let mirror = Allowlist::parse(&["npm.mirror.example:4873".into()])
            .unwrap()
            .resolving_into(&[("192.0.2.0".parse().unwrap(), 24)]);
        assert!(mirror.allows("npm.mirror.example", 4873).is_ok());
        assert!(mirror.reachable("192.0.2.80".parse().unwrap()).is_ok(), "where the name resolves");
        assert_eq!(mirror.allows("192.0.2.80", 4873), Err(Refusal::AddressLiteral), "not as a literal");
        assert!(
            mirror.reachable("10.0.0.1".parse().unwrap()).is_err()
                && mirror.reachable("127.0.0.1".parse().unwrap()).is_err()
        );
    }
}
