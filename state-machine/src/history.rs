//! A task's bounded event history, stored in as few bytes as it can be.
//!
//! Why its own type: a backlog of a million queued tasks is the state's common case, and
//! each of those tasks has exactly one event, its `enqueued`, stamped with the task's own
//! creation time. Storing it cost 64 bytes per task (one `Event` on the heap) for nothing
//! the task does not already hold. So that event is implied by a flag, and the events
//! after it live in an exactly sized boxed slice (16 bytes, where a `VecDeque` is 32 and
//! keeps spare slots).
//!
//! What readers see is unchanged: `events` yields the implied `enqueued` first, then the
//! stored ones, and the snapshot encodes them the same way, so the snapshot's bytes are the
//! same as before. Decoding turns a leading `enqueued` at the creation time back into the
//! flag ([`History::from_events`]), the one rule both paths follow.

use std::borrow::Cow;

use crate::codec::{Encode, Writer};
use crate::limits::TASK_EVENTS_MAX;
use crate::task::{Event, EventKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The history begins with `Enqueued` at the task's creation time, not stored.
    enqueued_implied: bool,
    /// The other events, oldest first. Exactly sized: a push reallocates, and a task holds
    /// at most `TASK_EVENTS_MAX` events, so a push copies at most 4 KiB.
    stored: Box<[Event]>,
}

/// The `enqueued` event of a task created at `created_wall_ms`: the one event a history
/// implies when it comes first.
fn creation_enqueued(created_wall_ms: u64) -> Event {
    Event {
        wall_ms: created_wall_ms,
        kind: EventKind::Enqueued,
    }
}

fn is_creation_enqueued(event: &Event, created_wall_ms: u64) -> bool {
    *event == creation_enqueued(created_wall_ms)
}

impl History {
    /// Whether `event`, arriving as the first event of a task created at
    /// `created_wall_ms`, can be implied instead of stored.
    fn implies(&self, event: &Event, created_wall_ms: u64) -> bool {
        !self.enqueued_implied
            && self.stored.is_empty()
            && is_creation_enqueued(event, created_wall_ms)
    }

    /// The history holding `events` (as decoded from a snapshot) for a task created at
    /// `created_wall_ms`. At most `TASK_EVENTS_MAX`; the caller checks.
    pub fn from_events(events: Vec<Event>, created_wall_ms: u64) -> Self {
        let mut history = Self::default();
        let mut events = events.into_iter().peekable();
        if events
            .peek()
            .is_some_and(|first| history.implies(first, created_wall_ms))
        {
            events.next();
            history.enqueued_implied = true;
        }
        history.stored = events.collect();
        history
    }

    pub fn len(&self) -> usize {
        usize::from(self.enqueued_implied) + self.stored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events, oldest first, the implied `enqueued` rebuilt from the creation time.
    pub fn iter(&self, created_wall_ms: u64) -> impl Iterator<Item = Cow<'_, Event>> + '_ {
        let implied = self
            .enqueued_implied
            .then(|| Cow::Owned(creation_enqueued(created_wall_ms)));
        implied
            .into_iter()
            .chain(self.stored.iter().map(Cow::Borrowed))
    }

    /// Writes the events as a `Vec<Event>` would be: the bytes of the old `VecDeque`.
    pub(crate) fn encode(&self, created_wall_ms: u64, w: &mut Writer) {
        w.len(self.len());
        if self.enqueued_implied {
            creation_enqueued(created_wall_ms).encode(w);
        }
        for event in &self.stored {
            event.encode(w);
        }
    }

    /// The newest event.
    pub fn last(&self, created_wall_ms: u64) -> Option<Cow<'_, Event>> {
        match self.stored.last() {
            Some(event) => Some(Cow::Borrowed(event)),
            None => self.iter(created_wall_ms).next(),
        }
    }

