//! Image references and the registry allowlist, as Docker reads references:
//! the first path part is a registry only when it has a '.', a ':' or is
//! `localhost`; otherwise the image lives on Docker Hub (`docker.io`), and a
//! bare name such as `redis` means `docker.io/library/redis`.

/// The registry host of an image reference.
pub fn of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The reference written out in full (`redis:7` → `docker.io/library/redis:7`).
pub fn canonical(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => image.to_string(),
        Some(_) => format!("docker.io/{image}"),
        None => format!("docker.io/library/{image}"),
    }
}

/// Whether the image lives under any of `places`: a registry (`ghcr.io`) or a
/// path within one (`docker.io/library`), matched on whole path segments.
pub fn is_allowed(image: &str, allowed: &[String]) -> bool {
    let full = canonical(image);
    allowed.iter().any(|entry| {
        let entry = entry.trim_end_matches('/');
        full.strip_prefix(entry).is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The reference without its tag and digest (`ghcr.io/org/x:1@sha256:…` → `ghcr.io/org/x`).
pub fn repository(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => name,
    }
}

/// The digest a reference pins (`…@sha256:…`), if it names one.
pub fn digest(image: &str) -> Option<&str> {
    image.split_once('@').map(|(_, digest)| digest).filter(|d| d.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_read_like_docker_reads_them() {
        assert_eq!(of("redis:7"), "docker.io");
        assert_eq!(of("mcp/filesystem:1"), "docker.io");
        assert_eq!(of("ghcr.io/org/x:1"), "ghcr.io");
        assert_eq!(of("127.0.0.1:5000/fixture:test"), "127.0.0.1:5000");
        assert_eq!(of("localhost/x"), "localhost");
    }

    #[test]
    fn repositories_and_digests_are_read_from_references() {
        assert_eq!(repository("127.0.0.1:5000/fixture:test"), "127.0.0.1:5000/fixture");
        assert_eq!(repository("127.0.0.1:5000/fixture"), "127.0.0.1:5000/fixture");
        assert_eq!(repository("ghcr.io/org/x:1@sha256:ab"), "ghcr.io/org/x");
        assert_eq!(repository("redis"), "redis");
        assert_eq!(digest("ghcr.io/org/x:1@sha256:ab"), Some("sha256:ab"));
        assert_eq!(digest("ghcr.io/org/x:1"), None);
    }

    #[test]
    fn allowlist_matches_whole_path_segments() {
        let allowed = vec!["docker.io/library".to_string(), "ghcr.io".to_string()];
        assert!(is_allowed("redis:7", &allowed));
        assert!(is_allowed("ghcr.io/org/x:1", &allowed));
        assert!(!is_allowed("mcp/filesystem:1", &allowed));
        assert!(!is_allowed("ghcr.io.evil.com/x:1", &allowed));
        assert!(!is_allowed("evil.example.com/x:1", &allowed));
        assert!(!is_allowed("x:1", &[]));
    }
}
