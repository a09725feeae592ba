//! The workload's clients, one loop per history process: producers enqueue, readers read
//! and cancel, workers claim, heartbeat and end tasks. Every request is one recorded
//! operation (invoke, then ok / fail / info); retries are new operations.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taskswarm_api::codes;

use super::recorder::Recorder;
use super::rng::Rng;
use super::wire::{Reply, Wire};
use super::workload::{self, Params};
use crate::history::{Claimed, OpType, OpValue, F};
use crate::model::TaskState;

/// A write the leader cannot commit is answered `indeterminate` after the nodes' write
/// timeout; past this the client gives up and records the outcome as unknown.
pub const WRITE_TIMEOUT: Duration =
    Duration::from_millis(crate::env::nodes::WRITE_TIMEOUT_MS + 3_000);
/// Pause after a failed or unknown request before the next one, ms.
const RETRY_PAUSE_MS: (u64, u64) = (100, 300);

/// What every client loop shares.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub wire: Arc<Wire>,
    pub rec: Recorder,
    pub params: Params,
    pub stop: Arc<AtomicBool>,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Task ids whose enqueue was acknowledged: readers pick from them, the drain waits for
/// them.
pub type Acked = Arc<Mutex<Vec<u64>>>;

async fn pause(rng: &mut Rng, range: (u64, u64)) {
    tokio::time::sleep(Duration::from_millis(rng.range(range.0, range.1))).await;
}

fn state_of(v: &Value) -> Option<TaskState> {
    serde_json::from_value(v["state"].clone()).ok()
}

fn client_id_of(task: &Value) -> Option<String> {
    task["payload"]["client_id"].as_str().map(str::to_owned)
}

/// Records the completion of `f` from a reply; `ok` builds the value of an ok answer.
fn record(rec: &Recorder, process: u64, f: F, reply: &Reply, ok: impl FnOnce(&Value) -> OpValue) {
    let (kind, value) = match reply {
        Reply::Ok(v) => (OpType::Ok, ok(v)),
        Reply::Fail(code) => (
            OpType::Fail,
            OpValue {
                error: Some(code.clone()),
                ..OpValue::default()
            },
        ),
        Reply::Info(code) => (
            OpType::Info,
            OpValue {
                error: Some(code.clone()),
                ..OpValue::default()
            },
        ),
    };
    rec.complete(process, kind, f, value);
}

/// Definite failures worth trying again: the request never reached a leader.
fn retryable_fail(reply: &Reply) -> bool {
    matches!(reply, Reply::Fail(c) if c == "connect" || c == "redirect_hops" || c == codes::NO_LEADER || c == codes::NO_QUORUM)
}

pub async fn producer(ctx: Ctx, process: u64, rng: Rng, acked: Acked) {
    let wire = ctx.wire.clone();
    let pacing = Pacing {
        timeout: WRITE_TIMEOUT,
        retry_pause_ms: RETRY_PAUSE_MS,
        pause_ms: ctx.params.enqueue_pause_ms,
    };
    enqueue_loop(ctx, wire, pacing, process, rng, acked).await;
}

/// The probe's request timeout: the patience of an interactive client.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The probe's pause between enqueues, ms: the resolution of its recovery times.
const PROBE_PAUSE_MS: (u64, u64) = (40, 60);

/// One sequential producer with a 1 s timeout that moves to the next node after any
/// failure (its own `Wire`, so the others' leader hint does not help it). Its first ok
/// write after a fault is the unavailability a client sees: the recovery times the
/// availability issue sets targets for (`availability::summarize`, `expect.rs`).
pub async fn probe(ctx: Ctx, wire: Arc<Wire>, process: u64, rng: Rng, acked: Acked) {
    let pacing = Pacing {
        timeout: PROBE_TIMEOUT,
        retry_pause_ms: (0, 0),
        pause_ms: PROBE_PAUSE_MS,
    };
    enqueue_loop(ctx, wire, pacing, process, rng, acked).await;
}

#[derive(Debug, Clone, Copy)]
struct Pacing {
    timeout: Duration,
    retry_pause_ms: (u64, u64),
    pause_ms: (u64, u64),
}

