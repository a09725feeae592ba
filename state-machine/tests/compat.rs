//! Compatibility: bytes saved by an earlier build must still decode, to the same values,
//! and re-encode to the same bytes. The fixtures are written once with
//! `TASKSWARM_BLESS=1 cargo test --release -p taskswarm-state-machine --test compat`;
//! a format change that breaks them needs a new version number and new fixtures beside
//! the old ones, never edited old ones.

use std::path::PathBuf;

use taskswarm_state_machine::*;

fn fixture(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("TASKSWARM_BLESS").is_some() && !path.exists() {
        std::fs::write(&path, bytes).unwrap();
    }
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("fixture {} missing ({e}); bless it once", path.display()))
}

/// An entry using every command and every optional field.
fn every_command() -> Entry {
    Entry {
        wall_ms: 1_700_000_000_000,
        cluster_ms: 42_000,
        commands: vec![
            Command::Enqueue {
                tasks: vec![
                    NewTask {
                        queue: "emails".into(),
                        kind: "send".into(),
                        payload: "{\"to\":\"a@b.c\"}".into(),
                        priority: -3,
                        idempotency_key: Some("order-1".into()),
                        coalesce_key: Some("user-7".into()),
                        run_at_wall_ms: None,
                        delay_ms: Some(0),
                        max_attempts: Some(5),
                        backoff: Some(Backoff {
                            initial_ms: 100,
                            multiplier_permille: 1_500,
                            max_ms: 10_000,
                        }),
                        lease_ms: Some(2_000),
                        timeouts: Timeouts {
                            schedule_to_start_ms: Some(60_000),
                            start_to_close_ms: Some(30_000),
                            schedule_to_close_ms: Some(600_000),
                        },
                        group: Some("batch-9".into()),
                    },
                    NewTask {
                        queue: "emails".into(),
                        kind: "send".into(),
                        payload: "2".into(),
                        priority: 7,
                        ..Default::default()
                    },
                ],
            },
            Command::Claim(Claim {
                worker: "w-1".into(),
                queues: vec!["emails".into()],
                kinds: Some(vec!["send".into()]),
                max: 1,
                lease_ms: Some(1_000),
                min_priority: Some(5),
            }),
            Command::Claim(Claim {
                worker: "w-2".into(),
                queues: vec!["emails".into()],
                kinds: None,
                max: 2,
                lease_ms: None,
                min_priority: None,
            }),
            Command::Heartbeat {
                worker: "w-2".into(),
                leases: vec![LeaseBeat {
                    task: TaskId(1),
                    token: Token(65_537),
                    progress: Some("{\"pct\":10}".into()),
                    lease_ms: Some(5_000),
                }],
            },
            Command::Fail {
                task: TaskId(1),
                token: Token(65_537),
                code: Some("smtp".into()),
                message: "421".into(),
                retryable: true,
                retry_after_ms: Some(10),
            },
            Command::Complete {
                task: TaskId(2),
                token: Token(65_536),
                result: "{\"ok\":true}".into(),
            },
            Command::Release {
                task: TaskId(2),
                token: Token(65_536),
                delay_ms: 5,
            },
            Command::Cancel { task: TaskId(1) },
            Command::Requeue { task: TaskId(1) },
            Command::Pause {
                queue: "emails".into(),
            },
            Command::Resume {
                queue: "emails".into(),
            },
            Command::Pause {
                queue: "later".into(),
            },
            Command::Broadcast {
                channel: "ops".into(),
                message: "{\"drain\":true}".into(),
            },
            Command::Tick,
        ],
    }
}

