//! Interned queue and kind names: every task of a queue shares one copy of its name.
//!
//! Why: a backlog holds a million tasks in a handful of queues and kinds. As `String`s
//! each task carried two 24-byte headers and two heap copies of the same few bytes; as
//! shared `Arc<str>`s it carries two 16-byte pointers and no copy, and the indexes keyed by
//! queue clone a pointer instead of allocating.
//!
//! The table is a cache, not state: it is not snapshotted, it never changes what `apply`
//! decides, and two machines are equal whatever their tables hold. When a new name would
//! take the table past twice its size after the last clean-up (at least `NAMES_PRUNE_MIN`),
//! the names nothing else refers to are dropped first. So it holds at most about twice the
//! names in use at its last clean-up; a restore from a snapshot starts it afresh.

use std::collections::BTreeSet;
use std::sync::Arc;

/// The table is not cleaned below this many names: small tables are not worth a scan.
const NAMES_PRUNE_MIN: usize = 1_024;

#[derive(Debug, Clone)]
pub(crate) struct Names {
    names: BTreeSet<Arc<str>>,
    /// Clean up when the table reaches this size.
    prune_at: usize,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            names: BTreeSet::new(),
            prune_at: NAMES_PRUNE_MIN,
        }
    }
}

impl Names {
    /// The shared copy of `name`, made now if there is none.
    pub(crate) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        if self.names.len() >= self.prune_at {
            // Only the table holds these: no task, index or paused queue uses them.
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.prune_at = (2 * self.names.len()).max(NAMES_PRUNE_MIN);
        }
        let shared: Arc<str> = name.into();
        self.names.insert(shared.clone());
        shared
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.len()
    }
}

/// A cache: it never makes two machines differ.
impl PartialEq for Names {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Names {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name() {
        let mut names = Names::default();
        let a = names.intern("emails");
        let b = names.intern("emails");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "emails");
        assert!(!Arc::ptr_eq(&a, &names.intern("reports")));
    }

    #[test]
    fn unused_names_are_dropped_once_the_table_doubles() {
        let mut names = Names::default();
        let kept: Vec<Arc<str>> = (0..10)
            .map(|i| names.intern(&format!("kept-{i}")))
            .collect();
        for i in 0..(3 * NAMES_PRUNE_MIN) {
            names.intern(&format!("gone-{i}"));
        }
        assert!(
            names.len() <= 2 * NAMES_PRUNE_MIN,
            "table holds {} names",
            names.len()
        );
        for (i, k) in kept.iter().enumerate() {
            assert!(
                Arc::ptr_eq(k, &names.intern(&format!("kept-{i}"))),
                "a name in use stays shared"
            );
        }
    }
}
