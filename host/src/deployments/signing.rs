//! Images the host builds carry its signature when a signing key is
//! configured (`runtime.supply_chain.signing_key`): pushed beside the image
//! in its registry as cosign does, or kept in the store by image id when the
//! image stays on the host's engine. Then the built image's signature is
//! checked as its profile asks, like a pulled image's at check time: the
//! operator trusts the host's key for what it builds (`mcp-runtime.local`,
//! or the registry it pushes to) like any other key.

use serde::{Deserialize, Serialize};

use super::{Runtime, RuntimeError};
use crate::deployment::Deployment;
use crate::events::{EventData, ImageSigned};
use crate::store::{NewEvent, Table};
use crate::supply_chain::cosign;
use crate::supply_chain::signatures::{self, ImageToCheck};
use crate::supply_chain::{SignatureCheck, SignatureMode, SignatureOutcome};

/// A signature of an image that was not pushed, as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeptSignature {
    /// The simple-signing payload (JSON text).
    pub payload: String,
    /// Base64 DER.
    pub signature: String,
    pub key: String,
}

impl Runtime {
    /// Signs the image built for `d` (named `image`, its content `content`)
    /// when a signing key is configured, then checks its signature as `mode` asks.
    pub(super) async fn sign_and_check_built(
        &self,
        d: &Deployment,
        image: &str,
        content: Option<&str>,
        mode: SignatureMode,
    ) -> Result<SignatureCheck, RuntimeError> {
        let Some(content) = content else {
            return Ok(SignatureCheck::not_checked(mode, "the built image's content is not known"));
        };
        if self.signatures.signing_key().is_some() {
            self.sign_built(d, image, content).await?;
        }
        if mode == SignatureMode::Off {
            return Ok(SignatureCheck::not_checked(mode, "the profile does not check signatures"));
        }
        if image_ref::digest(image).is_some() {
            let login = self.login_for(image);
            let to_check = ImageToCheck { image, digest: Some(content), slug: &d.slug, login };
            return Ok(self.signatures.check(&to_check, mode).await);
        }
        let keys = self.signatures.covering(image, &d.slug);
        let outcome = match (keys.is_empty(), self.store.get::<KeptSignature>(Table::ImageSignatures, content)?) {
            (true, _) => SignatureOutcome::NotConfigured,
            (false, None) => SignatureOutcome::Missing,
            (false, Some(kept)) => {
                match signatures::verify_layer(&keys, kept.payload.as_bytes(), &kept.signature, content) {
                    Ok(key) => SignatureOutcome::Valid { key: key.into() },
                    Err(why) => SignatureOutcome::Invalid { why },
                }
            }
        };
        Ok(SignatureCheck { mode, outcome })
    }

    /// The host's signature of a built image, beside it in its registry or in the store.
    async fn sign_built(&self, d: &Deployment, image: &str, content: &str) -> Result<(), RuntimeError> {
        let Some(signing) = self.signatures.signing_key() else { return Ok(()) };
        let payload = cosign::payload(image_ref::repository(image), content);
        let signature = signing.key.sign(&payload);
        let kept_in = if image_ref::digest(image).is_some() {
            let registry = crate::oci::Registry::new(self.http.clone(), image_ref::of(image), self.login_for(image));
            let repository = crate::oci::repository_path(image);
            signatures::attach(&registry, &repository, content, &payload, &signature)
                .await
                .map_err(|e| RuntimeError::Unavailable(format!("signing {image}: {e}")))?;
            "registry"
        } else {
            "store"
        };
        let data = EventData::ImageSigned(ImageSigned {
            image: image.into(),
            content: content.into(),
            key: signing.name.clone(),
            kept_in: kept_in.into(),
        });
        let event = NewEvent::for_deployment(&d.id, data);
        if kept_in == "store" {
            let kept = KeptSignature {
                payload: String::from_utf8_lossy(&payload).into_owned(),
                signature,
                key: signing.name.clone(),
            };
            self.store.put(Table::ImageSignatures, content, &kept, event)?;
        } else {
            self.store.record(event)?;
        }
        Ok(())
    }

    /// The host's login for the registry of `image`, as the OCI client takes it.
    pub(super) fn login_for(&self, image: &str) -> Option<crate::oci::Login> {
        let login = self.repositories.registry_login(image_ref::of(image))?;
        Some(crate::oci::Login { username: login.username.clone(), password: login.password.clone() })
    }
}