async fn enqueue_loop(
    ctx: Ctx,
    wire: Arc<Wire>,
    pacing: Pacing,
    process: u64,
    mut rng: Rng,
    acked: Acked,
) {
    let p = ctx.params;
    let mut n = 0u64;
    while !ctx.stopped() {
        n += 1;
        let client_id = format!("p{process}-{n}");
        let body = json!({
            "queue": workload::QUEUE,
            "kind": workload::KIND,
            "payload": {"client_id": client_id},
            "idempotency_key": client_id,
            "max_attempts": workload::MAX_ATTEMPTS,
            "lease_ms": p.lease_ms,
            "backoff": {
                "initial_ms": workload::BACKOFF_INITIAL_MS,
                "multiplier": 2.0,
                "max_ms": workload::BACKOFF_MAX_MS,
            },
        });
        for _ in 0..=workload::ENQUEUE_RETRIES_MAX {
            ctx.rec.invoke(
                process,
                F::Enqueue,
                OpValue {
                    client_id: Some(client_id.clone()),
                    ..OpValue::default()
                },
            );
            let reply = wire.post("/v1/tasks", &body, pacing.timeout).await;
            let id = match &reply {
                Reply::Ok(v) => v["id"].as_u64(),
                _ => None,
            };
            record(&ctx.rec, process, F::Enqueue, &reply, |_| OpValue {
                client_id: Some(client_id.clone()),
                task: id,
                ..OpValue::default()
            });
            if let Some(id) = id {
                acked.lock().expect("acked lock").push(id);
                break;
            }
            if matches!(reply, Reply::Fail(_)) && !retryable_fail(&reply) {
                break;
            }
            pause(&mut rng, pacing.retry_pause_ms).await;
        }
        pause(&mut rng, pacing.pause_ms).await;
    }
}

/// Reads random acknowledged tasks (linearizable reads, the default), and now and then
/// cancels one.
pub async fn reader(ctx: Ctx, process: u64, mut rng: Rng, acked: Acked) {
    let p = ctx.params;
    while !ctx.stopped() {
        let task = {
            let ids = acked.lock().expect("acked lock");
            (!ids.is_empty()).then(|| *rng.pick(&ids))
        };
        let Some(task) = task else {
            pause(&mut rng, p.read_pause_ms).await;
            continue;
        };
        let target = OpValue {
            task: Some(task),
            ..OpValue::default()
        };
        if rng.chance(p.cancel_percent) {
            ctx.rec.invoke(process, F::Cancel, target);
            let reply = ctx
                .wire
                .post(
                    &format!("/v1/tasks/{task}/cancel"),
                    &json!({}),
                    WRITE_TIMEOUT,
                )
                .await;
            record(&ctx.rec, process, F::Cancel, &reply, |v| OpValue {
                task: Some(task),
                state: state_of(v),
                ..OpValue::default()
            });
        } else {
            ctx.rec.invoke(process, F::Read, target);
            let reply = ctx
                .wire
                .get(&format!("/v1/tasks/{task}"), WRITE_TIMEOUT)
                .await;
            // An ok read without a state we understand is not an observation we can
            // check: record it as unknown rather than invent one.
            let reply = match &reply {
                Reply::Ok(v) if state_of(v).is_none() => Reply::Info("bad_state".to_owned()),
                _ => reply,
            };
            record(&ctx.rec, process, F::Read, &reply, |v| OpValue {
                task: Some(task),
                state: state_of(v),
                client_id: client_id_of(v),
                ..OpValue::default()
            });
        }
        pause(&mut rng, p.read_pause_ms).await;
    }
}

/// A lease this worker holds.
#[derive(Debug, Clone)]
struct Held {
    task: u64,
    token: u64,
    client_id: Option<String>,
}

