//! Supervised background work. Every loop (health watch, approval deadlines,
//! the audit log, gateway sync, egress proxies and their resolvers) and every deploy
//! runs under one tracker with one cancellation token, so the host can stop
//! them all and wait for what is in flight. A loop whose step panics logs it
//! and goes on; blocking work is kept off the async workers.

use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Supervisor {
    tracker: TaskTracker,
    /// The host is stopping: loops end, nothing new starts.
    stop: CancellationToken,
    /// The grace is over: work still running is dropped.
    abort: CancellationToken,
}

/// The bridge's background work (stdio readers and writers, relayed requests)
/// runs under the host's supervision like the rest.
impl mcp_bridge::Spawner for Supervisor {
    fn spawn_boxed(&self, name: &'static str, work: futures_util::future::BoxFuture<'static, ()>) {
        self.spawn(name, work);
    }

    fn spawn_to_completion_boxed(&self, name: &'static str, work: futures_util::future::BoxFuture<'static, ()>) {
        self.spawn_to_completion(name, work);
    }
}

impl Supervisor {
    /// Runs `work` until it ends or the host stops; a panic is logged, not lost.
    pub fn spawn<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.run(name, self.stop.clone(), work);
    }

    /// Like `spawn`, for work that must finish once begun (a deploy step, a
    /// notification): it is not cut short when the host stops, only waited for.
    pub fn spawn_to_completion<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.run(name, self.abort.clone(), work);
    }

    /// Like `spawn`, for work that lives as long as something else does (a
    /// network's egress proxy): it also ends when the returned guard is dropped.
    pub fn spawn_owned<F>(&self, name: &'static str, work: F) -> tokio_util::sync::DropGuard
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let owner = self.stop.child_token();
        self.run(name, owner.clone(), work);
        owner.drop_guard()
    }

    /// Runs `work` on the tracker until it ends or `until` is cancelled.
    fn run<F>(&self, name: &'static str, until: CancellationToken, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(async move {
            tokio::select! {
                _ = until.cancelled() => tracing::debug!(task = name, "stopped with the host"),
                outcome = AssertUnwindSafe(work).catch_unwind() => {
                    if outcome.is_err() {
                        tracing::error!(task = name, "background task panicked");
                    }
                }
            }
        });
    }

    /// Runs `step` every `period` until the host stops. A step that panics
    /// is logged and the loop goes on with the next one.
    pub fn every<F, Fut>(&self, name: &'static str, period: Duration, mut step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if AssertUnwindSafe(step()).catch_unwind().await.is_err() {
                    tracing::error!(task = name, "a step panicked; the loop goes on");
                }
            }
        });
    }

    /// Tasks running now: a count that grows without end is a leak (`make soak`).
    pub fn alive(&self) -> usize {
        self.tracker.len()
    }

    /// Cancelled when the host begins to stop.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops every loop and waits up to `grace` for work in flight, then
    /// drops what is left; whether everything finished in time (what did not
    /// is reconciled at the next start).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait()).await.is_ok();
        if !finished {
            self.abort.cancel();
            self.tracker.wait().await;
        }
        finished
    }
}

/// Runs blocking work (a redb commit's fsync, compiling a plugin) so that the
/// other tasks on this async worker move elsewhere meanwhile.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread")]
    async fn loops_survive_a_panicking_step_and_stop_on_shutdown() {
        let tasks = Supervisor::default();
        let steps = Arc::new(AtomicU32::new(0));
        let counted = steps.clone();
        tasks.every("test", Duration::from_millis(5), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move { assert!(n != 1, "the second step panics") }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while steps.load(Ordering::SeqCst) <= 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = steps.load(Ordering::SeqCst);
        assert!(n > 3, "the loop went on after the panic: {n} steps");
        assert!(tasks.shutdown(Duration::from_secs(1)).await, "loops stop at once");
        let after = steps.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(steps.load(Ordering::SeqCst), after, "nothing runs after shutdown");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn work_in_flight_is_waited_for_within_the_grace() {
        let tasks = Supervisor::default();
        let done = Arc::new(AtomicU32::new(0));
        let marker = done.clone();
        tasks.spawn_to_completion("deploy", async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            marker.store(1, Ordering::SeqCst);
        });
        assert!(tasks.shutdown(Duration::from_secs(2)).await);
        assert_eq!(done.load(Ordering::SeqCst), 1, "the deploy finished before shutdown returned");
        let slow = Supervisor::default();
        slow.spawn_to_completion("slow", tokio::time::sleep(Duration::from_secs(5)));
        assert!(!slow.shutdown(Duration::from_millis(50)).await, "a deploy past the grace is reported");
    }
}
