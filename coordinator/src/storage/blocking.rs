//! Runs blocking disk I/O (RocksDB calls, snapshot files, fsync) off the async workers.
//!
//! `spawn_blocking` rather than `block_in_place`: `block_in_place` panics on a
//! current-thread runtime (`#[tokio::test]`, openraft's storage suite) and parks a whole
//! worker thread of the multi-thread runtime for the length of an fsync. The price of
//! `spawn_blocking` is one thread hand-off per call, small next to an fsync, and the
//! closure must own what it touches (an `Arc<DB>` clone, owned buffers).
//!
//! Not for log appends: a leader's own entries are written unsynced, inline, and a
//! follower's appends fsync inline, because openraft 0.9's core waits for them anyway and
//! the two hand-offs per append were measurable (`log_store.rs`, `append`).

use std::io;

/// Runs `f` on tokio's blocking pool and waits for it. A panic inside `f` is resumed
/// here, as if `f` had run inline: a broken invariant must still crash the node.
pub(crate) async fn run<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down before the task starts.
        Err(e) => Err(io::Error::other(format!(
            "blocking storage task did not run: {e}"
        ))),
    }
}
