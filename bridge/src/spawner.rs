//! Where the bridge runs its background work (stdio writers, readers,
//! requests relayed to an event stream): the host hands in its supervisor,
//! so that work is tracked and stopped with the host's; the standalone
//! bridge runs it on Tokio directly.

use futures_util::future::BoxFuture;
use std::future::Future;

pub trait Spawner: Send + Sync {
    /// Work that ends when the owner stops (a reader, a writer).
    fn spawn_boxed(&self, name: &'static str, work: BoxFuture<'static, ()>);
    /// Work that must finish once begun (a request in flight): waited for, not cut short.
    fn spawn_to_completion_boxed(&self, name: &'static str, work: BoxFuture<'static, ()>);
}

impl dyn Spawner + '_ {
    pub fn spawn(&self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        self.spawn_boxed(name, Box::pin(work));
    }

    pub fn spawn_to_completion(&self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        self.spawn_to_completion_boxed(name, Box::pin(work));
    }
}

/// Plain Tokio tasks: for the standalone bridge, whose work ends with its process.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioTasks;

impl Spawner for TokioTasks {
    fn spawn_boxed(&self, _name: &'static str, work: BoxFuture<'static, ()>) {
        tokio::spawn(work);
    }

    fn spawn_to_completion_boxed(&self, _name: &'static str, work: BoxFuture<'static, ()>) {
        tokio::spawn(work);
    }
}
