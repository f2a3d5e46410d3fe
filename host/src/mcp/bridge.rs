//! The host's side of the bridge (the `mcp-bridge` crate): how it reaches a
//! bridged server. A stdio server is a container whose stdin and stdout the
//! host attaches to through the container engine (ownership checked there);
//! an HTTP+SSE server is reached over HTTP.

use bollard::container::LogOutput;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::sync::Arc;

pub use mcp_bridge::{Bridge, Launcher, OwnServer, Servers};

use super::link::{Connector, Link, LinkError, Output, Target};
use crate::capabilities::ContainerEngine;

pub struct EngineConnector {
    pub engine: Option<Arc<ContainerEngine>>,
    pub http: reqwest::Client,
}

impl Connector for EngineConnector {
    fn open<'a>(
        &'a self,
        tasks: &'a dyn mcp_bridge::Spawner,
        key: &'a str,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Arc<Link>, LinkError>> {
        Box::pin(async move {
            match target {
                Target::Stdio(container) => {
                    let engine = self.engine.as_deref().ok_or(LinkError::NoEngine)?;
                    let attached = engine.attach(container).await.map_err(|e| LinkError::Attach(format!("{e:?}")))?;
                    let output = attached.output.filter_map(|frame| async move {
                        match frame {
                            Ok(LogOutput::StdOut { message }) => Some(Ok(Output::Stdout(message))),
                            Ok(LogOutput::StdErr { message }) => Some(Ok(Output::Stderr(message))),
                            Ok(_) => None,
                            Err(e) => Some(Err(e.to_string())),
                        }
                    });
                    Ok(Link::over_stdio(tasks, key, target, attached.input, Box::pin(output)))
                }
                Target::Sse(_) => Link::over_sse(&self.http, tasks, key, target).await,
            }
        })
    }
}
