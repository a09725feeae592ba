//! One test (at least) per command and per rejection.

mod common;

use common::*;
use taskswarm_state_machine::*;

// ---- enqueue ------------------------------------------------------------------------

#[test]
fn enqueue_creates_queued_tasks_with_increasing_ids() {
    let mut s = Sm::default();
    let a = s.enqueue(new_task("q", "k")).unwrap();
    let b = s.enqueue(new_task("q", "k")).unwrap();
    assert_eq!(
        (a.id, a.created, a.coalesced, a.state),
        (TaskId(1), true, false, TaskState::Queued)
    );
    assert_eq!(b.id, TaskId(2));
    assert_eq!(s.sm.queue("q").unwrap().counts.get(TaskState::Queued), 2);
    assert_eq!(
        s.task(a.id).events().next().unwrap().kind,
        EventKind::Enqueued
    );
}

#[test]
fn enqueue_batch_gives_each_item_its_own_result() {
    let mut s = Sm::default();
    let bad = NewTask {
        queue: "bad queue".into(),
        ..new_task("q", "k")
    };
    let Ok(Reply::Enqueued(results)) = s.apply(Command::Enqueue {
        tasks: vec![new_task("q", "k"), bad, new_task("q", "k")],
    }) else {
        panic!("batch applies")
    };
    assert_eq!(results[0].as_ref().unwrap().id, TaskId(1));
    assert_eq!(results[1].as_ref().unwrap_err().code(), "invalid_request");
    assert_eq!(results[2].as_ref().unwrap().id, TaskId(2));
}

#[test]
fn enqueue_of_an_empty_batch_is_refused() {
    let mut s = Sm::default();
    assert_eq!(
        code(s.apply(Command::Enqueue { tasks: vec![] })),
        "invalid_request"
    );
}

