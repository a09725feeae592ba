//! The deterministic task state machine that taskswarm replicates through Raft.
//!
//! Commands go in ([`Entry`], a batch stamped with the leader's clocks), outcomes come
//! out ([`Outcome`], one result per command plus lifecycle events). The rules that make it
//! safe to replicate, checked by tests/purity.rs and tests/determinism.rs:
//!
//! - No clock, no randomness: time arrives in the entry; jitter is a hash of the task id.
//!   Leases, timeouts and every relative delay run on the entry's cluster time; only an
//!   absolute `run_at` waits for its wall time (a wall clock jump never stalls a retry).
//! - No hash-ordered iteration: every collection is a `BTreeMap`/`BTreeSet`/`VecDeque`.
//! - `apply` never fails. A refused command is a [`Rejection`] value; a broken invariant
//!   is an `assert!` (a bug, to crash on rather than diverge).
//! - Replaying the same log gives byte-identical [`StateMachine::snapshot`]s.
//! - Depends on serde and thiserror only: no tokio, no openraft, no RocksDB.

mod behaviour;
mod codec;
mod command;
mod commands;
mod history;
mod invariants;
mod lifecycle;
pub mod limits;
mod machine;
mod names;
mod outcome;
mod serde_impls;
mod snapshot;
mod task;
mod task_store;
mod validate;

#[cfg(test)]
mod test_support;

pub use behaviour::{
    supports as behaviour_supported, BEHAVIOUR_VERSION_FIRST, BEHAVIOUR_VERSION_MAX,
};
pub use codec::DecodeError;
pub use command::{Claim, Command, Entry, LeaseBeat, NewTask, ENTRY_FORMAT_VERSION};
pub use history::History;
pub use machine::{
    BroadcastMessage, Config, Counts, ListFilter, ListPage, LogIndex, NextDue, QueueInfo,
    StateMachine,
};
pub use outcome::{
    ClaimedTask, CommandResult, Enqueued, HeartbeatAck, Outcome, Rejection, Reply, TaskEvent,
    TickReport, OUTCOME_FORMAT_VERSION,
};
pub use snapshot::{SnapshotView, SNAPSHOT_FORMAT_VERSION};
pub use task::{
    error_code, Backoff, Event, EventKind, Lease, RunAt, Task, TaskError, TaskId, TaskState,
    Timeouts, Token,
};
