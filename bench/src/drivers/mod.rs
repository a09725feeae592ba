//! One driver per system. A driver makes producers and workers that speak the system's
//! own client API; the harness (`harness.rs`) runs the same loops over all of them.
//!
//! Every producer and worker gets its own connection(s), as separate processes would.

pub mod etcd;
pub mod nats;
pub mod postgres;
pub mod rabbitmq;
pub mod taskswarm;

use std::future::Future;

pub trait Driver: Send + Sync + 'static {
    type Producer: Producer;
    type Worker: Worker;

    /// Producer `index`; its `enqueue` is called from `inflight` concurrent slots.
    fn producer(
        &self,
        index: usize,
        inflight: usize,
    ) -> impl Future<Output = anyhow::Result<Self::Producer>> + Send;

    fn worker(&self, index: usize) -> impl Future<Output = anyhow::Result<Self::Worker>> + Send;
}

pub trait Producer: Send + Sync + 'static {
    /// Enqueues `bodies` (one, or a batch through the system's batch API or its natural
    /// batching) and returns once the system acknowledged every one. `slot` is which of the
    /// producer's concurrent callers this is (0..inflight).
    fn enqueue(
        &self,
        slot: usize,
        bodies: Vec<Vec<u8>>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

pub trait Worker: Send + 'static {
    type Task: Send + Sync;

    /// Claims up to `max` tasks. May wait a bounded time for work and return none.
    fn claim(&mut self, max: usize)
        -> impl Future<Output = anyhow::Result<Vec<Self::Task>>> + Send;

    /// Completes claimed tasks; returns once the system acknowledged the completions (or,
    /// where the protocol has no acknowledgement, once they were sent).
    fn complete(
        &mut self,
        tasks: Vec<Self::Task>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The task's body, as enqueued.
    fn body(task: &Self::Task) -> &[u8];
}
