//! Each limit, hit from both sides: the largest accepted value and the first refused one.

mod common;

use common::*;
use taskswarm_state_machine::*;

fn enqueue_code(s: &mut Sm, t: NewTask) -> &'static str {
    code(s.enqueue(t))
}

#[test]
fn payload_bytes() {
    let mut s = Sm::default();
    let at = NewTask {
        payload: "x".repeat(limits::PAYLOAD_BYTES_MAX),
        ..new_task("q", "k")
    };
    assert!(s.enqueue(at).is_ok());
    let over = NewTask {
        payload: "x".repeat(limits::PAYLOAD_BYTES_MAX + 1),
        ..new_task("q", "k")
    };
    assert_eq!(enqueue_code(&mut s, over), "payload_too_large");
}

#[test]
fn progress_bytes() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    let beat = LeaseBeat {
        task: c.id,
        token: c.token,
        progress: Some("x".repeat(limits::PAYLOAD_BYTES_MAX + 1)),
        lease_ms: None,
    };
    assert_eq!(code(s.heartbeat_with(beat)), "payload_too_large");
}

#[test]
fn name_bytes_and_charset() {
    let mut s = Sm::default();
    assert!(s
        .enqueue(new_task(&"q".repeat(limits::NAME_BYTES_MAX), "k"))
        .is_ok());
    assert_eq!(
        enqueue_code(
            &mut s,
            new_task(&"q".repeat(limits::NAME_BYTES_MAX + 1), "k")
        ),
        "invalid_request"
    );
    assert_eq!(enqueue_code(&mut s, new_task("q", "k?")), "invalid_request");
    let key = NewTask {
        idempotency_key: Some("i".repeat(limits::NAME_BYTES_MAX + 1)),
        ..new_task("q", "k")
    };
    assert_eq!(enqueue_code(&mut s, key), "invalid_request");
}

#[test]
fn enqueue_batch_size() {
    let mut s = Sm::default();
    let ok = vec![new_task("q", "k"); limits::ENQUEUE_BATCH_MAX];
    assert!(s.apply(Command::Enqueue { tasks: ok }).is_ok());
    let over = vec![new_task("q", "k"); limits::ENQUEUE_BATCH_MAX + 1];
    assert_eq!(
        code(s.apply(Command::Enqueue { tasks: over })),
        "batch_too_large"
    );
    assert_eq!(s.sm.task_count(), limits::ENQUEUE_BATCH_MAX);
}

#[test]
fn heartbeat_batch_size() {
    let mut s = Sm::default();
    let beat = LeaseBeat {
        task: TaskId(1),
        token: Token(1),
        progress: None,
        lease_ms: None,
    };
    let leases = vec![beat; limits::HEARTBEAT_BATCH_MAX + 1];
    assert_eq!(
        code(s.apply(Command::Heartbeat {
            worker: "w".into(),
            leases
        })),
        "batch_too_large"
    );
}

#[test]
fn claim_queue_and_kind_counts() {
    let mut s = Sm::default();
    let queues: Vec<String> = (0..=limits::CLAIM_QUEUES_MAX)
        .map(|i| format!("q{i}"))
        .collect();
    assert_eq!(
        code(s.claim_with(Claim {
            queues,
            ..claim("q", 1)
        })),
        "batch_too_large"
    );
    let kinds: Vec<String> = (0..=limits::CLAIM_KINDS_MAX)
        .map(|i| format!("k{i}"))
        .collect();
    assert_eq!(
        code(s.claim_with(Claim {
            kinds: Some(kinds),
            ..claim("q", 1)
        })),
        "batch_too_large"
    );
}

#[test]
fn claim_max_is_capped() {
    let mut s = Sm::default();
    let tasks = vec![new_task("q", "k"); limits::CLAIM_MAX as usize + 1];
    s.apply(Command::Enqueue { tasks }).unwrap();
    assert_eq!(
        s.claim("q", limits::CLAIM_MAX).len(),
        limits::CLAIM_MAX as usize
    );
    assert_eq!(
        code(s.claim_with(claim("q", limits::CLAIM_MAX + 1))),
        "invalid_request"
    );
}

#[test]
fn commands_per_entry() {
    let mut s = Sm::default();
    let results = s.apply_all(vec![Command::Tick; limits::ENTRY_COMMANDS_MAX + 1]);
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap_err().code() == "batch_too_large"));
    let results = s.apply_all(vec![Command::Tick; limits::ENTRY_COMMANDS_MAX]);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn events_per_task() {
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s.claim_one("q");
    for i in 0..(limits::TASK_EVENTS_MAX + 5) {
        let beat = LeaseBeat {
            task: c.id,
            token: c.token,
            progress: Some(format!("{i}")),
            lease_ms: None,
        };
        s.heartbeat_with(beat).unwrap();
    }
    let t = s.task(c.id);
    assert_eq!(t.events_len(), limits::TASK_EVENTS_MAX);
    assert_eq!(
        t.rare.events_dropped, 7,
        "enqueued, claimed and the first 5 progress events"
    );
}

