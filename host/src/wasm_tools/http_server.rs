//! The other kind of server component: a streamable-HTTP MCP server compiled
//! to the `wasi:http/proxy` world (as Spin and wasmcp build them). Each
//! request is handed to a fresh instance's incoming handler in the same
//! sandbox and limits as a tool call; its answer streams back as the
//! instance writes it. Outgoing requests go through the deployment's gate (`egress`).

use axum::body::Body;
use http_body_util::BodyExt;
use std::sync::LazyLock;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{Error, WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::egress::GateHooks;
use super::sandbox::{MemoryLimit, Run};
use super::{engine, CallLimits, CallReport, Sandbox, ToolError};

/// A compiled `wasi:http` server, ready to serve requests.
pub struct HttpServer {
    pre: ProxyPre<HttpState>,
    limits: CallLimits,
}

struct HttpState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: GateHooks,
    memory: MemoryLimit,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl HttpServer {
    /// The component as a `wasi:http` server; `None` when it is not one
    /// (it does not export `wasi:http/incoming-handler`).
    pub fn new(component: &Component, limits: CallLimits) -> Result<Option<HttpServer>, ToolError> {
        static LINKER: LazyLock<Linker<HttpState>> = LazyLock::new(super::sandbox::linker);
        let pre = LINKER.instantiate_pre(component).map_err(|e| ToolError::Load(e.root_cause().to_string()))?;
        Ok(ProxyPre::new(pre).ok().map(|pre| HttpServer { pre, limits }))
    }

    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Hands `request` to a fresh instance; its answer, streaming while the
    /// instance writes it. `done` gets how the run ended and what it wrote,
    /// once it has.
    pub async fn handle(
        &self,
        sandbox: &Sandbox,
        request: http::Request<Body>,
        done: impl FnOnce(Result<(), ToolError>, CallReport) + Send + 'static,
    ) -> Result<http::Response<Body>, ToolError> {
        let run = Run::start(self.limits);
        let state = HttpState {
            wasi: run.wasi(sandbox)?,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: GateHooks(sandbox.egress.clone()),
            memory: run.memory_limit(),
        };
        let mut store = Store::new(engine(), state);
        run.bound(&mut store, |s| &mut s.memory);
        let (sender, answered) = tokio::sync::oneshot::channel();
        let failed = |e: wasmtime::Error| ToolError::Stopped(e.root_cause().to_string());
        // The body as wasi:http reads one: its frames, a read error as the protocol's.
        let request = request.map(|body| body.map_err(|e| Error::from(ErrorCode::InternalError(Some(e.to_string())))));
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http, request)
            .map_err(failed)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(failed)?;
        let proxy = self.pre.instantiate_async(&mut store).await.map_err(failed)?;
        let handled = tokio::spawn(async move {
            let outcome = proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, out).await;
            let outcome = outcome.map_err(|e| run.stopped(e, &store.data().memory));
            done(outcome.clone(), run.report(Some(&store.data().memory)));
            outcome
        });
        match answered.await {
            Ok(Ok(response)) => Ok(response.map(|body| Body::new(body.map_err(axum::Error::new)))),
            Ok(Err(code)) => Err(ToolError::Failed(format!("the server answered an error: {code:?}"))),
            // It ended without answering: a trap, its deadline, its memory.
            Err(_) => match handled.await {
                Ok(Err(stopped)) => Err(stopped),
                _ => Err(ToolError::Failed("the server ended without answering".into())),
            },
        }
    }
}