#[test]
fn enqueue_refuses_bad_fields_and_changes_nothing() {
    let mut s = Sm::default();
    let before = s.sm.snapshot();
    let cases: Vec<(NewTask, &str)> = vec![
        (
            NewTask {
                queue: "".into(),
                ..new_task("q", "k")
            },
            "queue",
        ),
        (
            NewTask {
                queue: "a/b".into(),
                ..new_task("q", "k")
            },
            "queue",
        ),
        (
            NewTask {
                kind: "".into(),
                ..new_task("q", "k")
            },
            "kind",
        ),
        (
            NewTask {
                priority: limits::PRIORITY_MAX + 1,
                ..new_task("q", "k")
            },
            "priority",
        ),
        (
            NewTask {
                max_attempts: Some(0),
                ..new_task("q", "k")
            },
            "max_attempts",
        ),
        (
            NewTask {
                lease_ms: Some(limits::LEASE_MS_MIN - 1),
                ..new_task("q", "k")
            },
            "lease_ms",
        ),
        (
            NewTask {
                idempotency_key: Some("".into()),
                ..new_task("q", "k")
            },
            "idempotency_key",
        ),
        (
            NewTask {
                coalesce_key: Some("a\nb".into()),
                ..new_task("q", "k")
            },
            "coalesce_key",
        ),
        (
            NewTask {
                group: Some("x".repeat(limits::NAME_BYTES_MAX + 1)),
                ..new_task("q", "k")
            },
            "group",
        ),
        (
            NewTask {
                delay_ms: Some(limits::DURATION_MS_MAX + 1),
                ..new_task("q", "k")
            },
            "delay_ms",
        ),
        (
            NewTask {
                timeouts: Timeouts {
                    schedule_to_start_ms: Some(0),
                    ..Default::default()
                },
                ..new_task("q", "k")
            },
            "schedule_to_start_ms",
        ),
        (
            NewTask {
                backoff: Some(Backoff {
                    initial_ms: 1,
                    multiplier_permille: 999,
                    max_ms: 10,
                }),
                ..new_task("q", "k")
            },
            "backoff.multiplier",
        ),
    ];
    for (task, field) in cases {
        match s.enqueue(task) {
            Err(Rejection::InvalidRequest { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected invalid_request, got {other:?}"),
        }
    }
    // The log index moved, nothing else did.
    let mut after = StateMachine::restore(&s.sm.snapshot()).unwrap();
    let mut expected = StateMachine::restore(&before).unwrap();
    expected.apply(
        s.index,
        &Entry {
            wall_ms: s.wall_ms,
            cluster_ms: s.cluster_ms,
            commands: vec![],
        },
    );
    after.apply(s.index + 1, &Entry::default());
    expected.apply(s.index + 1, &Entry::default());
    assert_eq!(after.snapshot(), expected.snapshot());
}

#[test]
fn idempotency_key_returns_the_first_task() {
    let mut s = Sm::default();
    let t = NewTask {
        idempotency_key: Some("order-42".into()),
        ..new_task("q", "k")
    };
    let first = s.enqueue(t.clone()).unwrap();
    let again = s
        .enqueue(NewTask {
            payload: "\"different\"".into(),
            ..t
        })
        .unwrap();
    assert_eq!(
        (again.id, again.created, again.coalesced),
        (first.id, false, false)
    );
    assert_eq!(s.sm.task_count(), 1);
}

#[test]
fn idempotency_key_is_forgotten_when_its_task_is_dropped_after_retention() {
    let mut s = Sm::new(Config {
        retention_ms: 1_000,
        ..Config::default()
    });
    let t = NewTask {
        idempotency_key: Some("k1".into()),
        ..new_task("q", "k")
    };
    let first = s.enqueue(t.clone()).unwrap();
    let c = s.claim_one("q");
    s.complete(c.id, c.token).unwrap();
    s.advance(999);
    s.tick();
    assert_eq!(s.enqueue(t.clone()).unwrap().id, first.id, "still retained");
    s.advance(1);
    assert_eq!(s.tick().dropped, 1);
    let second = s.enqueue(t).unwrap();
    assert!(second.created && second.id != first.id);
}

#[test]
fn coalesce_key_joins_an_unfinished_task_and_shares_its_result() {
    let mut s = Sm::default();
    let t = NewTask {
        coalesce_key: Some("thumb:7".into()),
        ..new_task("q", "k")
    };
    let first = s.enqueue(t.clone()).unwrap();
    let joined = s.enqueue(t.clone()).unwrap();
    assert_eq!(
        (joined.id, joined.created, joined.coalesced),
        (first.id, false, true)
    );
    // Same key in another queue is another task.
    let other = s
        .enqueue(NewTask {
            queue: "r".into(),
            ..t.clone()
        })
        .unwrap();
    assert!(other.created);
    let c = s.claim_one("q");
    let joined_running = s.enqueue(t.clone()).unwrap();
    assert_eq!(joined_running.id, first.id, "joins while running too");
    s.complete(c.id, c.token).unwrap();
    assert_eq!(s.task(first.id).rare.joined, 2);
    let after = s.enqueue(t).unwrap();
    assert!(after.created, "a finished task is not joined");
}

#[test]
fn a_retried_enqueue_that_had_joined_a_coalesced_task_finds_it_again() {
    let mut s = Sm::new(Config {
        retention_ms: 60_000,
        ..Config::default()
    });
    let first = s
        .enqueue(NewTask {
            coalesce_key: Some("c".into()),
            ..new_task("q", "k")
        })
        .unwrap();
    let joiner = NewTask {
        coalesce_key: Some("c".into()),
        idempotency_key: Some("j1".into()),
        ..new_task("q", "k")
    };
    let joined = s.enqueue(joiner.clone()).unwrap();
    assert_eq!(
        (joined.id, joined.created, joined.coalesced),
        (first.id, false, true)
    );
    let retry = s.enqueue(joiner.clone()).unwrap();
    assert_eq!(
        (retry.id, retry.created, retry.coalesced),
        (first.id, false, true)
    );
    assert_eq!(
        s.task(first.id).rare.joined,
        1,
        "a retry is not a second join"
    );
    let c = s.claim_one("q");
    s.complete(c.id, c.token).unwrap();
    let after = s.enqueue(joiner).unwrap();
    assert_eq!(
        (after.id, after.created),
        (first.id, false),
        "still the same task once finished"
    );
    let snapshot = s.sm.snapshot();
    assert_eq!(
        StateMachine::restore(&snapshot).unwrap(),
        s.sm,
        "joined keys survive a snapshot"
    );
}

#[test]
fn delay_and_run_at_schedule_and_a_tick_promotes_when_due() {
    let mut s = Sm::default();
    let delayed = s
        .enqueue(NewTask {
            delay_ms: Some(500),
            ..new_task("q", "k")
        })
        .unwrap();
    let at = s
        .enqueue(NewTask {
            run_at_wall_ms: Some(s.wall_ms + 100),
            ..new_task("q", "k")
        })
        .unwrap();
    assert_eq!(delayed.state, TaskState::Scheduled);
    assert_eq!(
        s.task(delayed.id).rare.run_at,
        Some(RunAt::Cluster(s.cluster_ms + 500)),
        "a delay is relative: cluster time"
    );
    assert_eq!(
        s.task(at.id).rare.run_at,
        Some(RunAt::Wall(s.wall_ms + 100)),
        "run_at is absolute: wall time"
    );
    assert_eq!(s.sm.next_due().wall_ms, Some(s.wall_ms + 100));
    assert_eq!(s.sm.next_due().cluster_ms, Some(s.cluster_ms + 500));
    assert!(s.claim("q", 10).is_empty(), "not yet due");
    s.advance(100);
    assert_eq!(s.tick().promoted, 1);
    assert_eq!(s.claim_one("q").id, at.id);
    s.advance(400);
    s.tick();
    assert_eq!(s.claim_one("q").id, delayed.id);
}

#[test]
fn run_at_in_the_past_is_ready_at_once() {
    let mut s = Sm::default();
    let t = s
        .enqueue(NewTask {
            run_at_wall_ms: Some(5),
            ..new_task("q", "k")
        })
        .unwrap();
    assert_eq!(t.state, TaskState::Queued);
}

#[test]
fn enqueue_is_refused_when_the_task_limit_is_reached() {
    let mut s = Sm::new(Config {
        tasks_max: 2,
        ..Config::default()
    });
    s.add("q", "k");
    s.add("q", "k");
    assert_eq!(code(s.enqueue(new_task("q", "k"))), "queue_full");
}

// ---- claim ---------------------------------------------------------------------------

#[test]
fn claim_takes_higher_priority_first_then_fifo() {
    let mut s = Sm::default();
    let low = s
        .enqueue(NewTask {
            priority: -1,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let a = s.add("q", "k");
    let high = s
        .enqueue(NewTask {
            priority: 5,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let b = s.add("q", "k");
    let order: Vec<TaskId> = s.claim("q", 10).iter().map(|c| c.id).collect();
    assert_eq!(order, vec![high, a, b, low]);
}

#[test]
fn claim_across_queues_takes_the_best_of_all() {
    let mut s = Sm::default();
    let a = s.add("a", "k");
    let b = s
        .enqueue(NewTask {
            priority: 1,
            ..new_task("b", "k")
        })
        .unwrap()
        .id;
    let got = s
        .claim_with(Claim {
            queues: vec!["a".into(), "b".into()],
            ..claim("a", 2)
        })
        .unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b, a]);
}

#[test]
fn claim_filters_by_kind() {
    let mut s = Sm::default();
    s.add("q", "resize");
    let email = s.add("q", "email");
    let got = s
        .claim_with(Claim {
            kinds: Some(vec!["email".into()]),
            ..claim("q", 10)
        })
        .unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![email]);
}

#[test]
fn claim_with_min_priority_leaves_lower_priority_tasks() {
    let mut s = Sm::default();
    s.add("q", "k");
    let urgent = s
        .enqueue(NewTask {
            priority: 10,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let got = s
        .claim_with(Claim {
            min_priority: Some(5),
            ..claim("q", 10)
        })
        .unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![urgent]);
    assert_eq!(s.sm.queue("q").unwrap().counts.get(TaskState::Queued), 1);
}

#[test]
fn claim_skips_paused_queues_until_resumed() {
    let mut s = Sm::default();
    s.add("q", "k");
    s.apply(Command::Pause { queue: "q".into() }).unwrap();
    assert!(s.sm.queue("q").unwrap().paused);
    assert!(s.claim("q", 1).is_empty());
    s.apply(Command::Resume { queue: "q".into() }).unwrap();
    assert_eq!(s.claim("q", 1).len(), 1);
}

#[test]
fn claim_tokens_come_from_the_log_index_and_grow_within_an_entry() {
    let mut s = Sm::default();
    for _ in 0..3 {
        s.add("q", "k");
    }
    let got = s.claim("q", 3);
    let idx = s.index;
    let tokens: Vec<u64> = got.iter().map(|c| c.token.0).collect();
    let base = idx * limits::TOKEN_SLOTS_PER_ENTRY;
    assert_eq!(tokens, vec![base, base + 1, base + 2]);
    // Two claims in one entry still get distinct, growing tokens.
    s.add("q", "k");
    s.add("q", "k");
    let results = s.apply_all(vec![
        Command::Claim(claim("q", 1)),
        Command::Claim(claim("q", 1)),
    ]);
    let t: Vec<Token> = results
        .into_iter()
        .map(|r| match r {
            Ok(Reply::Claimed(v)) => v[0].token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(t[0] < t[1] && t[0] > got[2].token);
}

#[test]
fn claim_sets_the_lease_in_cluster_time() {
    let mut s = Sm::default();
    s.add("q", "k");
    s.cluster_ms = 5_000;
    let c = s
        .claim_with(Claim {
            lease_ms: Some(2_000),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (c.lease_ms, c.expires_cluster_ms, c.attempt),
        (2_000, 7_000, 1)
    );
    assert_eq!(s.sm.next_due().cluster_ms, Some(7_000));
}

#[test]
fn claim_on_an_empty_queue_returns_nothing() {
    let mut s = Sm::default();
    assert!(s.claim("nothing", 5).is_empty());
}

#[test]
fn claim_refuses_bad_requests() {
    let mut s = Sm::default();
    assert_eq!(
        code(s.claim_with(Claim {
            queues: vec![],
            ..claim("q", 1)
        })),
        "invalid_request"
    );
    assert_eq!(code(s.claim_with(claim("q", 0))), "invalid_request");
    assert_eq!(
        code(s.claim_with(claim("q", limits::CLAIM_MAX + 1))),
        "invalid_request"
    );
    assert_eq!(
        code(s.claim_with(Claim {
            worker: "".into(),
            ..claim("q", 1)
        })),
        "invalid_request"
    );
    assert_eq!(
        code(s.claim_with(Claim {
            lease_ms: Some(limits::LEASE_MS_MAX + 1),
            ..claim("q", 1)
        })),
        "invalid_request"
    );
    assert_eq!(
        code(s.claim_with(Claim {
            kinds: Some(vec!["a b".into()]),
            ..claim("q", 1)
        })),
        "invalid_request"
    );
}

// ---- heartbeat -------------------------------------------------------------------------

#[test]
fn heartbeat_extends_the_lease_and_records_progress() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.advance(10_000);
    let ack = s
        .heartbeat_with(LeaseBeat {
            task: c.id,
            token: c.token,
            progress: Some("{\"pct\":50}".into()),
            lease_ms: None,
        })
        .unwrap();
    assert_eq!(
        ack.expires_cluster_ms,
        s.cluster_ms + limits::DEFAULT_LEASE_MS
    );
    assert!(!ack.cancel_requested);
    assert_eq!(s.task(c.id).rare.progress.as_deref(), Some("{\"pct\":50}"));
    assert!(matches!(
        s.task(c.id).last_event().unwrap().kind,
        EventKind::Progress { .. }
    ));
    let ack = s
        .heartbeat_with(LeaseBeat {
            task: c.id,
            token: c.token,
            progress: None,
            lease_ms: Some(60_000),
        })
        .unwrap();
    assert_eq!(
        (ack.lease_ms, ack.expires_cluster_ms),
        (60_000, s.cluster_ms + 60_000)
    );
}

#[test]
fn heartbeat_with_a_stale_or_unknown_token_is_lease_lost() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(code(s.heartbeat(c.id, Token(c.token.0 + 1))), "lease_lost");
    assert_eq!(code(s.heartbeat(TaskId(99), c.token)), "not_found");
}

#[test]
fn heartbeat_after_the_lease_deadline_is_lease_lost_even_before_a_tick() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s
        .claim_with(Claim {
            lease_ms: Some(1_000),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.advance(1_000);
    assert_eq!(code(s.heartbeat(c.id, c.token)), "lease_lost");
    assert_ne!(
        s.state(c.id),
        TaskState::Running,
        "the expiry was applied on the spot"
    );
}

#[test]
fn heartbeat_batch_answers_each_lease() {
    let mut s = Sm::default();
    s.add("q", "k");
    s.add("q", "k");
    let got = s.claim("q", 2);
    let leases = vec![
        LeaseBeat {
            task: got[0].id,
            token: got[0].token,
            progress: None,
            lease_ms: None,
        },
        LeaseBeat {
            task: got[1].id,
            token: Token(1),
            progress: None,
            lease_ms: None,
        },
    ];
    let Ok(Reply::Heartbeats(r)) = s.apply(Command::Heartbeat {
        worker: "w1".into(),
        leases,
    }) else {
        panic!()
    };
    assert!(r[0].is_ok());
    assert_eq!(r[1].as_ref().unwrap_err().code(), "lease_lost");
}

// ---- complete --------------------------------------------------------------------------

#[test]
fn complete_stores_the_result_and_a_repeat_is_acknowledged_without_change() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(
        s.complete(c.id, c.token),
        Ok(Reply::Completed { duplicate: false })
    );
    let t = s.task(c.id);
    assert_eq!(
        (t.state, t.rare.result.as_deref()),
        (TaskState::Succeeded, Some("\"ok\""))
    );
    let events_before = t.events_len();
    assert_eq!(
        s.complete(c.id, c.token),
        Ok(Reply::Completed { duplicate: true })
    );
    assert_eq!(s.task(c.id).events_len(), events_before);
}

#[test]
fn complete_with_a_stale_token_after_reclaim_is_lease_lost() {
    let mut s = Sm::default();
    s.add("q", "k");
    let old = s
        .claim_with(Claim {
            lease_ms: Some(1_000),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.advance(1_000);
    s.tick();
    s.advance(limits::DEFAULT_BACKOFF_INITIAL_MS);
    s.tick();
    let new = s.claim_one("q");
    assert!(new.token > old.token);
    assert_eq!(code(s.complete(old.id, old.token)), "lease_lost");
    assert_eq!(
        s.complete(new.id, new.token),
        Ok(Reply::Completed { duplicate: false })
    );
}

#[test]
fn complete_after_another_outcome_is_task_finished() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.fail(c.id, c.token, false).unwrap();
    assert_eq!(code(s.complete(c.id, c.token)), "task_finished");
}

#[test]
fn complete_refuses_a_result_over_the_limit() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    let big = "x".repeat(limits::PAYLOAD_BYTES_MAX + 1);
    assert_eq!(
        code(s.apply(Command::Complete {
            task: c.id,
            token: c.token,
            result: big
        })),
        "payload_too_large"
    );
    assert_eq!(s.state(c.id), TaskState::Running);
}

// ---- complete and claim ----------------------------------------------------------------

fn complete_and_claim(s: &mut Sm, c: &ClaimedTask, next: Claim) -> CommandResult {
    s.apply(Command::CompleteAndClaim {
        task: c.id,
        token: c.token,
        result: "\"ok\"".into(),
        next,
    })
}

#[test]
fn complete_and_claim_completes_then_leases_the_next_task_with_a_fresh_token() {
    let mut s = Sm::default();
    s.add("q", "k");
    let second = s.add("q", "k");
    let c = s.claim_one("q");
    let Ok(Reply::CompletedAndClaimed { duplicate, tasks }) =
        complete_and_claim(&mut s, &c, claim("q", 1))
    else {
        panic!("expected CompletedAndClaimed")
    };
    assert!(!duplicate);
    assert_eq!(s.state(c.id), TaskState::Succeeded);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].id, second);
    assert!(tasks[0].token > c.token, "fencing tokens only grow");
    assert_eq!(s.state(second), TaskState::Running);
}

#[test]
fn complete_and_claim_with_nothing_ready_still_completes() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(
        complete_and_claim(&mut s, &c, claim("q", 4)),
        Ok(Reply::CompletedAndClaimed {
            duplicate: false,
            tasks: vec![]
        })
    );
    assert_eq!(s.state(c.id), TaskState::Succeeded);
}

#[test]
fn complete_and_claim_with_a_stale_token_gets_neither() {
    let mut s = Sm::default();
    s.add("q", "k");
    let waiting = s.add("q", "k");
    let c = s.claim_one("q");
    let stale = ClaimedTask {
        token: Token(c.token.0 - 1),
        ..c.clone()
    };
    assert_eq!(
        code(complete_and_claim(&mut s, &stale, claim("q", 1))),
        "lease_lost"
    );
    assert_eq!(s.state(c.id), TaskState::Running);
    assert_eq!(
        s.state(waiting),
        TaskState::Queued,
        "no lease without the completion"
    );
}

#[test]
fn complete_and_claim_with_an_invalid_claim_changes_nothing() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(
        code(complete_and_claim(&mut s, &c, claim("q", 0))),
        "invalid_request"
    );
    assert_eq!(
        s.state(c.id),
        TaskState::Running,
        "the completion did not happen either"
    );
}

#[test]
fn complete_and_claim_repeated_is_a_duplicate_and_claims_again() {
    let mut s = Sm::default();
    s.add("q", "k");
    let second = s.add("q", "k");
    let third = s.add("q", "k");
    let c = s.claim_one("q");
    let first = complete_and_claim(&mut s, &c, claim("q", 1)).unwrap();
    let again = complete_and_claim(&mut s, &c, claim("q", 1)).unwrap();
    let (
        Reply::CompletedAndClaimed { tasks: a, .. },
        Reply::CompletedAndClaimed {
            duplicate,
            tasks: b,
        },
    ) = (first, again)
    else {
        panic!("expected CompletedAndClaimed twice")
    };
    assert!(duplicate);
    assert_eq!((a[0].id, b[0].id), (second, third));
}

// ---- fail --------------------------------------------------------------------------------

#[test]
fn fail_retries_with_backoff_then_dead_letters() {
    let mut s = Sm::default();
    let id = s
        .enqueue(NewTask {
            max_attempts: Some(2),
            backoff: Some(Backoff {
                initial_ms: 1_000,
                multiplier_permille: 2_000,
                max_ms: 10_000,
            }),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let c = s.claim_one("q");
    assert_eq!(
        s.fail(id, c.token, true),
        Ok(Reply::FailRecorded {
            state: TaskState::Scheduled
        })
    );
    let Some(RunAt::Cluster(run_at)) = s.task(id).rare.run_at else {
        panic!(
            "a retry waits on cluster time: {:?}",
            s.task(id).rare.run_at
        );
    };
    let delay = run_at - s.cluster_ms;
    assert!(
        (800..=1_000).contains(&delay),
        "backoff with jitter: {delay}"
    );
    assert_eq!(
        s.task(id).rare.error.as_ref().unwrap().code,
        error_code::HANDLER_ERROR
    );
    s.advance(delay);
    s.tick();
    let c2 = s.claim_one("q");
    assert_eq!(c2.attempt, 2);
    assert_eq!(
        s.fail(id, c2.token, true),
        Ok(Reply::FailRecorded {
            state: TaskState::Failed
        })
    );
    assert_eq!(s.sm.queue("q").unwrap().counts.get(TaskState::Failed), 1);
}

#[test]
fn fail_not_retryable_dead_letters_at_once_with_its_code() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    let r = s.apply(Command::Fail {
        task: c.id,
        token: c.token,
        code: Some("bad_input".into()),
        message: "no such user".into(),
        retryable: false,
        retry_after_ms: None,
    });
    assert_eq!(
        r,
        Ok(Reply::FailRecorded {
            state: TaskState::Failed
        })
    );
    assert_eq!(
        s.task(c.id).rare.error.as_deref(),
        Some(&TaskError::new("bad_input", "no such user"))
    );
}

#[test]
fn fail_with_retry_after_zero_requeues_at_once() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    let r = s.apply(Command::Fail {
        task: c.id,
        token: c.token,
        code: None,
        message: "busy".into(),
        retryable: true,
        retry_after_ms: Some(0),
    });
    assert_eq!(
        r,
        Ok(Reply::FailRecorded {
            state: TaskState::Queued
        })
    );
}

#[test]
fn fail_refuses_a_stale_token_and_a_bad_code() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(code(s.fail(c.id, Token(3), true)), "lease_lost");
    let bad = Command::Fail {
        task: c.id,
        token: c.token,
        code: Some("a b".into()),
        message: "".into(),
        retryable: true,
        retry_after_ms: None,
    };
    assert_eq!(code(s.apply(bad)), "invalid_request");
    assert_eq!(s.state(c.id), TaskState::Running);
}