/// Tasks waiting in every way a task can wait: an absolute run_at, an enqueue delay, a
/// retry after a failure, a release with a delay.
fn scheduling() -> Entry {
    Entry {
        wall_ms: 1_700_000_001_000,
        cluster_ms: 43_000,
        commands: vec![
            Command::Enqueue {
                tasks: vec![
                    NewTask {
                        queue: "reports".into(),
                        kind: "daily".into(),
                        payload: "{}".into(),
                        run_at_wall_ms: Some(1_700_000_060_000),
                        ..Default::default()
                    },
                    NewTask {
                        queue: "reports".into(),
                        kind: "later".into(),
                        payload: "{}".into(),
                        delay_ms: Some(30_000),
                        ..Default::default()
                    },
                    NewTask {
                        queue: "reports".into(),
                        kind: "flaky".into(),
                        payload: "{}".into(),
                        ..Default::default()
                    },
                    NewTask {
                        queue: "reports".into(),
                        kind: "flaky".into(),
                        payload: "{}".into(),
                        ..Default::default()
                    },
                ],
            },
            Command::Claim(Claim {
                worker: "w-3".into(),
                queues: vec!["reports".into()],
                kinds: Some(vec!["flaky".into()]),
                max: 2,
                lease_ms: None,
                min_priority: None,
            }),
            Command::Fail {
                task: TaskId(5),
                token: Token(131_072),
                code: None,
                message: "try later".into(),
                retryable: true,
                retry_after_ms: Some(5_000),
            },
            Command::Release {
                task: TaskId(6),
                token: Token(131_073),
                delay_ms: 2_000,
            },
        ],
    }
}

fn applied() -> (StateMachine, Outcome) {
    let mut sm = StateMachine::new(Config {
        retention_ms: 60_000,
        tasks_max: 1_000,
    });
    let outcome = sm.apply(1, &every_command());
    sm.check_invariants();
    (sm, outcome)
}

/// The sample entry, then tasks waiting in every way.
fn applied_with_waiting_tasks() -> StateMachine {
    let (mut sm, _) = applied();
    let outcome = sm.apply(2, &scheduling());
    assert!(outcome.results.iter().all(Result::is_ok), "{outcome:?}");
    sm.check_invariants();
    sm
}

#[test]
fn the_sample_entry_exercises_accepted_and_refused_paths() {
    let (_, outcome) = applied();
    let codes: Vec<&str> = outcome
        .results
        .iter()
        .map(|r| r.as_ref().map_or_else(Rejection::code, |_| "ok"))
        .collect();
    assert_eq!(
        codes,
        vec![
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "task_finished",
            "ok",
            "not_requeueable",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok"
        ]
    );
}

#[test]
fn entry_v1_bytes_still_decode() {
    let entry = every_command();
    let saved = fixture("entry-v1.bin", &entry.to_bytes());
    assert_eq!(saved[0], 1, "version byte");
    assert_eq!(Entry::from_bytes(&saved).unwrap(), entry);
    assert_eq!(entry.to_bytes(), saved, "encoding is unchanged");
}

#[test]
fn outcome_v1_bytes_still_decode() {
    let (_, outcome) = applied();
    let saved = fixture("outcome-v1.bin", &outcome.to_bytes());
    assert_eq!(Outcome::from_bytes(&saved).unwrap(), outcome);
    assert_eq!(outcome.to_bytes(), saved);
}

#[test]
fn snapshot_v1_bytes_still_restore() {
    // Written by format 1 (before tasks had `joined_keys`): restores to the same machine.
    let (sm, _) = applied();
    let saved = fixture("snapshot-v1.bin", b"");
    assert_eq!(&saved[8..9], &[1], "a version 1 snapshot");
    let restored = StateMachine::restore(&saved).unwrap();
    assert_eq!(restored, sm);
}

#[test]
fn snapshot_v2_bytes_still_restore() {
    // Written by format 2 (before `run_at` told wall time from cluster time).
    let (sm, _) = applied();
    let saved = fixture("snapshot-v2.bin", b"");
    assert_eq!(&saved[8..9], &[2], "a version 2 snapshot");
    let restored = StateMachine::restore(&saved).unwrap();
    assert_eq!(restored, sm);
}

