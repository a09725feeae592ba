//! A full data disk: writes are refused before the disk fills, and a node whose disk
//! filled anyway stops and starts again once space is back.
//!
//! - **Refused before.** The leader refuses client writes with `503 storage_full` while
//!   the data directory's file system has less than `--disk-free-min-mb` free (sampled
//!   every [`FREE_SAMPLE_MS`]). Nothing is proposed, so nothing is acknowledged that is
//!   not durable; reads still work. As with etcd's space alarm, the cluster is read-only
//!   until space is back, and then takes writes again by itself.
//! - **Filled anyway** (between two samples, a follower, which refuses nothing, or a disk
//!   filled by something else). RocksDB answers a failed WAL write by refusing every
//!   later write until the database is reopened (its C API has no `Resume`; measured: no
//!   recovery 30 s after space was freed). openraft stops its core on that error, and the
//!   node exits (`raft::node::exit_if_raft_dies`); its supervisor (systemd, Docker's
//!   restart policy, Kubernetes) starts it again. Each start refuses until RocksDB can
//!   open, then the node replays its log and catches up. The failed write was never
//!   acknowledged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How often the free space of the data directory is read.
pub const FREE_SAMPLE_MS: u64 = 1_000;
/// The default of `--disk-free-min-mb`. Keep it above the size of a snapshot (a snapshot
/// is written next to the current one before replacing it) and of RocksDB's WAL
/// preallocation (about 1.1 × its 64 MiB write buffer).
pub const DISK_FREE_MIN_MB_DEFAULT: u64 = 256;

/// Whether a RocksDB error is the file system being full.
pub fn is_no_space(error: &rocksdb::Error) -> bool {
    let text: &str = error.as_ref();
    text.contains("No space left on device") || text.contains("NoSpace")
}

/// Whether client writes must be refused: free space known and below the minimum, or a
/// log write already failed for want of space.
pub fn refuses_writes(free_bytes: Option<u64>, min_free_bytes: u64, write_failed: bool) -> bool {
    write_failed || free_bytes.is_some_and(|free| free < min_free_bytes)
}

/// The data disk's state, shared by the log store (which reports a failed write) and the
/// node (which samples and refuses).
#[derive(Debug)]
pub struct DiskSpace {
    dir: PathBuf,
    min_free_bytes: AtomicU64,
    /// Bytes free at the last sample; `u64::MAX` before the first.
    free_bytes: AtomicU64,
    /// A log write failed for want of space: RocksDB takes no more writes until reopened.
    write_failed: AtomicBool,
}

impl DiskSpace {
    pub fn new(dir: &Path, min_free_mb: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            min_free_bytes: AtomicU64::new(min_free_mb.saturating_mul(1024 * 1024)),
            free_bytes: AtomicU64::new(u64::MAX),
            write_failed: AtomicBool::new(false),
        }
    }

    /// Reads the free space now (one statvfs call). An unreadable value keeps the last one.
    pub fn sample(&self) {
        match rustix::fs::statvfs(&self.dir) {
            Ok(s) => {
                let free = s.f_bavail.saturating_mul(s.f_frsize);
                self.free_bytes.store(free, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, dir = %self.dir.display(), "cannot read free space")
            }
        }
    }

    /// Bytes free at the last sample, if any was taken.
    pub fn free_bytes(&self) -> Option<u64> {
        Some(self.free_bytes.load(Ordering::Relaxed)).filter(|b| *b != u64::MAX)
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes.load(Ordering::Relaxed)
    }

    /// `--disk-free-min-mb`.
    pub fn set_min_free_mb(&self, mb: u64) {
        self.min_free_bytes
            .store(mb.saturating_mul(1024 * 1024), Ordering::Relaxed);
    }

    /// Whether client writes are refused now (`storage_full`).
    pub fn is_full(&self) -> bool {
        refuses_writes(
            self.free_bytes(),
            self.min_free_bytes(),
            self.write_failed.load(Ordering::Relaxed),
        )
    }

    /// Called with every failed log write: says plainly when the disk is full.
    pub fn note_write_error(&self, error: &rocksdb::Error) {
        if is_no_space(error) {
            self.write_failed.store(true, Ordering::Relaxed);
            tracing::error!(
                %error,
                dir = %self.dir.display(),
                "the data disk is full: this log write failed and was not acknowledged; RocksDB takes no more writes until reopened, so this node stops and starts again once there is space"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_below_the_minimum_or_after_a_failed_write() {
        let mb = 1024 * 1024;
        assert!(!refuses_writes(None, 256 * mb, false), "not sampled yet");
        assert!(!refuses_writes(Some(300 * mb), 256 * mb, false));
        assert!(refuses_writes(Some(255 * mb), 256 * mb, false));
        assert!(refuses_writes(Some(300 * mb), 256 * mb, true));
    }

    #[test]
    fn the_free_space_of_a_real_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::new(dir.path(), 0);
        assert_eq!(space.free_bytes(), None);
        space.sample();
        assert!(space.free_bytes().is_some_and(|b| b > 0));
        assert!(!space.is_full());
    }
}
