//! Software bills of materials, as CycloneDX 1.5 JSON. A package build's
//! comes from its lock: every package of the tree with its purl and the hash
//! its index published, the image it went into and the base image it was
//! resolved on. The document is a function of the lock and the image alone
//! (no timestamp, a serial number derived from them), so it is the same
//! every time it is asked for.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::packages::{purl, BillOfMaterials, Ecosystem};

/// The SBOM of `image`, built from the lock `bom` of an `ecosystem` package.
pub fn of_package_build(image: &str, ecosystem: Ecosystem, bom: &BillOfMaterials) -> Value {
    let components: Vec<Value> = bom
        .packages
        .iter()
        .map(|p| {
            let purl = purl(ecosystem, &p.name, &p.version);
            let mut component =
                json!({"type": "library", "bom-ref": purl, "name": p.name, "version": p.version, "purl": purl});
            if let Some((alg, content)) = hash(&p.integrity) {
                component["hashes"] = json!([{"alg": alg, "content": content}]);
            }
            component
        })
        .collect();
    let seed = Sha256::digest(format!("{image}\n{}", bom.lock).as_bytes());
    let serial = uuid::Builder::from_random_bytes(seed[..16].try_into().expect("16 bytes")).into_uuid();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "mcp-runtime", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"type": "container", "bom-ref": image, "name": image},
            "properties": [
                {"name": "mcp-runtime:lock", "value": bom.lock},
                {"name": "mcp-runtime:base-image", "value": bom.base_image}
            ]
        },
        "components": components,
    })
}

/// A published hash as CycloneDX writes one: npm's SRI (`sha512-<base64>`) or PyPI's `sha256:<hex>`.
fn hash(integrity: &str) -> Option<(&'static str, String)> {
    let alg = |name: &str| match name {
        "sha512" => Some("SHA-512"),
        "sha384" => Some("SHA-384"),
        "sha256" => Some("SHA-256"),
        "sha1" => Some("SHA-1"),
        _ => None,
    };
    if let Some((name, hex)) = integrity.split_once(':') {
        return Some((alg(name)?, hex.to_ascii_lowercase()));
    }
    let (name, encoded) = integrity.split_once('-')?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    Some((alg(name)?, hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::LockedPackage;

    fn bom() -> BillOfMaterials {
        BillOfMaterials {
            lock: "sha256:aa".into(),
            base_image: "sha256:bb".into(),
            packages: vec![
                LockedPackage {
                    name: "@scope/pkg".into(),
                    version: "1.2.3".into(),
                    integrity: "sha512-3q2+7w==".into(),
                },
                LockedPackage { name: "minimist".into(), version: "0.0.8".into(), integrity: "sha1-AQID".into() },
            ],
        }
    }

    #[test]
    fn a_lock_becomes_a_cyclonedx_document_that_is_the_same_each_time() {
        let doc = of_package_build("mcp-runtime.local/npm/x:1", Ecosystem::Npm, &bom());
        assert_eq!((doc["bomFormat"].as_str(), doc["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
        let first = &doc["components"][0];
        assert_eq!(first["purl"], "pkg:npm/%40scope/pkg@1.2.3");
        assert_eq!(first["hashes"][0], json!({"alg": "SHA-512", "content": "deadbeef"}));
        assert_eq!(doc["components"][1]["hashes"][0], json!({"alg": "SHA-1", "content": "010203"}));
        assert_eq!(doc["metadata"]["properties"][0]["value"], "sha256:aa");
        assert_eq!(doc, of_package_build("mcp-runtime.local/npm/x:1", Ecosystem::Npm, &bom()), "deterministic");
        let serial = doc["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:") && uuid::Uuid::parse_str(&serial[9..]).is_ok(), "{serial}");
    }

    #[test]
    fn pypi_hashes_and_names_are_written_as_published() {
        assert_eq!(hash("sha256:ABCD"), Some(("SHA-256", "abcd".into())));
        assert_eq!(hash("md5-AQID"), None);
        assert_eq!(purl(Ecosystem::Pypi, "Jinja2", "3.1.2"), "pkg:pypi/jinja2@3.1.2");
    }
}
