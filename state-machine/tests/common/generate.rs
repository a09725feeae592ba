//! Random command sequences for property tests. Commands refer to tasks and tokens
//! symbolically ("task #3, its current token") and are resolved against the state machine
//! when applied, so most generated commands hit live tasks instead of bouncing off.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use taskswarm_state_machine::*;

pub const QUEUES: [&str; 2] = ["a", "b"];
pub const KINDS: [&str; 2] = ["x", "y"];

/// A proptest config with a seed that is printed, so any run can be repeated with
/// `PROPTEST_RNG_SEED=<seed>`.
pub fn seeded(cases: u32, test: &str) -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: proptest seed {seed} (repeat with PROPTEST_RNG_SEED={seed})");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Debug, Clone, Copy)]
pub enum TokenPick {
    /// The token of the task's live lease (or its last one).
    Current,
    /// One below the current: a stale holder.
    Stale,
    Bogus,
}

#[derive(Debug, Clone)]
pub struct GenTask {
    pub queue: usize,
    pub kind: usize,
    pub priority: i32,
    pub idempotency: Option<u8>,
    pub coalesce: Option<u8>,
    pub delay: bool,
    /// An absolute run_at: this offset from the state machine's wall time.
    pub run_at: Option<i64>,
    pub max_attempts: u32,
    pub invalid: bool,
    /// Only in the wide generator: timeouts, groups and default backoff.
    pub timeouts: Timeouts,
    pub group: Option<u8>,
    pub default_backoff: bool,
}

#[derive(Debug, Clone)]
pub enum Gen {
    Enqueue(Vec<GenTask>),
    Claim {
        queues: Vec<usize>,
        kinds: Option<Vec<usize>>,
        max: u32,
        lease_ms: Option<u64>,
        min_priority: Option<i32>,
    },
    Heartbeat {
        task: u64,
        token: TokenPick,
        lease_ms: Option<u64>,
        progress: bool,
    },
    Complete {
        task: u64,
        token: TokenPick,
    },
    /// `next` is always a `Gen::Claim`.
    CompleteAndClaim {
        task: u64,
        token: TokenPick,
        next: Box<Gen>,
    },
    Fail {
        task: u64,
        token: TokenPick,
        retryable: bool,
        retry_after_ms: Option<u64>,
    },
    Release {
        task: u64,
        token: TokenPick,
        delay_ms: u64,
    },
    Cancel {
        task: u64,
    },
    Requeue {
        task: u64,
    },
    Pause {
        queue: usize,
    },
    Resume {
        queue: usize,
    },
    Broadcast,
    Tick,
    Configure {
        retention_ms: u64,
        tasks_max: u64,
    },
    RaiseBehaviour {
        version: u32,
    },
}

/// One entry: its commands, how far both clocks move before it, and how wrong the wall
/// clock of the leader that stamps it is.
#[derive(Debug, Clone)]
pub struct GenEntry {
    pub advance_ms: u64,
    /// Added to the true wall time: mostly 0, sometimes a leader an hour ahead or a few
    /// seconds behind (the clock-skew nemesis). Cluster time is never skewed.
    pub wall_skew_ms: i64,
    pub commands: Vec<Gen>,
}

impl GenEntry {
    /// The wall time this entry is stamped with, given the true wall time.
    pub fn wall_ms(&self, true_wall_ms: u64) -> u64 {
        true_wall_ms.saturating_add_signed(self.wall_skew_ms)
    }
}

fn gen_task(wide: bool) -> impl Strategy<Value = GenTask> {
    let timeouts = if wide {
        (
            prop::option::weighted(0.2, 200u64..2_000),
            prop::option::weighted(0.2, 200u64..2_000),
            prop::option::weighted(0.2, 500u64..5_000),
        )
            .prop_map(|(a, b, c)| Timeouts {
                schedule_to_start_ms: a,
                start_to_close_ms: b,
                schedule_to_close_ms: c,
            })
            .boxed()
    } else {
        Just(Timeouts::default()).boxed()
    };
    (
        (
            0..QUEUES.len(),
            0..KINDS.len(),
            0i32..3,
            prop::option::weighted(0.3, 0u8..4),
            prop::option::weighted(0.2, 0u8..3),
        ),
        (
            prop::bool::weighted(0.2),
            prop::option::weighted(0.1, prop::sample::select(vec![-500i64, 0, 300, 1_000])),
            1u32..4,
            prop::bool::weighted(0.03),
            timeouts,
        ),
        if wide {
            (
                prop::option::weighted(0.3, 0u8..3),
                prop::bool::weighted(0.5),
            )
                .boxed()
        } else {
            Just((None, false)).boxed()
        },
    )
        .prop_map(
            |(
                (queue, kind, priority, idempotency, coalesce),
                (delay, run_at, max_attempts, invalid, timeouts),
                (group, default_backoff),
            )| {
                GenTask {
                    queue,
                    kind,
                    priority,
                    idempotency,
                    coalesce,
                    delay,
                    run_at,
                    max_attempts,
                    invalid,
                    timeouts,
                    group,
                    default_backoff,
                }
            },
        )
}