// ---- release -------------------------------------------------------------------------------

#[test]
fn release_gives_the_attempt_back() {
    let mut s = Sm::default();
    let id = s
        .enqueue(NewTask {
            max_attempts: Some(1),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    for _ in 0..3 {
        let c = s.claim_one("q");
        assert_eq!(c.attempt, 1);
        assert_eq!(
            s.apply(Command::Release {
                task: id,
                token: c.token,
                delay_ms: 0
            }),
            Ok(Reply::Released {
                state: TaskState::Queued
            })
        );
    }
    assert_eq!(s.task(id).attempt, 0);
}

#[test]
fn release_with_a_delay_schedules_the_task() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    let r = s.apply(Command::Release {
        task: c.id,
        token: c.token,
        delay_ms: 5_000,
    });
    assert_eq!(
        r,
        Ok(Reply::Released {
            state: TaskState::Scheduled
        })
    );
    assert_eq!(
        s.task(c.id).rare.run_at,
        Some(RunAt::Cluster(s.cluster_ms + 5_000))
    );
    assert_eq!(
        code(s.apply(Command::Release {
            task: c.id,
            token: c.token,
            delay_ms: 0
        })),
        "lease_lost"
    );
}

// ---- cancel ---------------------------------------------------------------------------------

#[test]
fn cancel_of_a_waiting_task_is_immediate() {
    let mut s = Sm::default();
    let q = s.add("q", "k");
    let d = s
        .enqueue(NewTask {
            delay_ms: Some(60_000),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    for id in [q, d] {
        assert_eq!(
            s.apply(Command::Cancel { task: id }),
            Ok(Reply::CancelRecorded {
                state: TaskState::Cancelled
            })
        );
        assert_eq!(s.state(id), TaskState::Cancelled);
    }
    assert_eq!(code(s.apply(Command::Cancel { task: q })), "task_finished");
    assert_eq!(
        code(s.apply(Command::Cancel { task: TaskId(77) })),
        "not_found"
    );
}

#[test]
fn cancel_of_a_running_task_reaches_the_worker_on_its_heartbeat() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    assert_eq!(
        s.apply(Command::Cancel { task: c.id }),
        Ok(Reply::CancelRecorded {
            state: TaskState::Running
        })
    );
    assert!(s.heartbeat(c.id, c.token).unwrap().cancel_requested);
    assert_eq!(
        s.fail(c.id, c.token, true),
        Ok(Reply::FailRecorded {
            state: TaskState::Cancelled
        })
    );
}

#[test]
fn cancel_of_a_running_task_ends_it_when_the_lease_ends() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s
        .claim_with(Claim {
            lease_ms: Some(1_000),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.apply(Command::Cancel { task: c.id }).unwrap();
    s.advance(1_000);
    assert_eq!(s.tick().leases_expired, 1);
    assert_eq!(s.state(c.id), TaskState::Cancelled);
}

#[test]
fn release_after_cancel_acknowledges_it() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.apply(Command::Cancel { task: c.id }).unwrap();
    let r = s.apply(Command::Release {
        task: c.id,
        token: c.token,
        delay_ms: 0,
    });
    assert_eq!(
        r,
        Ok(Reply::Released {
            state: TaskState::Cancelled
        })
    );
}

#[test]
fn complete_after_cancel_wins() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.apply(Command::Cancel { task: c.id }).unwrap();
    s.complete(c.id, c.token).unwrap();
    assert_eq!(s.state(c.id), TaskState::Succeeded);
}

// ---- requeue --------------------------------------------------------------------------------

#[test]
fn requeue_takes_a_task_out_of_the_dead_letter_set() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.fail(c.id, c.token, false).unwrap();
    assert_eq!(
        s.apply(Command::Requeue { task: c.id }),
        Ok(Reply::Requeued)
    );
    let t = s.task(c.id);
    assert_eq!(
        (t.state, t.attempt, t.rare.error.is_none()),
        (TaskState::Queued, 0, true)
    );
    assert_eq!(s.claim_one("q").attempt, 1);
}