#[test]
fn priority_attempts_lease_and_duration_ranges() {
    let mut s = Sm::default();
    for p in [limits::PRIORITY_MIN, limits::PRIORITY_MAX] {
        assert!(s
            .enqueue(NewTask {
                priority: p,
                ..new_task("q", "k")
            })
            .is_ok());
    }
    assert_eq!(
        enqueue_code(
            &mut s,
            NewTask {
                priority: limits::PRIORITY_MIN - 1,
                ..new_task("q", "k")
            }
        ),
        "invalid_request"
    );
    assert!(s
        .enqueue(NewTask {
            max_attempts: Some(limits::ATTEMPTS_MAX),
            ..new_task("q", "k")
        })
        .is_ok());
    assert_eq!(
        enqueue_code(
            &mut s,
            NewTask {
                max_attempts: Some(limits::ATTEMPTS_MAX + 1),
                ..new_task("q", "k")
            }
        ),
        "invalid_request"
    );
    assert!(s
        .enqueue(NewTask {
            lease_ms: Some(limits::LEASE_MS_MAX),
            ..new_task("q", "k")
        })
        .is_ok());
    assert_eq!(
        enqueue_code(
            &mut s,
            NewTask {
                lease_ms: Some(limits::LEASE_MS_MAX + 1),
                ..new_task("q", "k")
            }
        ),
        "invalid_request"
    );
    let t = Timeouts {
        schedule_to_close_ms: Some(limits::DURATION_MS_MAX + 1),
        ..Default::default()
    };
    assert_eq!(
        enqueue_code(
            &mut s,
            NewTask {
                timeouts: t,
                ..new_task("q", "k")
            }
        ),
        "invalid_request"
    );
}

#[test]
fn queues_count() {
    let mut sm = StateMachine::default();
    let mut index = 0;
    let mut names = (0..limits::QUEUES_MAX).map(|i| format!("q{i}"));
    loop {
        let tasks: Vec<NewTask> = names
            .by_ref()
            .take(limits::ENQUEUE_BATCH_MAX)
            .map(|q| new_task(&q, "k"))
            .collect();
        if tasks.is_empty() {
            break;
        }
        index += 1;
        let out = sm.apply(
            index,
            &Entry {
                wall_ms: 1,
                cluster_ms: 1,
                commands: vec![Command::Enqueue { tasks }],
            },
        );
        let Ok(Reply::Enqueued(r)) = &out.results[0] else {
            panic!()
        };
        assert!(r.iter().all(Result::is_ok));
    }
    assert_eq!(sm.queues().count(), limits::QUEUES_MAX);
    let out = sm.apply(
        index + 1,
        &Entry {
            wall_ms: 1,
            cluster_ms: 1,
            commands: vec![
                Command::Enqueue {
                    tasks: vec![new_task("one-too-many", "k"), new_task("q0", "k")],
                },
                Command::Pause {
                    queue: "another".into(),
                },
            ],
        },
    );
    let Ok(Reply::Enqueued(r)) = &out.results[0] else {
        panic!()
    };
    assert_eq!(r[0].as_ref().unwrap_err().code(), "too_many_queues");
    assert!(r[1].is_ok(), "existing queues still take tasks");
    assert_eq!(
        out.results[1].as_ref().unwrap_err().code(),
        "too_many_queues"
    );
    sm.check_invariants();
}

#[test]
fn tick_items_per_step() {
    let mut s = Sm::default();
    let total = limits::TICK_ITEMS_MAX + 10;
    let mut left = total;
    while left > 0 {
        let n = left.min(limits::ENQUEUE_BATCH_MAX);
        let tasks = vec![
            NewTask {
                delay_ms: Some(100),
                ..new_task("q", "k")
            };
            n
        ];
        s.apply(Command::Enqueue { tasks }).unwrap();
        left -= n;
    }
    s.advance(100);
    assert_eq!(s.tick().promoted as usize, limits::TICK_ITEMS_MAX);
    assert!(
        s.sm.next_due().is_due(s.cluster_ms, s.wall_ms),
        "more work is still due"
    );
    assert_eq!(s.tick().promoted, 10);
    assert!(!s.sm.next_due().is_due(s.cluster_ms, s.wall_ms));
}

#[test]
fn list_page_size() {
    let mut s = Sm::default();
    let tasks = vec![new_task("q", "k"); limits::LIST_LIMIT_MAX + 1];
    s.apply(Command::Enqueue { tasks }).unwrap();
    let page = s.sm.list(&ListFilter {
        limit: usize::MAX,
        ..Default::default()
    });
    assert_eq!(page.tasks.len(), limits::LIST_LIMIT_MAX);
    assert!(page.next.is_some());
}