fn token_pick() -> impl Strategy<Value = TokenPick> {
    prop_oneof![8 => Just(TokenPick::Current), 1 => Just(TokenPick::Stale), 1 => Just(TokenPick::Bogus)]
}

fn task_ref() -> impl Strategy<Value = u64> {
    1u64..14
}

fn gen_claim() -> impl Strategy<Value = Gen> {
    let queues = prop::sample::subsequence(vec![0usize, 1], 1..=2);
    let kinds = prop::option::weighted(0.3, prop::sample::subsequence(vec![0usize, 1], 1..=2));
    (
        queues,
        kinds,
        1u32..4,
        prop::option::of(prop::sample::select(vec![300u64, 1_000])),
        prop::option::weighted(0.2, 0i32..3),
    )
        .prop_map(|(queues, kinds, max, lease_ms, min_priority)| Gen::Claim {
            queues,
            kinds,
            max,
            lease_ms,
            min_priority,
        })
}

pub fn gen_command(wide: bool) -> impl Strategy<Value = Gen> {
    prop_oneof![
        4 => prop::collection::vec(gen_task(wide), 1..4).prop_map(Gen::Enqueue),
        4 => gen_claim(),
        2 => (task_ref(), token_pick(), gen_claim())
            .prop_map(|(task, token, next)| Gen::CompleteAndClaim { task, token, next: Box::new(next) }),
        3 => (task_ref(), token_pick(), prop::option::weighted(0.2, prop::sample::select(vec![300u64, 2_000])), any::<bool>())
            .prop_map(|(task, token, lease_ms, progress)| Gen::Heartbeat { task, token, lease_ms, progress }),
        3 => (task_ref(), token_pick()).prop_map(|(task, token)| Gen::Complete { task, token }),
        2 => (task_ref(), token_pick(), prop::bool::weighted(0.8), prop::option::of(prop::sample::select(vec![0u64, 300])))
            .prop_map(|(task, token, retryable, retry_after_ms)| Gen::Fail { task, token, retryable, retry_after_ms }),
        1 => (task_ref(), token_pick(), prop::sample::select(vec![0u64, 300]))
            .prop_map(|(task, token, delay_ms)| Gen::Release { task, token, delay_ms }),
        1 => task_ref().prop_map(|task| Gen::Cancel { task }),
        1 => task_ref().prop_map(|task| Gen::Requeue { task }),
        1 => (0..QUEUES.len()).prop_map(|queue| Gen::Pause { queue }),
        1 => (0..QUEUES.len()).prop_map(|queue| Gen::Resume { queue }),
        1 => Just(Gen::Broadcast),
        4 => Just(Gen::Tick),
        1 => (prop::sample::select(vec![500u64, 2_000, 5_000]), prop::sample::select(vec![6u64, 1_000]))
            .prop_map(|(retention_ms, tasks_max)| Gen::Configure { retention_ms, tasks_max }),
        // Versions this build applies, so that sequences cover both sides of every gate.
        1 => (1..=BEHAVIOUR_VERSION_MAX).prop_map(|version| Gen::RaiseBehaviour { version }),
    ]
}

pub fn gen_log(wide: bool, entries_max: usize) -> impl Strategy<Value = Vec<GenEntry>> {
    let skew = prop_oneof![
        12 => Just(0i64),
        1 => Just(3_600_000i64),
        1 => Just(-3_000i64),
    ];
    let entry = (
        prop::sample::select(vec![0u64, 0, 50, 150, 400, 1_100]),
        skew,
        prop::collection::vec(gen_command(wide), 1..4),
    )
        .prop_map(|(advance_ms, wall_skew_ms, commands)| GenEntry {
            advance_ms,
            wall_skew_ms,
            commands,
        });
    prop::collection::vec(entry, 1..entries_max)
}

