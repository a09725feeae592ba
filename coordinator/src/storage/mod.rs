//! RocksDB storage for the Raft log and durable snapshots of the state machine.
//!
//! - [`LogStore`] (`log_store.rs`): openraft's log storage over RocksDB; every write is
//!   fsynced before openraft is told it is done, except a leader's own entries, which are
//!   synced while they replicate and acted on only once synced (`log_durable.rs`).
//! - [`StateMachineStore`] (`state_store.rs`): openraft's state machine over the
//!   in-memory task state machine, with snapshots saved to a file durably.
//! - [`codec`] and [`snapshot_file`]: the versioned on-disk formats.
//! - [`open`] (`open.rs`): opens a node's directory and restores the last snapshot.
//! - [`SnapshotStats`] (`snapshot_stats.rs`): what snapshot builds and the restore cost.

pub mod backup_file;
pub mod behaviour_guard;
mod blocking;
pub mod codec;
pub mod disk_space;
mod log_durable;
mod log_store;
mod log_tail;
mod open;
mod rocks_log;
mod seed;
mod shared_machine;
mod snapshot_dir;
pub mod snapshot_file;
mod snapshot_stats;
mod state_store;

pub use log_durable::{clamp_commit, LogMarks};
pub use log_store::LogStore;
pub use open::{open, OpenError, LOG_DIR, SNAPSHOT_DIR};
pub use seed::{seed_from_backup, SeedError};
pub use shared_machine::SharedMachine;
pub use snapshot_stats::{BuildFigures, SnapshotReport, SnapshotStats};
pub use state_store::{ApplyHooks, StateMachineStore, StateSnapshotBuilder};