#[test]
fn snapshot_v2_scheduled_tasks_keep_waiting_for_their_wall_time() {
    // Written by format 2 after `scheduling()`: every wait was a wall time then, relative
    // delays included (entry wall time + delay), and they restore as such.
    let saved = fixture("snapshot-v2-scheduled.bin", b"");
    assert_eq!(&saved[8..9], &[2], "a version 2 snapshot");
    let restored = StateMachine::restore(&saved).unwrap();
    restored.check_invariants();
    let waits = [
        (3, 1_700_000_060_000), // run_at
        (4, 1_700_000_031_000), // enqueue delay 30 s
        (5, 1_700_000_006_000), // retry_after 5 s
        (6, 1_700_000_003_000), // release delay 2 s
    ];
    let now = applied_with_waiting_tasks();
    for (id, wall) in waits {
        let task = restored.task(TaskId(id)).unwrap();
        assert_eq!(task.state, TaskState::Scheduled);
        assert_eq!(task.rare.run_at, Some(RunAt::Wall(wall)), "task {id}");
        // Apart from what it waits for, the task is what this build makes of the log.
        let mut expected = now.task(TaskId(id)).unwrap().clone();
        expected.rare.get_mut().run_at = task.rare.run_at;
        assert_eq!(task, &expected);
    }
    assert_eq!(restored.next_due().wall_ms, Some(1_700_000_003_000));

    // They become ready by wall time, as they were scheduled to.
    let mut sm = restored;
    let tick = |wall_ms| Entry {
        wall_ms,
        cluster_ms: 43_000,
        commands: vec![Command::Tick],
    };
    sm.apply(3, &tick(1_700_000_006_000));
    sm.check_invariants();
    let states: Vec<TaskState> = (3..=6)
        .map(|id| sm.task(TaskId(id)).unwrap().state)
        .collect();
    use TaskState::{Queued, Scheduled};
    assert_eq!(states, vec![Scheduled, Scheduled, Queued, Queued]);
}

#[test]
fn snapshot_v3_bytes_still_restore() {
    let sm = applied_with_waiting_tasks();
    let waits: Vec<Option<RunAt>> = (3..=6)
        .map(|id| sm.task(TaskId(id)).unwrap().rare.run_at)
        .collect();
    assert_eq!(
        waits,
        vec![
            Some(RunAt::Wall(1_700_000_060_000)),
            Some(RunAt::Cluster(73_000)),
            Some(RunAt::Cluster(48_000)),
            Some(RunAt::Cluster(45_000)),
        ],
        "an absolute run_at waits for wall time, relative delays for cluster time"
    );
    let saved = fixture("snapshot-v3.bin", &sm.snapshot());
    assert_eq!(&saved[8..9], &[3], "a version 3 snapshot");
    let restored = StateMachine::restore(&saved).unwrap();
    assert_eq!(restored, sm);
    assert_eq!(restored.snapshot(), saved, "encoding is unchanged");
}

#[test]
fn serde_carries_the_versioned_bytes() {
    // openraft stores and ships entries through serde; whatever format carries them must
    // carry exactly the versioned encoding.
    let entry = every_command();
    let json = serde_json::to_vec(&entry).unwrap();
    let as_bytes: Vec<u8> = serde_json::from_slice(&json).unwrap();
    assert_eq!(as_bytes, entry.to_bytes());
    assert_eq!(serde_json::from_slice::<Entry>(&json).unwrap(), entry);
    let (_, outcome) = applied();
    let json = serde_json::to_vec(&outcome).unwrap();
    assert_eq!(serde_json::from_slice::<Outcome>(&json).unwrap(), outcome);
}

