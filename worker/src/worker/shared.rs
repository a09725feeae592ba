//! What the claim loops, the heartbeat loop and the runners share: the checked
//! configuration, the handlers, the leases, the slots and the counters. Its own module so
//! that `runtime.rs` (which builds it) and the loops (which use it) both point here, and
//! nothing points back at the runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use taskswarm_api as api;
use tokio_util::sync::CancellationToken;

use super::handler::Handler;
use super::lease::LeaseTable;
use super::slots::Slots;
use super::stats::Counters;
use crate::Client;

/// The checked configuration of a running worker.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub worker_id: String,
    pub queues: Vec<String>,
    pub lease_ms: u64,
    pub heartbeat_interval: Duration,
    pub claim_wait: Duration,
    pub grace: Duration,
    pub handler_stop_wait: Duration,
    /// A runner that completes a task asks for its slot's next one in the same request.
    pub claim_on_complete: bool,
}

/// What the claim loops, the heartbeat loop and the runners share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub client: Client,
    pub config: Config,
    /// By kind; its keys are the `kinds` of every claim (unless there is a fallback).
    pub handlers: BTreeMap<String, Handler>,
    /// Runs tasks of any other kind; with one, claims take every kind.
    pub fallback: Option<Handler>,
    pub leases: LeaseTable,
    pub slots: Slots,
    pub stats: Counters,
    /// Fired when a shutdown starts: no new claims.
    pub stop_claiming: CancellationToken,
}

impl Shared {
    /// What a claim of this worker asks for: its queues, its kinds (any with a fallback),
    /// its lease.
    pub fn claim_request(
        &self,
        max: u32,
        wait_ms: u64,
        min_priority: Option<i32>,
    ) -> api::ClaimRequest {
        api::ClaimRequest {
            worker: self.config.worker_id.clone(),
            queues: self.config.queues.clone(),
            kinds: if self.fallback.is_some() {
                None
            } else {
                Some(self.handlers.keys().cloned().collect())
            },
            max,
            lease_ms: Some(self.config.lease_ms),
            wait_ms,
            min_priority,
        }
    }
}
