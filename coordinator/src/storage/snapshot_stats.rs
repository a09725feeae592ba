//! Figures of this node's snapshot builds and of its restore at start, for `/metrics`:
//! an operator with a large backlog sees what a snapshot costs and how long applies
//! waited for it (the view; the encoding and the file write run beside applies).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct SnapshotStats {
    builds: AtomicU64,
    last_view_ms: AtomicU64,
    last_encode_ms: AtomicU64,
    last_write_ms: AtomicU64,
    last_bytes: AtomicU64,
    last_tasks: AtomicU64,
    restore_ms: AtomicU64,
    restored_bytes: AtomicU64,
}

/// One build's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildFigures {
    /// Under the state lock: applies waited this long.
    pub view_ms: u64,
    pub encode_ms: u64,
    /// Writing and syncing the snapshot file.
    pub write_ms: u64,
    pub bytes: u64,
    pub tasks: u64,
}

/// Everything, read at once for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotReport {
    pub builds: u64,
    /// Zero until the first build.
    pub last: BuildFigures,
    /// Decoding and re-indexing the snapshot at start; zero when the node started empty.
    pub restore_ms: u64,
    /// The state's bytes in the snapshot restored at start; zero when the node started
    /// empty.
    pub restored_bytes: u64,
}

impl SnapshotStats {
    pub fn record_build(&self, f: BuildFigures) {
        self.last_view_ms.store(f.view_ms, Ordering::Relaxed);
        self.last_encode_ms.store(f.encode_ms, Ordering::Relaxed);
        self.last_write_ms.store(f.write_ms, Ordering::Relaxed);
        self.last_bytes.store(f.bytes, Ordering::Relaxed);
        self.last_tasks.store(f.tasks, Ordering::Relaxed);
        self.builds.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_restore(&self, ms: u64, bytes: u64) {
        self.restore_ms.store(ms, Ordering::Relaxed);
        self.restored_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn report(&self) -> SnapshotReport {
        SnapshotReport {
            builds: self.builds.load(Ordering::Relaxed),
            last: BuildFigures {
                view_ms: self.last_view_ms.load(Ordering::Relaxed),
                encode_ms: self.last_encode_ms.load(Ordering::Relaxed),
                write_ms: self.last_write_ms.load(Ordering::Relaxed),
                bytes: self.last_bytes.load(Ordering::Relaxed),
                tasks: self.last_tasks.load(Ordering::Relaxed),
            },
            restore_ms: self.restore_ms.load(Ordering::Relaxed),
            restored_bytes: self.restored_bytes.load(Ordering::Relaxed),
        }
    }
}