#[test]
fn requeue_refuses_tasks_not_in_the_dead_letter_set() {
    let mut s = Sm::default();
    let id = s.add("q", "k");
    assert_eq!(
        code(s.apply(Command::Requeue { task: id })),
        "not_requeueable"
    );
    assert_eq!(
        code(s.apply(Command::Requeue { task: TaskId(9) })),
        "not_found"
    );
}

// ---- pause / resume ----------------------------------------------------------------------

#[test]
fn pause_of_an_empty_queue_keeps_it_listed_until_resumed() {
    let mut s = Sm::default();
    s.apply(Command::Pause {
        queue: "later".into(),
    })
    .unwrap();
    assert!(s.sm.queue("later").unwrap().paused);
    s.apply(Command::Resume {
        queue: "later".into(),
    })
    .unwrap();
    assert!(s.sm.queue("later").is_none());
    assert_eq!(
        code(s.apply(Command::Pause {
            queue: "no way".into()
        })),
        "invalid_request"
    );
}

// ---- broadcast -----------------------------------------------------------------------------

#[test]
fn broadcast_numbers_messages_and_keeps_a_bounded_tail() {
    let mut s = Sm::default();
    for i in 1..=(limits::BROADCASTS_KEPT_MAX as u64 + 5) {
        let r = s.sm.apply(
            i,
            &Entry {
                wall_ms: 1,
                cluster_ms: 1,
                commands: vec![Command::Broadcast {
                    channel: "ops".into(),
                    message: format!("{i}"),
                }],
            },
        );
        assert_eq!(r.results[0], Ok(Reply::Broadcast { seq: i }));
    }
    let kept: Vec<u64> = s.sm.broadcasts_after(0).map(|m| m.seq).collect();
    assert_eq!(kept.len(), limits::BROADCASTS_KEPT_MAX);
    assert_eq!(kept[0], 6);
    assert_eq!(
        s.sm.broadcasts_after(limits::BROADCASTS_KEPT_MAX as u64 + 3)
            .count(),
        2
    );
    s.sm.check_invariants();
}

