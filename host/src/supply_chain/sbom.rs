//! Software bills of materials, as CycloneDX 1.5 JSON. A package build's
//! comes from its lock: every package of the tree with its purl and the hash
//! its index published, the image it went into and the base image it was
//! resolved on, and the base image's system packages. Any other image's comes
//! from its package databases (`inventory`). The document is a function of the lock and the image alone
//! (no timestamp, a serial number derived from them), so it is the same
//! every time it is asked for.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::inventory::{InstalledPackage, Inventory};
use crate::packages::{purl, BillOfMaterials, Ecosystem};

/// The SBOM of `image`, built from the lock `bom` of an `ecosystem` package
/// and the system packages of the image it went into (its base image's).
pub fn of_package_build(
    image: &str,
    ecosystem: Ecosystem,
    bom: &BillOfMaterials,
    system: &[InstalledPackage],
) -> Value {
    let mut components: Vec<Value> = bom
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
    components.extend(system.iter().filter(|p| p.is_system()).map(component));
    let properties = json!([
        {"name": "mcp-runtime:lock", "value": bom.lock},
        {"name": "mcp-runtime:base-image", "value": bom.base_image}
    ]);
    document(image, &bom.lock, properties, components)
}

/// The SBOM of an image read from its package databases (`inventory`).
pub fn of_image(image: &str, inventory: &Inventory) -> Value {
    let components = inventory.packages.iter().map(component).collect();
    let properties = json!([{"name": "mcp-runtime:image-id", "value": inventory.image_id}]);
    document(image, &inventory.image_id, properties, components)
}

fn component(p: &InstalledPackage) -> Value {
    let purl = p.purl();
    let kind = if p.is_system() { "operating-system-package" } else { "library" };
    json!({"type": "library", "bom-ref": purl, "name": p.name, "version": p.version, "purl": purl,
           "properties": [{"name": "mcp-runtime:kind", "value": kind}]})
}

/// A WebAssembly component's: the component itself, by its digest, and
/// what its `producers` sections name (languages, tools, SDKs).
pub fn of_component(name: &str, sha256: &str, producers: &[super::producers::Producer]) -> Value {
    let components = producers
        .iter()
        .map(|p| {
            let kind = if p.field == "language" { "platform" } else { "application" };
            json!({"type": kind, "bom-ref": format!("{}:{}@{}", p.field, p.name, p.version), "name": p.name,
                   "version": p.version, "properties": [{"name": "mcp-runtime:producers-field", "value": p.field}]})
        })
        .collect();
    let properties = json!([{"name": "mcp-runtime:kind", "value": "wasm-component"}]);
    let mut document = document(name, sha256, properties, components);
    document["metadata"]["component"] = json!({"type": "application", "bom-ref": format!("sha256:{sha256}"), "name": name,
        "hashes": [{"alg": "SHA-256", "content": sha256}]});
    document
}

/// The document around `components`: no timestamp, a serial number derived
/// from the image and `content`, so it is the same each time it is asked for.
fn document(image: &str, content: &str, properties: Value, components: Vec<Value>) -> Value {
    let seed = Sha256::digest(format!("{image}\n{content}").as_bytes());
    let serial = uuid::Builder::from_random_bytes(seed[..16].try_into().expect("16 bytes")).into_uuid();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "mcp-runtime", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"type": "container", "bom-ref": image, "name": image},
            "properties": properties
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
        let doc = of_package_build("mcp-runtime.local/npm/x:1", Ecosystem::Npm, &bom(), &[]);
        assert_eq!((doc["bomFormat"].as_str(), doc["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
        let first = &doc["components"][0];
        assert_eq!(first["purl"], "pkg:npm/%40scope/pkg@1.2.3");
        assert_eq!(first["hashes"][0], json!({"alg": "SHA-512", "content": "deadbeef"}));
        assert_eq!(doc["components"][1]["hashes"][0], json!({"alg": "SHA-1", "content": "010203"}));
        assert_eq!(doc["metadata"]["properties"][0]["value"], "sha256:aa");
        assert_eq!(doc, of_package_build("mcp-runtime.local/npm/x:1", Ecosystem::Npm, &bom(), &[]), "deterministic");
        let serial = doc["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:") && uuid::Uuid::parse_str(&serial[9..]).is_ok(), "{serial}");
    }

    #[test]
    fn an_image_read_from_its_databases_lists_every_package_with_its_purl() {
        use crate::supply_chain::inventory::Kind;
        let deb = InstalledPackage {
            kind: Kind::Deb,
            name: "bash".into(),
            version: "5.2".into(),
            distro: Some("debian".into()),
        };
        let npm = InstalledPackage { kind: Kind::Npm, name: "minimist".into(), version: "1.2.5".into(), distro: None };
        let inventory = Inventory { image_id: "sha256:cc".into(), packages: vec![deb.clone(), npm] };
        let doc = of_image("127.0.0.1:5000/x@sha256:dd", &inventory);
        let purls: Vec<&str> =
            doc["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap()).collect();
        assert_eq!(purls, ["pkg:deb/debian/bash@5.2", "pkg:npm/minimist@1.2.5"]);
        // A package build lists its lock, and of the image only the system's packages.
        let built = of_package_build("mcp-runtime.local/npm/x:1", Ecosystem::Npm, &bom(), &inventory.packages);
        assert_eq!(built["components"].as_array().unwrap().len(), 3);
        assert_eq!(built["components"][2]["purl"], "pkg:deb/debian/bash@5.2");
    }

    #[test]
    fn pypi_hashes_and_names_are_written_as_published() {
        assert_eq!(hash("sha256:ABCD"), Some(("SHA-256", "abcd".into())));
        assert_eq!(hash("md5-AQID"), None);
        assert_eq!(purl(Ecosystem::Pypi, "Jinja2", "3.1.2"), "pkg:pypi/jinja2@3.1.2");
    }
}
