//! `open-egress` (1.2) and `open-egress-learning` (1.3): a deployment
//! network's way out through the host's egress proxy (`crate::egress`), and
//! what containers created on such a network are given to use it.

use std::net::{Ipv4Addr, SocketAddr};

use super::{engine_error, host_firewall, ContainerEngine, DEPLOYMENT_LABEL};
use crate::contract::container_engine::{EgressInfo, EngineError};
use crate::egress::{DNS_PORT, PROXY_PORT};

impl ContainerEngine {
    pub fn egress(&self) -> &crate::egress::EgressProxies {
        &self.egress
    }

    /// `resolvable`: networks the allowed names may resolve into though not
    /// public (a package build's `index_addresses`); none for a plugin's call.
    pub async fn open_egress(
        &self,
        network: &str,
        allowed_hosts: Vec<String>,
        learn: bool,
        resolvable: &[(std::net::IpAddr, u8)],
    ) -> Result<EgressInfo, EngineError> {
        let info = |at: SocketAddr| EgressInfo { proxy: format!("http://{at}") };
        if let Some(at) = self.egress.open_with(network, &allowed_hosts, learn, resolvable) {
            return Ok(info(at));
        }
        let inspected = self.docker().inspect_network(network, None).await.map_err(engine_error)?;
        if !self.owned_by_us(inspected.labels.as_ref()) {
            return Err(EngineError::NotOwned(format!("network '{network}' is not owned by this runtime")));
        }
        if inspected.internal != Some(true) {
            return Err(EngineError::Failed(format!(
                "network '{network}' is not internal: its egress is not filtered"
            )));
        }
        let deployment = inspected.labels.as_ref().and_then(|l| l.get(DEPLOYMENT_LABEL)).cloned().unwrap_or_default();
        let gateway = inspected
            .ipam
            .and_then(|ipam| ipam.config)
            .and_then(|configs| configs.into_iter().find_map(|c| c.gateway?.parse::<Ipv4Addr>().ok()))
            .ok_or_else(|| EngineError::Failed(format!("network '{network}' has no IPv4 gateway")))?;
        let at = self
            .egress
            .open(network, &deployment, gateway, &allowed_hosts, learn, resolvable)
            .await
            .map_err(|e| EngineError::Failed(format!("egress proxy on {gateway}: {e}")))?;
        // The network's host side is closed to new connections but for these two.
        host_firewall::open_port(network, "tcp", PROXY_PORT).await;
        host_firewall::open_port(network, "udp", DNS_PORT).await;
        Ok(info(at))
    }

    /// Environment and DNS servers for a container on `network` known by
    /// `aliases`: its proxy's, if it has one; the stack's own services are
    /// reached directly.
    pub(super) fn egress_settings(&self, network: &str, aliases: &[String]) -> Option<(Vec<String>, Vec<String>)> {
        let (at, local) = self.egress.proxy_of(network, aliases)?;
        let proxy = format!("http://{at}");
        let mut env = Vec::new();
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push(format!("{name}={proxy}"));
        }
        let mut direct = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        direct.extend(local);
        for name in ["NO_PROXY", "no_proxy"] {
            env.push(format!("{name}={}", direct.join(",")));
        }
        Some((env, vec![at.ip().to_string()]))
    }
}