/// Claims tasks and works them one at a time. When told to stop it finishes the tasks it
/// holds, so the drain never waits for an abandoned lease.
pub async fn worker(ctx: Ctx, process: u64, mut rng: Rng) {
    let p = ctx.params;
    let body = json!({
        "worker": format!("w{process}"),
        "queues": [workload::QUEUE],
        "kinds": [workload::KIND],
        "max": p.claim_max,
        "lease_ms": p.lease_ms,
        "wait_ms": workload::CLAIM_WAIT_MS,
    });
    let claim_timeout = Duration::from_millis(workload::CLAIM_WAIT_MS) + WRITE_TIMEOUT;
    while !ctx.stopped() {
        ctx.rec.invoke(process, F::Claim, OpValue::default());
        let reply = ctx.wire.post("/v1/claim", &body, claim_timeout).await;
        let held: Vec<Held> = match &reply {
            Reply::Ok(v) => v["tasks"]
                .as_array()
                .map(|tasks| {
                    tasks
                        .iter()
                        .filter_map(|t| {
                            Some(Held {
                                task: t["id"].as_u64()?,
                                token: t["lease"]["token"].as_u64()?,
                                client_id: client_id_of(t),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        record(&ctx.rec, process, F::Claim, &reply, |_| OpValue {
            claimed: Some(
                held.iter()
                    .map(|h| Claimed {
                        task: h.task,
                        token: h.token,
                        client_id: h.client_id.clone(),
                    })
                    .collect(),
            ),
            ..OpValue::default()
        });
        if !matches!(reply, Reply::Ok(_)) {
            pause(&mut rng, RETRY_PAUSE_MS).await;
        }
        for h in held {
            work(&ctx, process, &mut rng, &h).await;
        }
    }
}

fn lease_value(h: &Held) -> OpValue {
    OpValue {
        task: Some(h.task),
        token: Some(h.token),
        ..OpValue::default()
    }
}

/// Works on one task for a while (heartbeating if the workload does), then ends it.
async fn work(ctx: &Ctx, process: u64, rng: &mut Rng, h: &Held) {
    let p = ctx.params;
    let work_ms = rng.range(p.work_ms.0, p.work_ms.1);
    let started = Instant::now();
    let mut lost = false;
    loop {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if elapsed >= work_ms {
            break;
        }
        let step = p
            .heartbeat_every_ms
            .unwrap_or(work_ms)
            .min(work_ms - elapsed);
        tokio::time::sleep(Duration::from_millis(step)).await;
        let done = started.elapsed() >= Duration::from_millis(work_ms);
        if done || p.heartbeat_every_ms.is_none() || rng.chance(p.heartbeat_skip_percent) {
            continue;
        }
        ctx.rec.invoke(process, F::Heartbeat, lease_value(h));
        let reply = ctx
            .wire
            .post(
                &format!("/v1/tasks/{}/heartbeat", h.task),
                &json!({"token": h.token}),
                WRITE_TIMEOUT,
            )
            .await;
        record(&ctx.rec, process, F::Heartbeat, &reply, |_| lease_value(h));
        if matches!(&reply, Reply::Fail(c) if c == codes::LEASE_LOST || c == codes::TASK_FINISHED) {
            lost = true;
            break;
        }
    }
    if lost && !rng.chance(p.stale_complete_percent) {
        return;
    }
    let roll = rng.below(100);
    let (f, path, body) = if roll < p.fail_percent {
        (
            F::Fail,
            "fail",
            json!({"token": h.token, "error": "jepsen", "retryable": true, "retry_after_ms": 50}),
        )
    } else if roll < p.fail_percent + p.release_percent {
        (
            F::Release,
            "release",
            json!({"token": h.token, "delay_ms": 0}),
        )
    } else {
        (
            F::Complete,
            "complete",
            json!({"token": h.token, "result": {"client_id": h.client_id}}),
        )
    };
    for _ in 0..=workload::COMPLETE_RETRIES_MAX {
        ctx.rec.invoke(process, f, lease_value(h));
        let reply = ctx
            .wire
            .post(
                &format!("/v1/tasks/{}/{path}", h.task),
                &body,
                WRITE_TIMEOUT,
            )
            .await;
        record(&ctx.rec, process, f, &reply, |v| OpValue {
            state: state_of(v),
            ..lease_value(h)
        });
        match reply {
            Reply::Ok(_) => return,
            Reply::Fail(_) if !retryable_fail(&reply) => return,
            _ => pause(rng, RETRY_PAUSE_MS).await,
        }
    }
}

/// The acknowledged ids, deduplicated.
pub fn acked_set(acked: &Acked) -> BTreeSet<u64> {
    acked.lock().expect("acked lock").iter().copied().collect()
}