#[test]
fn broadcast_refuses_bad_channels_and_large_messages() {
    let mut s = Sm::default();
    assert_eq!(
        code(s.apply(Command::Broadcast {
            channel: "".into(),
            message: "1".into()
        })),
        "invalid_request"
    );
    let big = "x".repeat(limits::BROADCAST_BYTES_MAX + 1);
    assert_eq!(
        code(s.apply(Command::Broadcast {
            channel: "c".into(),
            message: big
        })),
        "payload_too_large"
    );
}

// ---- tick ------------------------------------------------------------------------------

#[test]
fn tick_requeues_an_expired_lease_then_dead_letters_when_attempts_run_out() {
    let mut s = Sm::default();
    let id = s
        .enqueue(NewTask {
            max_attempts: Some(2),
            lease_ms: Some(1_000),
            backoff: Some(Backoff {
                initial_ms: 0,
                multiplier_permille: 1_000,
                max_ms: 0,
            }),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    s.claim_one("q");
    s.advance(999);
    assert_eq!(s.tick().leases_expired, 0);
    s.advance(1);
    assert_eq!(s.tick().leases_expired, 1);
    assert_eq!(s.state(id), TaskState::Queued);
    s.claim_one("q");
    s.advance(1_000);
    s.tick();
    assert_eq!(s.state(id), TaskState::Failed);
    assert_eq!(
        s.task(id).rare.error.as_ref().unwrap().code,
        error_code::LEASE_EXPIRED
    );
}

#[test]
fn schedule_to_start_expires_an_unclaimed_task() {
    let mut s = Sm::default();
    let t = Timeouts {
        schedule_to_start_ms: Some(500),
        ..Default::default()
    };
    let id = s
        .enqueue(NewTask {
            timeouts: t,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    s.advance(500);
    assert_eq!(s.tick().timeouts_fired, 1);
    assert_eq!(s.state(id), TaskState::Expired);
    assert_eq!(
        s.task(id).rare.error.as_ref().unwrap().code,
        error_code::ASSIGN_TIMEOUT
    );
}

#[test]
fn schedule_to_start_fires_at_claim_time_when_no_tick_ran_yet() {
    let mut s = Sm::default();
    let t = Timeouts {
        schedule_to_start_ms: Some(500),
        ..Default::default()
    };
    let late = s
        .enqueue(NewTask {
            timeouts: t,
            priority: 1,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let fine = s.add("q", "k");
    s.advance(600);
    assert_eq!(
        s.claim("q", 5).iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![fine]
    );
    assert_eq!(s.state(late), TaskState::Expired);
}

#[test]
fn start_to_close_fails_an_attempt_that_runs_too_long() {
    let mut s = Sm::default();
    let t = Timeouts {
        start_to_close_ms: Some(2_000),
        ..Default::default()
    };
    let id = s
        .enqueue(NewTask {
            timeouts: t,
            max_attempts: Some(1),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let c = s.claim_one("q");
    s.advance(1_000);
    s.heartbeat(id, c.token).unwrap();
    s.advance(1_000);
    assert_eq!(s.tick().timeouts_fired, 1);
    assert_eq!(s.state(id), TaskState::Failed);
    assert_eq!(
        s.task(id).rare.error.as_ref().unwrap().code,
        error_code::RUN_TIMEOUT
    );
}

#[test]
fn schedule_to_close_expires_the_task_even_while_running() {
    let mut s = Sm::default();
    let t = Timeouts {
        schedule_to_close_ms: Some(3_000),
        ..Default::default()
    };
    let id = s
        .enqueue(NewTask {
            timeouts: t,
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let c = s.claim_one("q");
    s.advance(2_000);
    s.heartbeat(id, c.token).unwrap();
    s.advance(1_000);
    s.tick();
    assert_eq!(s.state(id), TaskState::Expired);
    assert_eq!(
        s.task(id).rare.error.as_ref().unwrap().code,
        error_code::DEADLINE_EXCEEDED
    );
    assert_eq!(code(s.complete(id, c.token)), "task_finished");
}

#[test]
fn tick_drops_finished_tasks_after_retention() {
    let mut s = Sm::new(Config {
        retention_ms: 10_000,
        ..Config::default()
    });
    let id = s.add("q", "k");
    s.apply(Command::Cancel { task: id }).unwrap();
    assert_eq!(s.sm.next_due().cluster_ms, Some(s.cluster_ms + 10_000));
    s.advance(10_000);
    assert_eq!(s.tick().dropped, 1);
    assert!(s.sm.task(id).is_none());
    assert!(s.sm.queue("q").is_none(), "an empty queue disappears");
    assert_eq!(s.sm.next_due(), NextDue::default());
}

// ---- time, events, queries ------------------------------------------------------------------

#[test]
fn time_never_goes_back_whatever_a_leader_stamps() {
    let mut s = Sm::default();
    s.add("q", "k");
    s.cluster_ms = 10_000;
    let c = s
        .claim_with(Claim {
            lease_ms: Some(1_000),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.cluster_ms = 0; // a confused leader
    s.wall_ms = 0;
    assert_eq!(s.sm.cluster_ms(), 10_000);
    let ack = s.heartbeat(c.id, c.token).unwrap();
    assert_eq!(
        ack.expires_cluster_ms, 11_000,
        "renewal counted from the applied time"
    );
    assert_eq!(s.sm.cluster_ms(), 10_000);
    assert!(s.sm.wall_ms() > 0);
}

/// The clock-skew nemesis's finding: one leader's wall clock jumps an hour ahead, then a
/// leader with a right clock takes over. The applied wall time stays an hour ahead until
/// real time catches up, and is ahead of every later leader's clock. Retries scheduled
/// during the jump, or after it, must still run once their delay has passed in cluster
/// time; on wall time they stayed `scheduled` for an hour.
#[test]
fn a_wall_clock_jump_never_stalls_a_retry() {
    const HOUR_MS: u64 = 60 * 60 * 1000;
    let mut s = Sm::default();
    let failed = s.add("q", "fail");
    let expired = s.add("q", "expire");
    let released = s.add("q", "release");
    let at = s
        .enqueue(NewTask {
            run_at_wall_ms: Some(s.wall_ms + 10 * 60 * 1000),
            ..new_task("q", "at")
        })
        .unwrap()
        .id;
    let cs = s.claim_with(Claim {
        lease_ms: Some(1_000),
        ..claim("q", 3)
    });
    let cs = cs.unwrap();
    assert_eq!(cs.len(), 3);
    let token = |id: TaskId| cs.iter().find(|c| c.id == id).unwrap().token;

    // The jump: wall time an hour ahead, cluster time advancing as usual.
    let real_wall = s.wall_ms;
    s.cluster_ms += 100;
    s.wall_ms = real_wall + 100 + HOUR_MS;
    let r = s.apply(Command::Fail {
        task: failed,
        token: token(failed),
        code: None,
        message: "busy".into(),
        retryable: true,
        retry_after_ms: Some(5_000),
    });
    assert_eq!(
        r,
        Ok(Reply::FailRecorded {
            state: TaskState::Scheduled
        })
    );
    let r = s.apply(Command::Release {
        task: released,
        token: token(released),
        delay_ms: 3_000,
    });
    assert_eq!(
        r,
        Ok(Reply::Released {
            state: TaskState::Scheduled
        })
    );
    let delayed = s
        .enqueue(NewTask {
            delay_ms: Some(4_000),
            ..new_task("q", "delay")
        })
        .unwrap()
        .id;
    s.cluster_ms += 1_000;
    s.wall_ms += 1_000;
    s.tick();
    assert_eq!(
        s.state(expired),
        TaskState::Scheduled,
        "lease expired into a backoff"
    );
    // An absolute run_at follows the wall clock, wrong or not: it fires early. Inherent.
    assert_eq!(s.state(at), TaskState::Queued);
    for id in [failed, released, delayed, expired] {
        assert!(
            matches!(s.task(id).rare.run_at, Some(RunAt::Cluster(_))),
            "task {id} waits on cluster time"
        );
    }

    // The clock comes back: later leaders stamp the real wall time, an hour behind the
    // applied one. Only cluster time moves the state machine forward now.
    let ahead = s.sm.wall_ms();
    let mut real_wall = real_wall + 1_100;
    assert_eq!(ahead, real_wall + HOUR_MS);
    for _ in 0..6 {
        s.cluster_ms += 1_000;
        real_wall += 1_000;
        s.wall_ms = real_wall;
        s.tick();
    }
    assert_eq!(
        s.sm.wall_ms(),
        ahead,
        "the applied wall time is stuck ahead"
    );
    for id in [failed, released, delayed, expired] {
        assert_eq!(
            s.state(id),
            TaskState::Queued,
            "task {id} is ready once its delay passed in cluster time"
        );
    }
    assert_eq!(s.claim("q", 10).len(), 5);
    assert_eq!(s.sm.next_due().wall_ms, None);
}

#[test]
fn a_delayed_task_shows_a_wall_time_estimate() {
    let mut s = Sm {
        cluster_ms: 7_000,
        ..Sm::default()
    };
    let id = s
        .enqueue(NewTask {
            delay_ms: Some(2_000),
            ..new_task("q", "k")
        })
        .unwrap()
        .id;
    let run_at = s.task(id).rare.run_at.unwrap();
    assert_eq!(run_at, RunAt::Cluster(9_000));
    assert_eq!(
        s.task(id).last_event().unwrap().kind,
        EventKind::Scheduled {
            run_at_wall_ms: s.wall_ms + 2_000
        }
    );
    assert_eq!(run_at.wall_estimate_ms(50_000, 8_000), 51_000);
    assert_eq!(run_at.wall_estimate_ms(50_000, 9_500), 49_500, "overdue");
    assert_eq!(RunAt::Wall(123).wall_estimate_ms(50_000, 8_000), 123);
}

#[test]
fn events_record_the_life_of_a_task_in_order() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    s.fail(c.id, c.token, true).unwrap();
    let names: Vec<&str> = s.task(c.id).events().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        vec!["enqueued", "claimed", "attempt_failed", "scheduled"]
    );
}

#[test]
fn outcome_streams_the_events_of_its_entry() {
    let mut s = Sm::default();
    s.add("q", "k");
    s.index += 1;
    let out = s.sm.apply(
        s.index,
        &Entry {
            wall_ms: s.wall_ms,
            cluster_ms: 0,
            commands: vec![Command::Claim(claim("q", 1))],
        },
    );
    assert_eq!(out.events.len(), 1);
    assert_eq!(
        (out.events[0].task, out.events[0].state),
        (TaskId(1), TaskState::Running)
    );
}

#[test]
fn groups_count_their_tasks_by_state() {
    let mut s = Sm::default();
    for _ in 0..3 {
        s.enqueue(NewTask {
            group: Some("batch-1".into()),
            ..new_task("q", "k")
        })
        .unwrap();
    }
    let c = s.claim_one("q");
    s.complete(c.id, c.token).unwrap();
    let g = s.sm.group("batch-1").unwrap();
    assert_eq!(
        (
            g.get(TaskState::Queued),
            g.get(TaskState::Succeeded),
            g.open()
        ),
        (2, 1, 2)
    );
}

#[test]
fn list_filters_and_pages_in_id_order() {
    let mut s = Sm::default();
    for i in 0..10 {
        s.add(if i % 2 == 0 { "even" } else { "odd" }, "k");
    }
    let page = s.sm.list(&ListFilter {
        queue: Some("even"),
        after: None,
        limit: 3,
        ..Default::default()
    });
    assert_eq!(
        page.tasks.iter().map(|t| t.id.0).collect::<Vec<_>>(),
        vec![1, 3, 5]
    );
    let next = s.sm.list(&ListFilter {
        queue: Some("even"),
        after: page.next,
        limit: 3,
        ..Default::default()
    });
    assert_eq!(
        next.tasks.iter().map(|t| t.id.0).collect::<Vec<_>>(),
        vec![7, 9]
    );
    assert_eq!(next.next, None);
    let queued = s.sm.list(&ListFilter {
        state: Some(TaskState::Running),
        limit: 100,
        ..Default::default()
    });
    assert!(queued.tasks.is_empty());
}

#[test]
fn list_filters_by_kind_and_group() {
    let mut s = Sm::default();
    for i in 0..6 {
        s.enqueue(NewTask {
            group: (i % 3 == 0).then(|| "g".to_owned()),
            ..new_task("q", if i % 2 == 0 { "even" } else { "odd" })
        })
        .unwrap();
    }
    let ids = |f: ListFilter<'_>| {
        s.sm.list(&ListFilter { limit: 100, ..f })
            .tasks
            .iter()
            .map(|t| t.id.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ListFilter {
            kind: Some("odd"),
            ..Default::default()
        }),
        vec![2, 4, 6]
    );
    assert_eq!(
        ids(ListFilter {
            group: Some("g"),
            ..Default::default()
        }),
        vec![1, 4]
    );
    assert_eq!(
        ids(ListFilter {
            kind: Some("even"),
            group: Some("g"),
            ..Default::default()
        }),
        vec![1]
    );
    assert!(ids(ListFilter {
        group: Some("none"),
        ..Default::default()
    })
    .is_empty());
}

#[test]
fn oldest_ready_is_the_earliest_head_over_kinds_and_priorities() {
    let mut s = Sm::default();
    assert_eq!(s.sm.oldest_ready_cluster_ms("q"), None);
    s.advance(1_000);
    s.enqueue(NewTask {
        priority: 0,
        ..new_task("q", "a")
    })
    .unwrap();
    s.advance(1_000);
    s.enqueue(NewTask {
        priority: 5,
        ..new_task("q", "a")
    })
    .unwrap();
    s.enqueue(NewTask {
        priority: 0,
        ..new_task("q", "b")
    })
    .unwrap();
    s.enqueue(new_task("other", "a")).unwrap();
    assert_eq!(s.sm.oldest_ready_cluster_ms("q"), Some(1_000));
    // Claiming takes the priority-5 task first; the oldest is still the first one.
    s.claim_one("q");
    assert_eq!(s.sm.oldest_ready_cluster_ms("q"), Some(1_000));
    s.claim_one("q");
    assert_eq!(s.sm.oldest_ready_cluster_ms("q"), Some(2_000));
    assert_eq!(s.sm.oldest_ready_cluster_ms("nope"), None);
}

#[test]
fn claimable_tells_whether_a_claim_would_get_a_task() {
    let mut s = Sm::default();
    assert!(!s.sm.claimable(&claim("q", 1)));
    s.enqueue(NewTask {
        priority: 1,
        ..new_task("q", "k")
    })
    .unwrap();
    assert!(s.sm.claimable(&claim("q", 1)));
    assert!(!s.sm.claimable(&Claim {
        min_priority: Some(2),
        ..claim("q", 1)
    }));
    assert!(!s.sm.claimable(&Claim {
        kinds: Some(vec!["other".into()]),
        ..claim("q", 1)
    }));
    s.apply(Command::Pause { queue: "q".into() }).unwrap();
    assert!(!s.sm.claimable(&claim("q", 1)));
}

// ---- configure ---------------------------------------------------------------------------

#[test]
fn configure_changes_retention_for_tasks_already_finished() {
    let mut s = Sm::new(Config {
        retention_ms: 60_000,
        ..Config::default()
    });
    let id = s.add("q", "k");
    s.apply(Command::Cancel { task: id }).unwrap();
    assert_eq!(s.sm.next_due().cluster_ms, Some(s.cluster_ms + 60_000));
    assert_eq!(
        s.apply(Command::Configure {
            retention_ms: 1_000,
            tasks_max: 5
        }),
        Ok(Reply::Configured)
    );
    assert_eq!(
        s.sm.config(),
        Config {
            retention_ms: 1_000,
            tasks_max: 5
        }
    );
    assert_eq!(s.sm.next_due().cluster_ms, Some(s.cluster_ms + 1_000));
    s.advance(1_000);
    assert_eq!(s.tick().dropped, 1);
}

#[test]
fn configure_refuses_out_of_range_settings() {
    let mut s = Sm::default();
    let before = s.sm.config();
    assert_eq!(
        code(s.apply(Command::Configure {
            retention_ms: limits::DURATION_MS_MAX + 1,
            tasks_max: 10
        })),
        "invalid_request"
    );
    assert_eq!(
        code(s.apply(Command::Configure {
            retention_ms: 1,
            tasks_max: 0
        })),
        "invalid_request"
    );
    assert_eq!(
        code(s.apply(Command::Configure {
            retention_ms: 1,
            tasks_max: limits::TASKS_MAX_LIMIT + 1
        })),
        "invalid_request"
    );
    assert_eq!(s.sm.config(), before);
}
