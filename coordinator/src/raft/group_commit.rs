//! Group commit: many client commands, one Raft entry.
//!
//! openraft flushes the log once per entry, so one entry per request would cap the
//! cluster near the disk's fsync rate. The batcher takes every command that arrived while
//! the previous entry was being written and proposes them together; each caller gets its
//! own command's result back. With group commit off (for comparison runs), every command
//! is proposed as its own entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskswarm_state_machine::{limits, Command, CommandResult, Entry};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::clock::{wall_ms, ClusterClock};
use super::ProposeError;
use crate::types::Raft;

/// Proposals waiting for the batcher; beyond this, callers get `overloaded`.
pub const PROPOSAL_QUEUE_MAX: usize = 16 * 1024;
/// Entries proposed but not yet committed and applied. More in flight lets the next batch
/// start replicating while the last one is flushed.
pub const INFLIGHT_ENTRIES_MAX: usize = 2;
/// A batch stops growing at this many bytes of client data, so one entry stays small
/// enough to replicate quickly.
pub const ENTRY_BYTES_MAX: usize = 1024 * 1024;

pub(crate) struct Proposal {
    pub command: Command,
    pub reply: oneshot::Sender<Result<CommandResult, ProposeError>>,
}

/// Counters for metrics and the benchmark's "commands per entry".
#[derive(Debug, Default)]
pub struct BatchStats {
    pub entries: AtomicU64,
    pub commands: AtomicU64,
}

pub(crate) struct Batcher {
    pub raft: Raft,
    pub clock: Arc<ClusterClock>,
    /// The applied cluster time, published by the apply hook (no state lock here).
    pub applied_ms: Arc<AtomicU64>,
    pub write_timeout: Duration,
    pub group_commit: bool,
    pub stats: Arc<BatchStats>,
}

/// The batch cut rule: an entry takes more queued commands (only those already waiting:
/// the batcher never lingers) while group commit is on and the entry is under both its
/// command and byte limits. The last command may take it past `ENTRY_BYTES_MAX` by its
/// own size, which `PAYLOAD_BYTES_MAX` bounds.
pub(crate) fn room_for_more(group_commit: bool, commands: usize, bytes: usize) -> bool {
    group_commit && commands < limits::ENTRY_COMMANDS_MAX && bytes < ENTRY_BYTES_MAX
}

impl Batcher {
    pub async fn run(self, mut rx: mpsc::Receiver<Proposal>) {
        let inflight = Arc::new(Semaphore::new(INFLIGHT_ENTRIES_MAX));
        while let Some(first) = rx.recv().await {
            let Ok(permit) = inflight.clone().acquire_owned().await else {
                return;
            };
            let mut batch = vec![first];
            let mut bytes = approx_bytes(&batch[0].command);
            while room_for_more(self.group_commit, batch.len(), bytes) {
                match rx.try_recv() {
                    Ok(p) => {
                        bytes += approx_bytes(&p.command);
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let (commands, replies): (Vec<Command>, Vec<_>) =
                batch.into_iter().map(|p| (p.command, p.reply)).unzip();
            let term = self.raft.metrics().borrow().current_term;
            let applied_ms = self.applied_ms.load(Ordering::Acquire);
            let entry = Entry {
                wall_ms: wall_ms(),
                cluster_ms: self.clock.now(term, applied_ms),
                commands,
            };
            self.stats.entries.fetch_add(1, Ordering::Relaxed);
            self.stats
                .commands
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            let pending = match self.raft.client_write_ff(Arc::new(entry)).await {
                Ok(pending) => pending,
                Err(fatal) => {
                    answer_all(replies, || {
                        ProposeError::Indeterminate(format!("raft stopped: {fatal}"))
                    });
                    continue;
                }
            };
            let timeout = self.write_timeout;
            tokio::spawn(async move {
                let outcome = tokio::time::timeout(timeout, pending).await;
                drop(permit);
                match outcome {
                    Ok(Ok(Ok(response))) => {
                        let results = response.data.results;
                        assert_eq!(results.len(), replies.len(), "one result per command");
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    // Leadership was lost after the entry may have been appended: a later
                    // leader may still commit it. Unknown, not failed.
                    Ok(Ok(Err(e))) => {
                        answer_all(replies, || ProposeError::Indeterminate(e.to_string()))
                    }
                    Ok(Err(_)) => answer_all(replies, || {
                        ProposeError::Indeterminate("raft dropped the write".into())
                    }),
                    Err(_) => answer_all(replies, || {
                        ProposeError::Indeterminate(format!("not committed within {timeout:?}"))
                    }),
                }
            });
        }
    }
}

fn answer_all(
    replies: Vec<oneshot::Sender<Result<CommandResult, ProposeError>>>,
    err: impl Fn() -> ProposeError,
) {
    for reply in replies {
        let _ = reply.send(Err(err()));
    }
}

/// Client bytes a command carries, roughly: enough to keep entries bounded.
fn approx_bytes(c: &Command) -> usize {
    64 + match c {
        Command::Enqueue { tasks } => tasks.iter().map(|t| t.payload.len() + 128).sum(),
        Command::Heartbeat { leases, .. } => leases
            .iter()
            .map(|l| 32 + l.progress.as_ref().map_or(0, String::len))
            .sum(),
        Command::Complete { result, .. } | Command::CompleteAndClaim { result, .. } => result.len(),
        Command::Fail { message, .. } => message.len(),
        Command::Broadcast { message, .. } => message.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_cut_rule() {
        assert!(room_for_more(true, 1, 100));
        assert!(
            !room_for_more(false, 1, 100),
            "without group commit an entry holds one command"
        );
        assert!(!room_for_more(true, limits::ENTRY_COMMANDS_MAX, 100));
        assert!(room_for_more(
            true,
            limits::ENTRY_COMMANDS_MAX - 1,
            ENTRY_BYTES_MAX - 1
        ));
        assert!(!room_for_more(true, 2, ENTRY_BYTES_MAX));
    }
}
