//! Behaviour versions: the version lives in the state, moves only up, and `apply` follows
//! it rather than the build; snapshots of a version-1 state are what old builds wrote.

mod common;

use common::*;
use taskswarm_state_machine::*;

fn raise(s: &mut Sm, version: u32) -> CommandResult {
    s.apply(Command::RaiseBehaviour { version })
}

/// One heartbeat of `task` under `token` carrying `progress`.
fn report(s: &mut Sm, task: TaskId, token: Token, progress: &str) {
    s.heartbeat_with(LeaseBeat {
        task,
        token,
        progress: Some(progress.into()),
        lease_ms: None,
    })
    .unwrap();
}

/// A claimed task whose worker then reports the same progress `reports` times.
fn reported(s: &mut Sm, reports: usize) -> TaskId {
    let id = s.add("q", "k");
    let token = s.claim_one("q").token;
    for _ in 0..reports {
        report(s, id, token, "{\"done\":1}");
    }
    id
}

fn kinds(task: &Task) -> Vec<&'static str> {
    task.events().map(|e| e.kind.name()).collect()
}

#[test]
fn a_new_machine_is_at_the_first_version_and_raises_only_up() {
    let mut s = Sm::default();
    assert_eq!(s.sm.behaviour_version(), BEHAVIOUR_VERSION_FIRST);
    assert_eq!(raise(&mut s, 2), Ok(Reply::BehaviourRaised { version: 2 }));
    // A second leader deciding the same, or an older decision, changes nothing.
    assert_eq!(raise(&mut s, 2), Ok(Reply::BehaviourRaised { version: 2 }));
    assert_eq!(raise(&mut s, 1), Ok(Reply::BehaviourRaised { version: 2 }));
    assert_eq!(s.sm.behaviour_version(), 2);
}

#[test]
fn a_raise_outside_the_limits_is_refused_and_changes_nothing() {
    let mut s = Sm::default();
    assert_eq!(code(raise(&mut s, 0)), "invalid_request");
    assert_eq!(
        code(raise(&mut s, limits::BEHAVIOUR_VERSION_LIMIT + 1)),
        "invalid_request"
    );
    assert_eq!(s.sm.behaviour_version(), BEHAVIOUR_VERSION_FIRST);
}

#[test]
fn a_version_past_the_build_is_still_recorded_so_that_replicas_agree() {
    // The coordinator stops a node whose build cannot follow; the state machine itself
    // records what the log says, like every other replica.
    let mut s = Sm::default();
    let past = BEHAVIOUR_VERSION_MAX + 1;
    assert_eq!(
        raise(&mut s, past),
        Ok(Reply::BehaviourRaised { version: past })
    );
    assert!(!behaviour_supported(
        BEHAVIOUR_VERSION_MAX,
        s.sm.behaviour_version()
    ));
}

#[test]
fn at_version_1_repeated_progress_pushes_the_first_lines_out_of_the_history() {
    let mut s = Sm::default();
    let id = reported(&mut s, limits::TASK_EVENTS_MAX + 6);
    let task = s.task(id);
    assert_eq!(task.events_len(), limits::TASK_EVENTS_MAX);
    assert!(task.rare.events_dropped > 0);
    assert!(kinds(task).iter().all(|k| *k == "progress"));
}

#[test]
fn at_version_2_a_progress_report_that_changes_nothing_records_nothing() {
    let mut s = Sm::default();
    raise(&mut s, 2).unwrap();
    let id = reported(&mut s, limits::TASK_EVENTS_MAX + 6);
    let task = s.task(id);
    assert_eq!(kinds(task), ["enqueued", "claimed", "progress"]);
    assert_eq!(task.rare.events_dropped, 0);
    // A new value is a new line.
    let token = task.last_token().unwrap();
    for progress in ["2", "2", "3"] {
        report(&mut s, id, token, progress);
    }
    assert_eq!(
        kinds(s.task(id)),
        ["enqueued", "claimed", "progress", "progress", "progress"]
    );
}

#[test]
fn the_event_stream_carries_what_the_history_records_at_every_version() {
    for version in 1..=BEHAVIOUR_VERSION_MAX {
        let mut s = Sm::default();
        raise(&mut s, version).unwrap();
        let id = s.add("q", "k");
        let token = s.claim_one("q").token;
        let index_before = s.index;
        for progress in ["1", "1", "2"] {
            report(&mut s, id, token, progress);
        }
        // Re-apply the same log to a fresh machine and count what the reports emitted.
        let mut replay = StateMachine::new(Config::default());
        let mut reports = 0;
        for (index, entry) in &s.log {
            let outcome = replay.apply(*index, entry);
            if *index > index_before {
                reports += outcome.events.len();
            }
        }
        let lines = kinds(s.task(id))
            .iter()
            .filter(|k| **k == "progress")
            .count();
        assert_eq!(
            reports, lines,
            "version {version}: the stream and the history agree"
        );
        assert_eq!(lines, if version >= 2 { 2 } else { 3 }, "version {version}");
    }
}

#[test]
fn a_version_1_state_is_written_as_format_3_and_a_raised_one_as_format_4() {
    let mut s = Sm::default();
    reported(&mut s, 2);
    let v1 = s.sm.snapshot();
    assert_eq!(&v1[8..9], &[3], "format 3, as old builds write");
    raise(&mut s, 2).unwrap();
    let v2 = s.sm.snapshot();
    assert_eq!(&v2[8..10], &[4, 2], "format 4, then the version");
    let restored = StateMachine::restore(&v2).unwrap();
    assert_eq!(restored.behaviour_version(), 2);
    assert_eq!(restored, s.sm);
    assert_eq!(restored.snapshot(), v2);
    assert_ne!(
        StateMachine::restore(&v1).unwrap().state_hash(),
        s.sm.state_hash()
    );
}

#[test]
fn a_format_4_snapshot_claiming_version_1_is_refused() {
    let mut s = Sm::default();
    raise(&mut s, 2).unwrap();
    let mut bytes = s.sm.snapshot();
    assert_eq!(&bytes[8..10], &[4, 2]);
    bytes[9] = 1;
    assert!(StateMachine::restore(&bytes).is_err());
}

/// Only in the test build one version ahead (`--features next-behaviour`).
#[cfg(feature = "next-behaviour")]
#[test]
fn at_the_test_only_version_3_the_history_skips_the_enqueued_line() {
    let mut s = Sm::default();
    raise(&mut s, 2).unwrap();
    let before = s.add("q", "k");
    raise(&mut s, 3).unwrap();
    let after = s.add("q", "k");
    assert_eq!(kinds(s.task(before)), ["enqueued"]);
    assert!(kinds(s.task(after)).is_empty());
}