/// Turns a symbolic command into a real one, looking tokens up in `sm`.
pub fn resolve(g: &Gen, sm: &StateMachine) -> Command {
    let token = |task: u64, pick: TokenPick| -> Token {
        let current = sm
            .task(TaskId(task))
            .and_then(|t| t.last_token())
            .unwrap_or(Token(0));
        match pick {
            TokenPick::Current => current,
            TokenPick::Stale => Token(current.0.saturating_sub(1)),
            TokenPick::Bogus => Token(current.0 + 1_000_000_007),
        }
    };
    match g {
        Gen::Enqueue(items) => Command::Enqueue {
            tasks: items
                .iter()
                .map(|t| NewTask {
                    queue: if t.invalid {
                        "bad queue".into()
                    } else {
                        QUEUES[t.queue].into()
                    },
                    kind: KINDS[t.kind].into(),
                    payload: "{}".into(),
                    priority: t.priority,
                    idempotency_key: t.idempotency.map(|k| format!("idem-{k}")),
                    coalesce_key: t.coalesce.map(|k| format!("co-{k}")),
                    run_at_wall_ms: t.run_at.map(|off| sm.wall_ms().saturating_add_signed(off)),
                    delay_ms: t.delay.then_some(200),
                    max_attempts: Some(t.max_attempts),
                    // Zero backoff keeps retries predictable for the model; the wide
                    // generator mixes in the default, jittered one.
                    backoff: (!t.default_backoff).then_some(Backoff {
                        initial_ms: 0,
                        multiplier_permille: 1_000,
                        max_ms: 0,
                    }),
                    lease_ms: Some(1_000),
                    timeouts: t.timeouts,
                    group: t.group.map(|g| format!("g{g}")),
                })
                .collect(),
        },
        Gen::Claim {
            queues,
            kinds,
            max,
            lease_ms,
            min_priority,
        } => Command::Claim(Claim {
            worker: "w".into(),
            queues: queues.iter().map(|q| QUEUES[*q].to_owned()).collect(),
            kinds: kinds
                .as_ref()
                .map(|ks| ks.iter().map(|k| KINDS[*k].to_owned()).collect()),
            max: *max,
            lease_ms: *lease_ms,
            min_priority: *min_priority,
        }),
        Gen::Heartbeat {
            task,
            token: pick,
            lease_ms,
            progress,
        } => Command::Heartbeat {
            worker: "w".into(),
            leases: vec![LeaseBeat {
                task: TaskId(*task),
                token: token(*task, *pick),
                progress: progress.then(|| "{\"p\":1}".to_owned()),
                lease_ms: *lease_ms,
            }],
        },
        Gen::Complete { task, token: pick } => Command::Complete {
            task: TaskId(*task),
            token: token(*task, *pick),
            result: "\"done\"".into(),
        },
        Gen::CompleteAndClaim {
            task,
            token: pick,
            next,
        } => {
            let Command::Claim(next) = resolve(next, sm) else {
                unreachable!("next is a Gen::Claim")
            };
            Command::CompleteAndClaim {
                task: TaskId(*task),
                token: token(*task, *pick),
                result: "\"done\"".into(),
                next,
            }
        }
        Gen::Fail {
            task,
            token: pick,
            retryable,
            retry_after_ms,
        } => Command::Fail {
            task: TaskId(*task),
            token: token(*task, *pick),
            code: None,
            message: "err".into(),
            retryable: *retryable,
            retry_after_ms: *retry_after_ms,
        },
        Gen::Release {
            task,
            token: pick,
            delay_ms,
        } => Command::Release {
            task: TaskId(*task),
            token: token(*task, *pick),
            delay_ms: *delay_ms,
        },
        Gen::Cancel { task } => Command::Cancel {
            task: TaskId(*task),
        },
        Gen::Requeue { task } => Command::Requeue {
            task: TaskId(*task),
        },
        Gen::Pause { queue } => Command::Pause {
            queue: QUEUES[*queue].into(),
        },
        Gen::Resume { queue } => Command::Resume {
            queue: QUEUES[*queue].into(),
        },
        Gen::Broadcast => Command::Broadcast {
            channel: "c".into(),
            message: "{}".into(),
        },
        Gen::Tick => Command::Tick,
        Gen::Configure {
            retention_ms,
            tasks_max,
        } => Command::Configure {
            retention_ms: *retention_ms,
            tasks_max: *tasks_max,
        },
        Gen::RaiseBehaviour { version } => Command::RaiseBehaviour { version: *version },
    }
}
