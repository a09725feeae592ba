//! Replaying a log gives byte-identical snapshots: on two fresh machines, and on one
//! restored from a snapshot taken part-way. The generator here is the wide one (timeouts,
//! jittered backoff, groups, broadcasts; like every log, skewed leader wall clocks), and
//! invariants are checked after every apply.

mod common;

use common::generate::{self as gen, GenEntry};
use proptest::prelude::*;
use taskswarm_state_machine::*;

/// Applies the generated log, returning the concrete entries it resolved to.
/// Every machine starts from these settings; `Configure` entries in the log change them.
const INITIAL: Config = Config {
    retention_ms: 3_000,
    tasks_max: taskswarm_state_machine::limits::DEFAULT_TASKS_MAX,
};

fn record(log: &[GenEntry]) -> (StateMachine, Vec<(u64, Entry)>) {
    let mut sm = StateMachine::new(INITIAL);
    let (mut wall, mut cluster) = (1_000u64, 0u64);
    let mut entries = Vec::new();
    for (i, e) in log.iter().enumerate() {
        wall += e.advance_ms;
        cluster += e.advance_ms;
        let index = 2 * i as u64 + 1; // gaps, as when raft applies blank entries without us
        let entry = Entry {
            wall_ms: e.wall_ms(wall),
            cluster_ms: cluster,
            commands: e.commands.iter().map(|g| gen::resolve(g, &sm)).collect(),
        };
        assert_eq!(
            Entry::from_bytes(&entry.to_bytes()).unwrap(),
            entry,
            "entry round-trips"
        );
        sm.apply(index, &entry);
        sm.check_invariants();
        entries.push((index, entry));
    }
    (sm, entries)
}

proptest! {
    #![proptest_config(gen::seeded(1_500, "determinism"))]
    #[test]
    fn replay_and_restore_give_identical_snapshots(log in gen::gen_log(true, 50), cut in any::<prop::sample::Index>()) {
        let (original, entries) = record(&log);
        let expected = original.snapshot();

        let mut replay = StateMachine::new(INITIAL);
        for (index, entry) in &entries {
            replay.apply(*index, entry);
        }
        prop_assert_eq!(&replay.snapshot(), &expected);

        let cut = cut.index(entries.len() + 1);
        let mut head = StateMachine::new(INITIAL);
        for (index, entry) in &entries[..cut] {
            head.apply(*index, entry);
        }
        let mut restored = StateMachine::restore(&head.snapshot()).expect("snapshot restores");
        prop_assert_eq!(&restored, &head, "restore gives back the same machine");
        for (index, entry) in &entries[cut..] {
            let a = head.apply(*index, entry);
            let b = restored.apply(*index, entry);
            prop_assert_eq!(a, b, "same outcomes after restore");
        }
        prop_assert_eq!(restored.snapshot(), expected);
        prop_assert_eq!(restored.state_hash(), original.state_hash());
    }
}

proptest! {
    #![proptest_config(gen::seeded(500, "snapshot view"))]
    /// The node takes a view under its lock and encodes it while applies go on: whatever
    /// those applies change (copy-on-write), the view still encodes the state it was taken
    /// from, and the machine itself is unaffected by the view.
    #[test]
    fn a_view_encodes_the_state_it_was_taken_from_while_applies_go_on(log in gen::gen_log(true, 50), cut in any::<prop::sample::Index>()) {
        let (original, entries) = record(&log);
        let cut = cut.index(entries.len() + 1);
        let mut sm = StateMachine::new(INITIAL);
        for (index, entry) in &entries[..cut] {
            sm.apply(*index, entry);
        }
        let at_cut = sm.snapshot();
        let view = sm.snapshot_view();
        for (index, entry) in &entries[cut..] {
            sm.apply(*index, entry);
            sm.check_invariants();
        }
        prop_assert_eq!(view.encode(), at_cut);
        prop_assert_eq!(view.task_count(), StateMachine::restore(&view.encode()).unwrap().task_count());
        prop_assert_eq!(sm.snapshot(), original.snapshot());
        prop_assert_eq!(&sm, &original);
    }
}

#[test]
fn a_corrupt_snapshot_is_an_error_not_a_panic() {
    let mut sm = StateMachine::default();
    let mut index = 0;
    for _ in 0..5 {
        index += 1;
        sm.apply(
            index,
            &Entry {
                wall_ms: 1,
                cluster_ms: 1,
                commands: vec![Command::Enqueue {
                    tasks: vec![NewTask {
                        queue: "q".into(),
                        kind: "k".into(),
                        payload: "{}".into(),
                        ..Default::default()
                    }],
                }],
            },
        );
    }
    let bytes = sm.snapshot();
    for cut in 0..bytes.len() {
        assert!(
            StateMachine::restore(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    let mut flipped = bytes.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0xff;
        let _ = StateMachine::restore(&flipped); // must not panic
        flipped[i] ^= 0xff;
    }
    let mut bad_version = bytes;
    bad_version[8] = 99;
    assert!(matches!(
        StateMachine::restore(&bad_version),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
}
