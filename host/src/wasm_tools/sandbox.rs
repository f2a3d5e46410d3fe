//! What every run of a server component shares, a tool call or an HTTP
//! request alike: WASI as the sandbox grants it, stdout and stderr kept for
//! the log, the memory limit (remembering the peak), and the deadline —
//! past it the run yields at every epoch tick until it is stopped.

use std::time::Instant;
use wasmtime::component::Linker;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiView};
use wasmtime_wasi_http::WasiHttpView;

use super::{CallLimits, CallReport, Sandbox, ToolError};

/// What a run may write to each of stdout and stderr; more traps the write.
const OUTPUT_CAPACITY: usize = 1 << 20;
const DEADLINE: &str = "the call's deadline passed";

/// What a server component may import, one linker per kind built once:
/// WASI (as each run's `WasiCtx` grants it) and `wasi:http` (through the
/// run's egress gate).
pub(super) fn linker<T: WasiView + WasiHttpView + 'static>() -> Linker<T> {
    let mut linker = Linker::new(super::engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links once");
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("wasi:http links once");
    linker
}

/// One run's output and clock.
pub(super) struct Run {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    started: Instant,
    limits: CallLimits,
}

impl Run {
    pub fn start(limits: CallLimits) -> Run {
        Run {
            stdout: MemoryOutputPipe::new(OUTPUT_CAPACITY),
            stderr: MemoryOutputPipe::new(OUTPUT_CAPACITY),
            started: Instant::now(),
            limits,
        }
    }

    /// WASI as the sandbox grants it: its mounts preopened (read-only unless
    /// writable), its variables, this run's stdout and stderr; no sockets,
    /// no arguments.
    pub fn wasi(&self, sandbox: &Sandbox) -> Result<WasiCtx, ToolError> {
        use wasmtime_wasi::FsPerms;
        let mut builder = WasiCtx::builder();
        for mount in &sandbox.mounts {
            let perms = if mount.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            builder
                .preopened_dir(&mount.path, &mount.path, perms)
                .map_err(|e| ToolError::Stopped(format!("mounting {}: {e}", mount.path)))?;
        }
        for (key, value) in &sandbox.environment {
            builder.env(key, value);
        }
        builder.stdout(self.stdout.clone()).stderr(self.stderr.clone());
        Ok(builder.build())
    }

    pub fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit { max: self.limits.memory_bytes, peak: 0, exceeded: false }
    }

    /// Bounds the store by the memory limit (`limit` finds it in the store's
    /// data) and the run's deadline.
    pub fn bound<T: 'static>(&self, store: &mut Store<T>, limit: fn(&mut T) -> &mut MemoryLimit) {
        store.limiter(move |data| limit(data) as &mut dyn ResourceLimiter);
        let deadline = self.started + self.limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match Instant::now() < deadline {
            true => Ok(UpdateDeadline::Yield(1)),
            false => Err(wasmtime::Error::msg(DEADLINE)),
        });
    }

    /// Why the sandbox stopped the run, in words.
    pub fn stopped(&self, e: wasmtime::Error, memory: &MemoryLimit) -> ToolError {
        let reason = match e.downcast_ref::<Trap>() {
            _ if memory.exceeded => {
                format!("it asked for more than its {} MiB of memory", self.limits.memory_bytes >> 20)
            }
            _ if e.root_cause().to_string() == DEADLINE => {
                format!("it ran past its deadline of {} ms", self.limits.deadline.as_millis())
            }
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        ToolError::Stopped(reason)
    }

    pub fn report(&self, memory: Option<&MemoryLimit>) -> CallReport {
        CallReport {
            stdout: self.stdout.contents(),
            stderr: self.stderr.contents(),
            memory_peak: memory.map_or(0, |m| m.peak),
            took: self.started.elapsed(),
        }
    }
}

/// The memory limit, remembering the peak and whether the limit was hit.
pub(super) struct MemoryLimit {
    max: usize,
    pub peak: usize,
    pub exceeded: bool,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, current: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Err(wasmtime::Error::msg("memory limit"));
        }
        self.peak = self.peak.max(desired).max(current);
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
