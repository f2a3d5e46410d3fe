//! Cosign's signature format for container images, with keys (no
//! certificates, no transparency log): the "simple signing" payload naming
//! the image's manifest digest, signed with ECDSA P-256 over SHA-256, the
//! signature ASN.1 DER in base64. In a registry the signatures of
//! `repo@sha256:<hex>` are the layers of the manifest tagged
//! `sha256-<hex>.sig` beside it: each layer's blob a payload, its
//! `dev.cosignproject.cosign/signature` annotation the signature.

use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::Deserialize;

pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The tag the signatures of `digest` are stored under (`sha256:ab…` → `sha256-ab….sig`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// The payload that signs `digest` as the content of `repository`, as cosign writes it.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The manifest digest a payload signs, if it is a cosign image signature.
pub fn signed_digest(payload: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(Deserialize)]
    struct Critical {
        image: Image,
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        digest: String,
    }
    let parsed: Payload = serde_json::from_slice(payload).map_err(|e| format!("not a signature payload: {e}"))?;
    if parsed.critical.kind != PAYLOAD_TYPE {
        return Err(format!("a payload of type '{}', not an image signature", parsed.critical.kind));
    }
    Ok(parsed.critical.image.digest)
}

/// A trusted public key (PEM, `BEGIN PUBLIC KEY`).
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey)
            .map_err(|e| format!("not an ECDSA P-256 public key in PEM: {e}"))
    }

    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }

    /// Whether `signature` (base64 DER) is this key's over `payload`.
    pub fn verify(&self, payload: &[u8], signature: &str) -> Result<(), String> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|e| format!("the signature is not base64: {e}"))?;
        let signature = Signature::from_der(&der).map_err(|e| format!("not an ECDSA signature: {e}"))?;
        self.0.verify(payload, &signature).map_err(|_| "the signature does not verify with the key".to_string())
    }
}

/// A signing key (PKCS#8 PEM, `BEGIN PRIVATE KEY`, unencrypted).
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut rand_core::OsRng))
    }

    pub fn from_pem(pem: &str) -> Result<PrivateKey, String> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(PrivateKey)
            .map_err(|e| format!("not an unencrypted ECDSA P-256 private key in PKCS#8 PEM: {e}"))
    }

    pub fn to_pem(&self) -> String {
        self.0.to_pkcs8_pem(LineEnding::LF).expect("a P-256 key encodes").to_string()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// The signature (base64 DER) over `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: DerSignature = self.0.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cosign").join(name)).unwrap()
    }

    #[test]
    fn a_real_cosign_signature_verifies_and_a_changed_byte_does_not() {
        let key = PublicKey::from_pem(&String::from_utf8(fixture("cosign.pub")).unwrap()).unwrap();
        let (payload, signature) = (fixture("payload.json"), String::from_utf8(fixture("signature.b64")).unwrap());
        key.verify(&payload, &signature).unwrap();
        assert_eq!(
            signed_digest(&payload).unwrap(),
            "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
        );
        // cosign writes the payload as this host does.
        assert_eq!(
            payload,
            super::payload(
                "registry-testing.svc.lan/busybox",
                "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
            )
        );
        let mut tampered = payload.clone();
        let at = tampered.iter().position(|b| *b == b'f').unwrap();
        tampered[at] = b'e';
        assert!(key.verify(&tampered, &signature).is_err());
        let other = PrivateKey::generate().public();
        assert_eq!(other.verify(&payload, &signature).unwrap_err(), "the signature does not verify with the key");
    }

    #[test]
    fn what_this_host_signs_verifies_and_keys_round_trip_through_pem() {
        let key = PrivateKey::generate();
        let again = PrivateKey::from_pem(&key.to_pem()).unwrap();
        let payload = payload("127.0.0.1:5000/mcp/fixture", "sha256:aa");
        let signature = again.sign(&payload);
        PublicKey::from_pem(&key.public().to_pem()).unwrap().verify(&payload, &signature).unwrap();
        assert_eq!(signature_tag("sha256:ab12"), "sha256-ab12.sig");
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----").is_err());
        assert!(signed_digest(br#"{"critical":{"image":{"docker-manifest-digest":"x"},"type":"other"}}"#).is_err());
    }
}
