//! How a node stopped by a roll step or a replacement came back: the index it had to
//! reach, how long that took, and the span around which clients' unavailability is
//! measured. Shared by [`super::roll`], [`super::replace`] and the nemesis that runs them.

use std::time::Duration;

use serde::Serialize;

use super::recorder::ms_since;

/// Longest wait for a restarted node to catch up with the leader; past it the roll moves
/// on and the report says the node never caught up.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

/// How a stopped node came back, as the harness saw it: shared by a roll step's
/// [`super::roll::Restart`] and a [`super::replace::Replacement`], flattened into their rows in `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejoin {
    /// The leader's applied index once the node was back (started again, or a voter
    /// again): what it had to reach.
    pub target_index: Option<u64>,
    /// From then until its applied index reached `target_index`; `None` when it did not
    /// within [`CATCH_UP_WAIT`].
    pub catch_up_ms: Option<u64>,
    /// Harness clock ([`super::clock::mono_ns`]) at the node's stop (SIGTERM or SIGKILL), and once it
    /// had caught up (or a wait gave up): the span around which clients' unavailability
    /// is measured.
    #[serde(skip)]
    pub from_ns: u64,
    #[serde(skip)]
    pub to_ns: u64,
}

impl Rejoin {
    /// A step's start at `from_ns`: nothing caught up yet, the span still empty.
    pub fn starting(from_ns: u64) -> Rejoin {
        Rejoin {
            target_index: None,
            catch_up_ms: None,
            from_ns,
            to_ns: from_ns,
        }
    }

    /// [`Rejoin::from_ns`]..[`Rejoin::to_ns`] as history `time_ms`.
    pub fn span_ms(&self, epoch_ns: u64) -> (u64, u64) {
        (
            ms_since(epoch_ns, self.from_ns),
            ms_since(epoch_ns, self.to_ns),
        )
    }

    /// How the catch-up went, for a log line.
    pub fn caught_note(&self) -> String {
        match (self.catch_up_ms, self.target_index) {
            (Some(ms), Some(index)) => format!("caught up to index {index} in {ms} ms"),
            (_, Some(index)) => format!("NOT caught up to index {index} within {CATCH_UP_WAIT:?}"),
            _ => format!("NOT caught up: no leader seen within {CATCH_UP_WAIT:?}"),
        }
    }

    /// The report table's "catch-up ms" cell.
    pub fn catch_up_cell(&self) -> String {
        cell(self.catch_up_ms)
    }

    /// The report table's "to index" cell.
    pub fn target_cell(&self) -> String {
        cell(self.target_index)
    }
}

/// A report table's cell: the value, or `-` without one.
pub fn cell(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The report table's "write gap ms" cell of row `i`.
pub fn gap_cell(gaps_ms: &[Option<u64>], i: usize) -> String {
    cell(gaps_ms.get(i).copied().flatten())
}

/// Caught up: the node answers and has applied at least `target_index`.
pub fn caught_up(applied_index: Option<u64>, target_index: u64) -> bool {
    applied_index.is_some_and(|a| a >= target_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_means_answering_at_or_past_the_target() {
        assert!(caught_up(Some(10), 10));
        assert!(caught_up(Some(11), 10));
        assert!(!caught_up(Some(9), 10));
        assert!(!caught_up(None, 0));
    }

    #[test]
    fn a_rejoin_starts_with_an_empty_span_and_nothing_caught_up() {
        let r = Rejoin::starting(2_000_000_000);
        assert_eq!((r.target_index, r.catch_up_ms), (None, None));
        assert_eq!(r.span_ms(1_000_000_000), (1_000, 1_000));
        assert_eq!(
            (r.catch_up_cell(), r.target_cell()),
            ("-".to_owned(), "-".to_owned())
        );
        assert!(r.caught_note().starts_with("NOT caught up: no leader seen"));
        assert_eq!(gap_cell(&[None, Some(7)], 1), "7");
        assert_eq!(gap_cell(&[Some(7)], 1), "-");
    }
}
