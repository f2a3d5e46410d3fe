//! A `wasm` entry's source as the host fetches it: where from (exactly one
//! of a URL, a file in the operator's directory, an OCI artifact), the digest
//! its bytes must have, and the component's permission request.

use super::{invalid, CatalogError, ServerSource};

/// Where a component's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `http(s)://…`, from a host `runtime.components.allowed_hosts` lists.
    Url(&'a str),
    /// Relative to `runtime.components.dir`, never out of it.
    Path(&'a str),
    /// `registry/repository:tag` or `…@sha256:…`, in an allowed registry.
    Oci(&'a str),
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Url(url) => f.write_str(url),
            Origin::Path(path) => write!(f, "file {path}"),
            Origin::Oci(reference) => write!(f, "oci://{reference}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSource<'a> {
    pub origin: Origin<'a>,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub permissions: Option<&'a str>,
}

impl ComponentSource<'_> {
    /// `sha256:<hex>`, as digests are written elsewhere.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

impl ServerSource {
    /// A `wasm` source, checked; `None` for the other sources.
    pub fn component(&self) -> Option<Result<ComponentSource<'_>, CatalogError>> {
        let ServerSource::Wasm { url, path, oci, sha256, permissions } = self else { return None };
        Some(checked(url.as_deref(), path.as_deref(), oci.as_deref(), sha256, permissions.as_deref()))
    }
}

fn checked<'a>(
    url: Option<&'a str>,
    path: Option<&'a str>,
    oci: Option<&'a str>,
    sha256: &str,
    permissions: Option<&'a str>,
) -> Result<ComponentSource<'a>, CatalogError> {
    let origin = match (url, path, oci) {
        (Some(url), None, None) => {
            let parsed = reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
            if parsed.is_none_or(|u| u.host_str().is_none()) {
                return Err(invalid("source.url", format!("'{url}' is not an http(s) URL")));
            }
            Origin::Url(url)
        }
        (None, Some(path), None) => {
            let p = std::path::Path::new(path);
            let climbs = p.components().any(|c| !matches!(c, std::path::Component::Normal(_)));
            if path.is_empty() || climbs {
                return Err(invalid("source.path", "a relative path inside runtime.components.dir, without '..'"));
            }
            Origin::Path(path)
        }
        (None, None, Some(reference)) => {
            if !super::is_plausible_image(reference) {
                return Err(invalid("source.oci", format!("'{reference}' is not an OCI reference")));
            }
            Origin::Oci(reference)
        }
        _ => return Err(invalid("source", "exactly one of url, path and oci says where the component is")),
    };
    let hex = sha256.strip_prefix("sha256:").unwrap_or(sha256).to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("source.sha256", "the component's SHA-256: 64 hex digits, optionally after 'sha256:'"));
    }
    if let Some(text) = permissions {
        crate::wasm_tools::permissions::PermissionFile::parse(text).map_err(|e| invalid("source.permissions", e))?;
    }
    Ok(ComponentSource { origin, sha256: hex, permissions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(url: Option<&str>, path: Option<&str>, oci: Option<&str>, sha256: &str) -> ServerSource {
        ServerSource::Wasm {
            url: url.map(String::from),
            path: path.map(String::from),
            oci: oci.map(String::from),
            sha256: sha256.into(),
            permissions: None,
        }
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn field(source: &ServerSource) -> String {
        match source.component().unwrap() {
            Err(CatalogError::Invalid { field, .. }) => field,
            Ok(ok) => panic!("accepted {ok:?}"),
        }
    }

    #[test]
    fn one_origin_and_a_digest_or_the_field_at_fault_is_named() {
        let ok = wasm(None, Some("tools/add.wasm"), None, &format!("sha256:{}", HEX.to_uppercase()));
        let source = ok.component().unwrap().unwrap();
        assert_eq!((source.origin.clone(), source.digest()), (Origin::Path("tools/add.wasm"), format!("sha256:{HEX}")));
        let oci = wasm(None, None, Some("127.0.0.1:5000/tools/add:1.0"), HEX);
        assert_eq!(oci.component().unwrap().unwrap().origin, Origin::Oci("127.0.0.1:5000/tools/add:1.0"));
        assert_eq!(field(&wasm(None, None, None, HEX)), "source");
        assert_eq!(field(&wasm(Some("https://a.example/x.wasm"), Some("x.wasm"), None, HEX)), "source");
        assert_eq!(field(&wasm(Some("ftp://a.example/x.wasm"), None, None, HEX)), "source.url");
        for path in ["../x.wasm", "/etc/x.wasm", "a/../../x.wasm", ""] {
            assert_eq!(field(&wasm(None, Some(path), None, HEX)), "source.path", "{path}");
        }
        assert_eq!(field(&wasm(None, None, Some("not a reference"), HEX)), "source.oci");
        assert_eq!(field(&wasm(None, Some("x.wasm"), None, "sha256:abc")), "source.sha256");
        let mut bad = wasm(None, Some("x.wasm"), None, HEX);
        if let ServerSource::Wasm { permissions, .. } = &mut bad {
            *permissions = Some("permissions: [".into());
        }
        assert_eq!(field(&bad), "source.permissions");
        assert!(ServerSource::Docker { image: "a".into(), registry_secret: None }.component().is_none());
    }
}