/// `CompleteAndClaim` and its reply arrived later inside entry format 1 as new tags:
/// their bytes are pinned like the rest (an older build refuses the tag, it never
/// misreads it).
fn complete_and_claim_applied() -> (Entry, Outcome) {
    let mut sm = StateMachine::new(Config::default());
    let enqueue = Entry {
        wall_ms: 1_700_000_000_000,
        cluster_ms: 1_000,
        commands: vec![Command::Enqueue {
            tasks: (0..2)
                .map(|i| NewTask {
                    queue: "emails".into(),
                    kind: "send".into(),
                    payload: format!("{i}"),
                    ..Default::default()
                })
                .collect(),
        }],
    };
    sm.apply(1, &enqueue);
    let claim = Claim {
        worker: "w-1".into(),
        queues: vec!["emails".into()],
        kinds: Some(vec!["send".into()]),
        max: 1,
        lease_ms: Some(5_000),
        min_priority: Some(-1),
    };
    let first = sm.apply(
        2,
        &Entry {
            wall_ms: 1_700_000_000_010,
            cluster_ms: 1_010,
            commands: vec![Command::Claim(claim.clone())],
        },
    );
    let Ok(Reply::Claimed(got)) = &first.results[0] else {
        panic!("{first:?}")
    };
    let fused = Entry {
        wall_ms: 1_700_000_000_020,
        cluster_ms: 1_020,
        commands: vec![Command::CompleteAndClaim {
            task: got[0].id,
            token: got[0].token,
            result: "{\"ok\":true}".into(),
            next: claim,
        }],
    };
    let outcome = sm.apply(3, &fused);
    sm.check_invariants();
    (fused, outcome)
}

#[test]
fn complete_and_claim_bytes_still_decode() {
    let (entry, outcome) = complete_and_claim_applied();
    let saved = fixture("entry-v1-complete-and-claim.bin", &entry.to_bytes());
    assert_eq!(Entry::from_bytes(&saved).unwrap(), entry);
    assert_eq!(entry.to_bytes(), saved, "encoding is unchanged");
    assert!(
        matches!(&outcome.results[0], Ok(Reply::CompletedAndClaimed { duplicate: false, tasks }) if tasks.len() == 1),
        "{outcome:?}"
    );
    let saved = fixture("outcome-v1-complete-and-claim.bin", &outcome.to_bytes());
    assert_eq!(Outcome::from_bytes(&saved).unwrap(), outcome);
    assert_eq!(outcome.to_bytes(), saved);
}

#[test]
fn snapshot_v4_bytes_still_restore() {
    // Format 4 exists for states whose behaviour version was raised.
    let mut sm = applied_with_waiting_tasks();
    let index = sm.last_applied() + 1;
    let outcome = sm.apply(
        index,
        &Entry {
            wall_ms: sm.wall_ms(),
            cluster_ms: sm.cluster_ms(),
            commands: vec![Command::RaiseBehaviour { version: 2 }],
        },
    );
    assert_eq!(
        outcome.results,
        vec![Ok(Reply::BehaviourRaised { version: 2 })]
    );
    let saved = fixture("snapshot-v4.bin", &sm.snapshot());
    assert_eq!(
        &saved[8..10],
        &[4, 2],
        "a version 4 snapshot at behaviour 2"
    );
    let restored = StateMachine::restore(&saved).unwrap();
    assert_eq!(restored, sm);
    assert_eq!(restored.behaviour_version(), 2);
    assert_eq!(restored.snapshot(), saved, "encoding is unchanged");
}

#[test]
fn raise_behaviour_bytes_still_decode() {
    let entry = Entry {
        wall_ms: 1_700_000_000_000,
        cluster_ms: 42_000,
        commands: vec![Command::RaiseBehaviour { version: 2 }],
    };
    let saved = fixture("entry-v1-raise-behaviour.bin", &entry.to_bytes());
    assert_eq!(Entry::from_bytes(&saved).unwrap(), entry);
    let outcome = Outcome {
        results: vec![Ok(Reply::BehaviourRaised { version: 2 })],
        events: vec![],
    };
    let saved = fixture("outcome-v1-raise-behaviour.bin", &outcome.to_bytes());
    assert_eq!(Outcome::from_bytes(&saved).unwrap(), outcome);
}
