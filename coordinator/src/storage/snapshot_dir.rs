//! The snapshot directory: one current snapshot file, replaced atomically and durably.
//!
//! A new snapshot is written to `current.tmp`, fsynced, renamed over `current.snap`, and
//! the directory is fsynced so the rename itself survives a power cut. A crash at any
//! point leaves either the old file or the new one, never a mix; a stale `current.tmp`
//! is removed at open.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::snapshot_file::{self, SnapshotFileError};
use crate::types::{LogId, SnapshotMeta};

const CURRENT_FILE: &str = "current.snap";
const TEMP_FILE: &str = "current.tmp";
/// Writes to the snapshot file go through a buffer this large (the state is written in
/// one piece; the buffer only gathers the small header and checksum).
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Whether [`SnapshotDir::save`] replaced the current file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Saved {
    Replaced,
    /// The current file covers a later log id: a snapshot built before an install
    /// finished after it. Keeping the newer file is right; nothing was written.
    KeptNewer,
}

#[derive(Debug)]
pub(crate) struct SnapshotDir {
    dir: PathBuf,
    /// The last log id of `current.snap`; `None` while there is no file (the inner
    /// `None` is a file that covers no log entry). The mutex also serializes writers: a spawned snapshot build and an install may
    /// race, and both use the same temporary file name.
    current: Mutex<Option<Option<LogId>>>,
}

impl SnapshotDir {
    /// Creates the directory if needed and removes a temporary file left by a crash.
    pub(crate) fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        if let Some(parent) = dir.parent() {
            // The directory's own entry must be durable before files in it matter.
            sync_dir(parent)?;
        }
        match fs::remove_file(dir.join(TEMP_FILE)) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "removed a snapshot file left half-written by a crash")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            dir,
            current: Mutex::new(None),
        })
    }

    pub(crate) fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT_FILE)
    }

    /// The current snapshot's metadata and state bytes, `None` when there is none yet.
    pub(crate) fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, SnapshotFileError> {
        let mut current = self.lock();
        let bytes = match fs::read(self.current_path()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (meta, state) = snapshot_file::decode(bytes)?;
        *current = Some(meta.last_log_id);
        Ok(Some((meta, state)))
    }

    /// Makes `meta` + `state` the current snapshot, durably, unless the current one is
    /// newer.
    pub(crate) fn save(
        &self,
        meta: &SnapshotMeta,
        state: &[u8],
    ) -> Result<Saved, SnapshotFileError> {
        let mut current = self.lock();
        if matches!(*current, Some(last) if last > meta.last_log_id) {
            return Ok(Saved::KeptNewer);
        }
        let temp = self.dir.join(TEMP_FILE);
        let mut file = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, File::create(&temp)?);
        snapshot_file::write_to(&mut file, meta, state)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, self.current_path())?;
        sync_dir(&self.dir)?;
        *current = Some(meta.last_log_id);
        Ok(Saved::Replaced)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Option<LogId>>> {
        // Nothing under this lock can be left half-updated by a panic (the file replace
        // is atomic and the field is set last), so a poisoned lock is safe to reuse.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// fsyncs a directory, making the creation, removal or renaming of its entries durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