    /// Appends `event`. At `TASK_EVENTS_MAX` the oldest goes first; returns whether one
    /// went (the caller counts them).
    pub fn push(&mut self, event: Event, created_wall_ms: u64) -> bool {
        if self.implies(&event, created_wall_ms) {
            self.enqueued_implied = true;
            return false;
        }
        let full = self.len() == TASK_EVENTS_MAX;
        let mut stored = std::mem::take(&mut self.stored).into_vec();
        if full {
            if self.enqueued_implied {
                self.enqueued_implied = false;
            } else {
                stored.remove(0);
            }
        }
        stored.reserve_exact(1);
        stored.push(event);
        // One form for one history, whichever way it was reached: a stored `enqueued` at
        // the creation time that a drop brought to the front is implied, as the decoder
        // would have it (no command does this today; a later one might).
        if !self.enqueued_implied
            && stored
                .first()
                .is_some_and(|e| is_creation_enqueued(e, created_wall_ms))
        {
            stored.remove(0);
            self.enqueued_implied = true;
        }
        self.stored = stored.into_boxed_slice();
        assert!(self.len() <= TASK_EVENTS_MAX);
        full
    }

    /// Drops every event (tests build histories from scratch).
    #[cfg(test)]
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(wall_ms: u64, kind: EventKind) -> Event {
        Event { wall_ms, kind }
    }

    fn collect(h: &History, created: u64) -> Vec<Event> {
        h.iter(created).map(Cow::into_owned).collect()
    }

    #[test]
    fn a_queued_task_stores_no_event() {
        let mut h = History::default();
        assert!(!h.push(ev(5, EventKind::Enqueued), 5));
        assert!(h.enqueued_implied);
        assert!(h.stored.is_empty());
        assert_eq!(collect(&h, 5), vec![ev(5, EventKind::Enqueued)]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn only_a_first_enqueued_at_the_creation_time_is_implied() {
        let mut late = History::default();
        late.push(ev(6, EventKind::Enqueued), 5);
        assert!(!late.enqueued_implied, "another time is stored as it is");
        let mut second = History::default();
        second.push(ev(5, EventKind::Joined), 5);
        second.push(ev(5, EventKind::Enqueued), 5);
        assert!(!second.enqueued_implied, "not first: stored");
        assert_eq!(
            collect(&second, 5),
            vec![ev(5, EventKind::Joined), ev(5, EventKind::Enqueued)]
        );
    }

    #[test]
    fn decoding_what_was_pushed_gives_the_same_history() {
        for first in [EventKind::Enqueued, EventKind::Joined] {
            let mut h = History::default();
            h.push(ev(5, first.clone()), 5);
            h.push(ev(7, EventKind::Joined), 5);
            let again = History::from_events(collect(&h, 5), 5);
            assert_eq!(again, h, "first event {first:?}");
        }
    }

    #[test]
    fn an_enqueued_at_the_creation_time_that_becomes_first_is_implied() {
        let mut h = History::default();
        h.push(ev(5, EventKind::Joined), 5);
        h.push(ev(5, EventKind::Enqueued), 5);
        for i in 0..(TASK_EVENTS_MAX as u64 - 1) {
            h.push(ev(6 + i, EventKind::Joined), 5);
        }
        assert!(
            h.enqueued_implied,
            "the drop of the first event made it the oldest"
        );
        assert_eq!(History::from_events(collect(&h, 5), 5), h);
    }

    #[test]
    fn when_full_the_oldest_goes_first_implied_or_stored() {
        let mut h = History::default();
        h.push(ev(1, EventKind::Enqueued), 1);
        let mut dropped = 0;
        for i in 0..(TASK_EVENTS_MAX as u64 + 3) {
            dropped += u64::from(h.push(ev(10 + i, EventKind::Joined), 1));
        }
        assert_eq!(h.len(), TASK_EVENTS_MAX);
        assert_eq!(dropped, 4, "the implied enqueued and three stored events");
        let events = collect(&h, 1);
        assert_eq!(events[0].wall_ms, 13);
        assert_eq!(
            events.last().unwrap().wall_ms,
            10 + TASK_EVENTS_MAX as u64 + 2
        );
        assert_eq!(h.stored.len(), TASK_EVENTS_MAX, "exactly sized");
    }
}
