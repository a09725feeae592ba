//! The in-memory state machine shared by applies (one writer) and everything that reads
//! it: HTTP handlers, the ticker, snapshot builds. The batcher and the cluster clock do
//! not take it: they read the applied cluster time the apply hook publishes
//! (`ApplyHooks::cluster_ms`), so no code that holds a read guard can reach a second lock
//! of it through the clock.
//!
//! Why not `std::sync::RwLock`: it queues new readers behind a waiting writer. A snapshot
//! build reads (encodes) the whole machine under the lock; an apply then waits to write,
//! and every handler that reads blocks behind it *on a tokio worker thread*. With two
//! workers, the node froze for the length of the encoding: no heartbeats, no replies to
//! the leader, and under load that set off elections every snapshot (found by the 10-
//! minute no-fault load run). Here reads never wait for a waiting writer
//! (`parking_lot`'s `read_recursive`): applies wait for the snapshot, nothing else does.
//!
//! Poisoning is kept by hand: a panic while writing means an apply stopped half-way
//! through an entry, so the machine may be torn, and serving or snapshotting it would
//! spread the damage. Every later lock panics instead, as the first panic meant to.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use taskswarm_state_machine::StateMachine;

#[derive(Debug)]
pub struct SharedMachine {
    machine: RwLock<StateMachine>,
    torn: AtomicBool,
}

pub struct WriteGuard<'a> {
    guard: RwLockWriteGuard<'a, StateMachine>,
    torn: &'a AtomicBool,
}

impl std::fmt::Debug for WriteGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGuard").finish_non_exhaustive()
    }
}

impl SharedMachine {
    pub fn new(machine: StateMachine) -> Self {
        Self {
            machine: RwLock::new(machine),
            torn: AtomicBool::new(false),
        }
    }

    fn check(&self) {
        assert!(
            !self.torn.load(Ordering::Acquire),
            "state machine torn by a panic during apply"
        );
    }

    /// A read that never waits behind a waiting writer. Hold it briefly.
    pub fn read(&self) -> RwLockReadGuard<'_, StateMachine> {
        let guard = self.machine.read_recursive();
        self.check();
        guard
    }

    pub fn write(&self) -> WriteGuard<'_> {
        let guard = self.machine.write();
        self.check();
        WriteGuard {
            guard,
            torn: &self.torn,
        }
    }
}

impl Deref for WriteGuard<'_> {
    type Target = StateMachine;
    fn deref(&self) -> &StateMachine {
        &self.guard
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut StateMachine {
        &mut self.guard
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.torn.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_reader_does_not_wait_behind_a_waiting_writer() {
        let shared = Arc::new(SharedMachine::new(StateMachine::default()));
        let long_read = shared.read();
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || drop(shared.write()))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        // The writer is waiting for `long_read`; another read still goes through.
        let _second = shared.read();
        drop(_second);
        drop(long_read);
        writer.join().unwrap();
    }

    #[test]
    fn a_panic_while_writing_poisons_every_later_lock() {
        let shared = Arc::new(SharedMachine::new(StateMachine::default()));
        let s = shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = s.write();
            panic!("apply failed half-way");
        })
        .join();
        let s = shared.clone();
        assert!(std::thread::spawn(move || drop(s.read())).join().is_err());
        assert!(std::thread::spawn(move || drop(shared.write()))
            .join()
            .is_err());
    }
}
