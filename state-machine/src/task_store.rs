//! The tasks by id, in a shape that can be copied in O(tasks / CHUNK_TASKS) time.
//!
//! Why not a `BTreeMap<TaskId, Task>`: a snapshot must encode one consistent state, and
//! encoding a million tasks takes a second or more. Under the node's lock that froze
//! every apply (a write waited seconds). Here a copy shares everything with the original
//! (`Arc`s): the node copies the store under its lock in about a millisecond and encodes
//! the copy without it. A later change copies only what it touches: the chunk's slot
//! table (`CHUNK_TASKS` pointers), then the one task (copy-on-write, `Arc::make_mut`).
//! While no copy is alive, nothing is ever copied.
//!
//! Ids are dense and increase from 1, and finished tasks are dropped roughly in id
//! order, so fixed-size chunks of consecutive ids stay full: a slot costs one pointer,
//! where a B-tree's half-empty nodes cost most of a task's size again. A chunk that
//! empties is dropped.
//!
//! Iteration is in id order (chunks in key order, slots in index order): deterministic,
//! as the state machine requires.

use std::ops::{Index, RangeFrom};
use std::sync::Arc;

use std::collections::BTreeMap;

use crate::task::{Task, TaskId};

/// Consecutive ids per chunk. Small enough that copying one chunk's slot table is
/// cheap (512 bytes), large enough that the chunk map of a million tasks is small.
pub(crate) const CHUNK_TASKS: u64 = 64;

#[derive(Debug, Clone)]
struct Chunk {
    slots: Vec<Option<Arc<Task>>>,
    live: u32,
}

impl Chunk {
    fn empty() -> Self {
        Self {
            slots: vec![None; CHUNK_TASKS as usize],
            live: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskStore {
    chunks: BTreeMap<u64, Arc<Chunk>>,
    len: usize,
}

fn place(id: TaskId) -> (u64, usize) {
    (id.0 / CHUNK_TASKS, (id.0 % CHUNK_TASKS) as usize)
}

impl TaskStore {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, id: &TaskId) -> Option<&Task> {
        let (chunk, slot) = place(*id);
        self.chunks.get(&chunk)?.slots[slot].as_deref()
    }

    pub fn contains_key(&self, id: &TaskId) -> bool {
        self.get(id).is_some()
    }

    /// The task to change, copied first if a copy of the store still shares it.
    pub fn get_mut(&mut self, id: &TaskId) -> Option<&mut Task> {
        let (chunk, slot) = place(*id);
        let chunk = Arc::make_mut(self.chunks.get_mut(&chunk)?);
        chunk.slots[slot].as_mut().map(Arc::make_mut)
    }

    /// Inserts `task` under its id; returns the task that held the id before, if any.
    pub fn insert(&mut self, task: Task) -> Option<Task> {
        let (chunk, slot) = place(task.id);
        let chunk = Arc::make_mut(
            self.chunks
                .entry(chunk)
                .or_insert_with(|| Arc::new(Chunk::empty())),
        );
        let previous = chunk.slots[slot].replace(Arc::new(task));
        match previous {
            Some(previous) => Some(Arc::unwrap_or_clone(previous)),
            None => {
                chunk.live += 1;
                self.len += 1;
                None
            }
        }
    }

    pub fn remove(&mut self, id: &TaskId) -> Option<Task> {
        let (key, slot) = place(*id);
        let chunk = Arc::make_mut(self.chunks.get_mut(&key)?);
        let task = chunk.slots[slot].take()?;
        chunk.live -= 1;
        self.len -= 1;
        if chunk.live == 0 {
            self.chunks.remove(&key);
        }
        Some(Arc::unwrap_or_clone(task))
    }

    /// Every task, in id order.
    pub fn values(&self) -> impl Iterator<Item = &Task> {
        self.chunks
            .values()
            .flat_map(|chunk| chunk.slots.iter().flatten().map(|t| &**t))
    }

    /// Every task with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&TaskId, &Task)> {
        self.values().map(|t| (&t.id, t))
    }

    /// Tasks from an id on, in id order.
    pub fn range(&self, from: RangeFrom<TaskId>) -> impl Iterator<Item = (&TaskId, &Task)> {
        let start = from.start;
        let (first, _) = place(start);
        self.chunks
            .range(first..)
            .flat_map(|(_, chunk)| chunk.slots.iter().flatten().map(|t| &**t))
            .skip_while(move |t| t.id < start)
            .map(|t| (&t.id, t))
    }
}

impl Index<&TaskId> for TaskStore {
    type Output = Task;

    fn index(&self, id: &TaskId) -> &Task {
        self.get(id).expect("a task with this id")
    }
}

impl PartialEq for TaskStore {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.values().eq(other.values())
    }
}

impl Eq for TaskStore {}

impl<'a> IntoIterator for &'a TaskStore {
    type Item = (&'a TaskId, &'a Task);
    type IntoIter = Box<dyn Iterator<Item = (&'a TaskId, &'a Task)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::task as queued_task;

    #[test]
    fn a_copy_keeps_its_state_while_the_original_changes() {
        let mut store = TaskStore::default();
        for id in 1..=200 {
            assert!(store.insert(queued_task(id)).is_none());
        }
        let copy = store.clone();
        store.get_mut(&TaskId(5)).unwrap().priority = 9;
        store.remove(&TaskId(6)).unwrap();
        store.insert(queued_task(300));
        assert_eq!(copy.len(), 200);
        assert_eq!(copy[&TaskId(5)].priority, 0);
        assert!(copy.contains_key(&TaskId(6)));
        assert!(!copy.contains_key(&TaskId(300)));
        assert_eq!(store.len(), 200);
        assert_eq!(store[&TaskId(5)].priority, 9);
        assert!(!store.contains_key(&TaskId(6)));
    }

    #[test]
    fn iterates_in_id_order_across_chunks_and_ranges_start_where_asked() {
        let mut store = TaskStore::default();
        for id in [130, 1, 64, 63, 65, 500, 2] {
            store.insert(queued_task(id));
        }
        let ids: Vec<u64> = store.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids, [1, 2, 63, 64, 65, 130, 500]);
        let from: Vec<u64> = store.range(TaskId(64)..).map(|(id, _)| id.0).collect();
        assert_eq!(from, [64, 65, 130, 500]);
        let from: Vec<u64> = store.range(TaskId(66)..).map(|(id, _)| id.0).collect();
        assert_eq!(from, [130, 500]);
        assert!(store.range(TaskId(501)..).next().is_none());
    }

    #[test]
    fn an_emptied_chunk_is_dropped_and_lengths_stay_right() {
        let mut store = TaskStore::default();
        for id in 1..=64 {
            store.insert(queued_task(id));
        }
        assert_eq!(store.chunks.len(), 2);
        assert!(
            store.insert(queued_task(3)).is_some(),
            "replacing is not adding"
        );
        assert_eq!(store.len(), 64);
        for id in 1..=63 {
            store.remove(&TaskId(id)).unwrap();
        }
        assert_eq!(store.chunks.len(), 1, "chunk 0 (ids 1..=63) emptied");
        assert!(store.remove(&TaskId(1)).is_none());
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
    }
}
