//! What a container was created with, as the backend asked for it: recorded
//! as an event when it is created, so a deployment's posture is read from
//! the store (`GET /runtimes/{id}/posture`) rather than from the engine.

use super::ContainerEngine;
use crate::contract::container_engine::ContainerSpec;
use crate::events::ContainerFacts;

impl ContainerEngine {
    /// The facts of container `id`, created from `spec`; the user it runs as
    /// is the spec's, else its image's (one read of the image, now).
    pub async fn facts_of(&self, id: &str, spec: &ContainerSpec) -> ContainerFacts {
        let user = match spec.user.clone().filter(|u| !u.is_empty()) {
            Some(user) => user,
            None => self
                .docker()
                .inspect_image(&spec.image)
                .await
                .ok()
                .and_then(|i| i.config?.user)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
        };
        ContainerFacts {
            container: id.into(),
            name: spec.name.clone(),
            image: spec.image.clone(),
            read_only_root: spec.read_only_root,
            cap_drop: spec.cap_drop.clone(),
            cap_add: spec.cap_add.clone(),
            no_new_privileges: spec.no_new_privileges,
            user,
            security_opts: spec.security_opts.iter().map(|o| summarized(o)).collect(),
            nano_cpus: spec.nano_cpus,
            memory_bytes: spec.memory_bytes,
            pids_limit: spec.pids_limit,
            network: spec.network.clone(),
        }
    }
}

/// A security option as the posture shows it: an inline seccomp profile by its size, not its text.
fn summarized(option: &str) -> String {
    match option.split_once('=') {
        Some(("seccomp", profile)) if profile.trim_start().starts_with('{') => {
            format!("seccomp=inline profile ({} bytes)", profile.len())
        }
        _ => option.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn inline_seccomp_profiles_are_named_not_repeated() {
        assert_eq!(
            super::summarized(r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO"}"#),
            "seccomp=inline profile (34 bytes)"
        );
        assert_eq!(super::summarized("apparmor=docker-default"), "apparmor=docker-default");
    }
}
