//! The worker runtime (`taskswarm_worker::Worker`) against real 3-node clusters: handlers
//! by kind, batched heartbeats, local lease deadlines, cancels, reserved slots, composite
//! jobs, panics and graceful shutdown.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::{json, Value};
use taskswarm_worker::api::{BackoffSpec, EnqueueRequest, EventName, TaskState};
use taskswarm_worker::{
    compose, CancelReason, Client, Handler, TaskContext, TaskError, TaskOutcome, Worker,
    WorkerHandle, WorkerStats, PANIC_CODE,
};
use tokio::sync::mpsc;

/// Longest wait for any one outcome.
const WAIT: Duration = Duration::from_secs(30);
/// A short lease, so that lease paths run in a second or two.
const LEASE: Duration = Duration::from_millis(1500);
/// Retries come back at once: the tests are about who runs a task, not when.
const FAST_BACKOFF: BackoffSpec = BackoffSpec {
    initial_ms: 50,
    multiplier: 1.0,
    max_ms: 50,
};

fn client(c: &Cluster) -> Client {
    Client::new(c.urls.clone()).unwrap()
}

fn task(queue: &str, kind: &str, payload: Value) -> EnqueueRequest {
    EnqueueRequest {
        queue: queue.into(),
        kind: kind.into(),
        payload,
        backoff: Some(FAST_BACKOFF),
        ..Default::default()
    }
}

async fn enqueue(client: &Client, t: EnqueueRequest) -> u64 {
    client.enqueue(t).await.unwrap().id
}

async fn outcome(client: &Client, id: u64) -> Option<TaskOutcome> {
    TaskOutcome::of(&client.wait(id, WAIT).await.unwrap())
}

/// Waits until `cond` holds on the task, polling.
async fn wait_task(
    client: &Client,
    id: u64,
    what: &str,
    cond: impl Fn(&taskswarm_worker::api::TaskView) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = client.task(id).await.unwrap();
        if cond(&t) {
            return;
        }
        assert!(Instant::now() < deadline, "task {id} never {what}: {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(
    client: &Client,
    id: u64,
    kind: EventName,
) -> Vec<taskswarm_worker::api::EventView> {
    client
        .events(id)
        .await
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.event == kind)
        .collect()
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
        .expect(what)
}

fn sum(stats: &[WorkerStats], f: impl Fn(&WorkerStats) -> u64) -> u64 {
    stats.iter().map(f).sum()
}

async fn fib(_ctx: TaskContext, payload: Value) -> Result<Value, TaskError> {
    let n = payload["n"]
        .as_u64()
        .ok_or_else(|| TaskError::permanent("no n"))?;
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    Ok(json!(a))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_submits_fibonacci_tasks_and_awaits_what_a_worker_computes() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let worker = Worker::builder(client.clone())
        .queue("fib")
        .handler("fib", fib)
        .slots(4)
        .lease(LEASE)
        .build()
        .unwrap()
        .start();
    let mut handles = Vec::new();
    for n in 0..20u64 {
        handles.push(
            client
                .submit(task("fib", "fib", json!({"n": n})))
                .await
                .unwrap(),
        );
    }
    let mut results = Vec::new();
    for h in &handles {
        match h.wait(WAIT).await.unwrap() {
            Some(TaskOutcome::Succeeded(v)) => results.push(v.as_u64().expect("a number")),
            other => panic!("task {} did not succeed: {other:?}", h.id),
        }
    }
    // Checked by the recurrence, not by the same code that computed them.
    assert_eq!((results[0], results[1], results[19]), (0, 1, 4181));
    for n in 2..20 {
        assert_eq!(results[n], results[n - 1] + results[n - 2], "fib({n})");
    }
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (
            stats.claimed,
            stats.completed,
            stats.failed,
            stats.lease_lost
        ),
        (20, 20, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_leader_killed_200_tasks_through_4_workers_each_succeed_once_in_effect() {
    const TASKS: u64 = 200;
    let c = Cluster::start(3).await;
    let client = client(&c);
    // Handler executions per task id, counted when a handler starts.
    let runs: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let mut workers: Vec<WorkerHandle> = Vec::new();
    for w in 0..4 {
        let runs = runs.clone();
        let square = move |ctx: TaskContext, payload: Value| {
            *runs.lock().unwrap().entry(ctx.id()).or_default() += 1;
            async move {
                let x = payload["x"].as_u64().ok_or("no x")?;
                // One in ten outlives its lease, living on heartbeats through the election.
                tokio::time::sleep(Duration::from_millis(if x % 10 == 0 { 1500 } else { 200 }))
                    .await;
                Ok(json!(x * x))
            }
        };
        let worker = Worker::builder(Client::new(c.urls.clone()).unwrap())
            .worker_id(format!("w{w}"))
            .queue("sq")
            .handler("square", square)
            .slots(8);
        // A lease not much longer than an election: some are lost on the way.
        workers.push(
            worker
                .lease(Duration::from_millis(1200))
                .build()
                .unwrap()
                .start(),
        );
    }
    let batch = (0..TASKS)
        .map(|x| EnqueueRequest {
            max_attempts: Some(20),
            ..task("sq", "square", json!({"x": x}))
        })
        .collect();
    let ids: Vec<u64> = client
        .enqueue_batch(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r {
            taskswarm_worker::api::BatchItem::Ok(e) => e.id,
            taskswarm_worker::api::BatchItem::Err(e) => panic!("{e:?}"),
        })
        .collect();

    // Kill the leader while tasks are running.
    let deadline = Instant::now() + WAIT;
    while workers.iter().map(|w| w.stats().completed).sum::<u64>() < TASKS / 4 {
        assert!(Instant::now() < deadline, "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let leader = c.wait_leader().await;
    c.kill(leader);
    let running_at_kill: u64 = workers.iter().map(|w| w.stats().running).sum();

    for (x, id) in ids.iter().enumerate() {
        let x = x as u64;
        assert_eq!(
            outcome(&client, *id).await,
            Some(TaskOutcome::Succeeded(json!(x * x))),
            "task {id}"
        );
        assert_eq!(
            events(&client, *id, EventName::Succeeded).await.len(),
            1,
            "task {id} succeeded once"
        );
    }
    let mut stats = Vec::new();
    for w in workers {
        stats.push(w.shutdown(Duration::from_secs(5)).await);
    }
    let runs = runs.lock().unwrap().clone();
    let executions: u64 = runs.values().sum();
    let duplicated: Vec<(u64, u64)> = runs
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| (*id, *n))
        .collect();
    let lease_lost = sum(&stats, |s| s.lease_lost);
    let abandoned = sum(&stats, |s| s.abandoned);
    println!(
        "running at kill: {running_at_kill}; executions: {executions}; duplicated tasks (id, runs): {duplicated:?}; \
         lease_lost: {lease_lost}; abandoned: {abandoned}; stats: {stats:?}"
    );
    assert_eq!(runs.len() as u64, TASKS, "every task ran");
    // Exactly one accepted complete per task: the fencing token refused any other.
    assert_eq!(sum(&stats, |s| s.completed), TASKS);
    assert_eq!(sum(&stats, |s| s.failed), 0);
    // Every execution ended in exactly one way, and a task ran again only after an
    // execution that did not complete: a lost lease (or an end that never got through).
    assert_eq!(
        executions,
        TASKS + lease_lost + abandoned,
        "executions = completes + lease_lost + abandoned"
    );
    assert_eq!(
        sum(&stats, |s| s.claimed),
        executions + sum(&stats, |s| s.released),
        "claimed = started + released unstarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_outliving_its_lease_is_cancelled_and_another_attempt_completes_the_task() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let lease = Duration::from_millis(1000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Worker A never heartbeats in time, so its lease runs out; its handler ignores the
    // cancellation, waits until the task is done elsewhere, then tries its stale token.
    let slow = {
        let client = client.clone();
        move |ctx: TaskContext, _payload: Value| {
            let (client, tx) = (client.clone(), tx.clone());
            async move {
                let claimed = Instant::now();
                tokio::time::timeout(WAIT, ctx.cancelled())
                    .await
                    .map_err(|_| "never cancelled")?;
                let fired_at = claimed.elapsed();
                let fired_wall_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64;
                let deadline = Instant::now() + WAIT;
                while client
                    .task(ctx.id())
                    .await
                    .map(|t| t.state != TaskState::Succeeded)
                    .unwrap_or(true)
                {
                    assert!(
                        Instant::now() < deadline,
                        "the task never succeeded elsewhere"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let late = client.complete(ctx.id(), ctx.token(), json!("late")).await;
                tx.send((
                    ctx.token(),
                    ctx.cancel_reason(),
                    fired_at,
                    fired_wall_ms,
                    late,
                ))
                .unwrap();
                Ok(json!("late"))
            }
        }
    };
    let a = Worker::builder(client.clone())
        .worker_id("slow")
        .queue("q")
        .handler("job", slow)
        .slots(1)
        .lease(lease);
    let a = a
        .heartbeat_interval(Duration::from_secs(3600))
        .handler_stop_wait(WAIT)
        .build()
        .unwrap()
        .start();
    let id = enqueue(
        &client,
        EnqueueRequest {
            max_attempts: Some(3),
            ..task("q", "job", json!({}))
        },
    )
    .await;
    wait_task(&client, id, "claimed by A", |t| {
        t.state == TaskState::Running
    })
    .await;
    let fast = |_ctx: TaskContext, _p: Value| async { Ok(json!("fast")) };
    let b = Worker::builder(client.clone())
        .worker_id("fast")
        .queue("q")
        .handler("job", fast)
        .lease(lease)
        .build()
        .unwrap()
        .start();

    let (stale_token, reason, fired_after, fired_wall_ms, late) =
        recv(&mut rx, "A's handler").await;
    assert_eq!(reason, Some(CancelReason::LeaseExpired));
    // Counted from when A sent its claim (a long-poll of up to a third of the lease), so
    // it fires at most one lease after the handler started.
    assert!(
        fired_after >= lease / 2 && fired_after <= lease + Duration::from_millis(200),
        "fired after {fired_after:?}"
    );
    let err = late.expect_err("a complete with the stale token is refused");
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(
        outcome(&client, id).await,
        Some(TaskOutcome::Succeeded(json!("fast")))
    );
    let claims = events(&client, id, EventName::Claimed).await;
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert_eq!(
        (claims[0].token, claims[0].worker.as_deref()),
        (Some(stale_token), Some("slow"))
    );
    assert!(claims[1].token > Some(stale_token) && claims[1].worker.as_deref() == Some("fast"));
    // A's local deadline passed before the cluster handed the task to B.
    assert!(
        fired_wall_ms <= claims[1].at_ms,
        "A cancelled at {fired_wall_ms}, B claimed at {}",
        claims[1].at_ms
    );

    let a = a.shutdown(Duration::from_secs(5)).await;
    let b = b.shutdown(Duration::from_secs(5)).await;
    // A dropped its result instead of completing: its complete would race B's attempt.
    assert_eq!(
        (a.completed, a.lease_lost, a.heartbeats),
        (0, 1, 0),
        "{a:?}"
    );
    assert_eq!((b.completed, b.lease_lost), (1, 0), "{b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_the_running_handler_and_the_task_ends_cancelled() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = move |ctx: TaskContext, _p: Value| {
        let tx = tx.clone();
        async move {
            tx.send(("started", None)).unwrap();
            tokio::select! {
                () = ctx.cancelled() => {
                    tx.send(("cancelled", ctx.cancel_reason())).unwrap();
                    Err(TaskError::retryable("stopped on cancel"))
                }
                () = tokio::time::sleep(WAIT) => Ok(json!("never cancelled")),
            }
        }
    };
    let worker = Worker::builder(client.clone())
        .queue("q")
        .handler("long", handler)
        .lease(LEASE)
        .build()
        .unwrap()
        .start();
    let id = enqueue(&client, task("q", "long", json!({}))).await;
    assert_eq!(recv(&mut rx, "start").await.0, "started");
    let asked = Instant::now();
    assert_eq!(
        client.cancel(id).await.unwrap().state,
        TaskState::Running,
        "a running task waits for its worker"
    );
    assert_eq!(
        recv(&mut rx, "cancel").await,
        ("cancelled", Some(CancelReason::CancelRequested))
    );
    assert!(
        asked.elapsed() < LEASE,
        "the cancel rode on a heartbeat: {:?}",
        asked.elapsed()
    );
    assert_eq!(outcome(&client, id).await, Some(TaskOutcome::Cancelled));
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (stats.cancelled, stats.failed, stats.completed),
        (1, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_slot_runs_a_high_priority_task_while_a_long_low_one_holds_the_general_slot() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let hold = Arc::new(tokio::sync::Notify::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = {
        let hold = hold.clone();
        move |ctx: TaskContext, p: Value| {
            let (hold, tx) = (hold.clone(), tx.clone());
            async move {
                tx.send(ctx.id()).unwrap();
                if p["hold"] == json!(true) {
                    hold.notified().await;
                }
                Ok(json!(ctx.priority()))
            }
        }
    };
    let worker = Worker::builder(client.clone())
        .queue("q")
        .handler("job", handler)
        .slots(1)
        .reserve(10, 1);
    let worker = worker.lease(LEASE).build().unwrap().start();
    let long = enqueue(&client, task("q", "job", json!({"hold": true}))).await;
    assert_eq!(recv(&mut rx, "long started").await, long);
    let low = enqueue(&client, task("q", "job", json!({}))).await;
    let high = enqueue(
        &client,
        EnqueueRequest {
            priority: 10,
            ..task("q", "job", json!({}))
        },
    )
    .await;
    let done = client.wait(high, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        TaskOutcome::of(&done),
        Some(TaskOutcome::Succeeded(json!(10))),
        "the high task ran beside the long one"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let low_view = client.task(low).await.unwrap();
    assert_eq!(
        (low_view.state.as_str(), low_view.attempt),
        ("queued", 0),
        "the reserved slot never takes a low task"
    );
    assert_eq!(client.task(long).await.unwrap().state, TaskState::Running);
    hold.notify_one();
    assert_eq!(
        outcome(&client, long).await,
        Some(TaskOutcome::Succeeded(json!(0)))
    );
    assert_eq!(
        outcome(&client, low).await,
        Some(TaskOutcome::Succeeded(json!(0)))
    );
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.completed, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_runs_its_steps_in_series_under_one_lease() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    // (step, token, attempt, started, ended, input)
    type Log = Arc<Mutex<Vec<(u64, u64, u32, Instant, Instant, Value)>>>;
    let log: Log = Arc::default();
    let step = |k: u64, log: Log| {
        Handler::new(move |ctx: TaskContext, input: Value| {
            let log = log.clone();
            async move {
                let started = Instant::now();
                // Together the steps outlive one lease: only heartbeats keep it.
                tokio::time::sleep(Duration::from_millis(600)).await;
                let out = json!(input.as_u64().ok_or("not a number")? * 10 + k);
                log.lock().unwrap().push((
                    k,
                    ctx.token(),
                    ctx.attempt(),
                    started,
                    Instant::now(),
                    input,
                ));
                Ok(out)
            }
        })
    };
    let pipeline = compose([
        step(1, log.clone()),
        step(2, log.clone()),
        step(3, log.clone()),
    ]);
    let worker = Worker::builder(client.clone())
        .queue("q")
        .handler("pipeline", pipeline)
        .lease(Duration::from_millis(1000));
    let worker = worker.build().unwrap().start();
    let id = enqueue(&client, task("q", "pipeline", json!(7))).await;
    assert_eq!(
        outcome(&client, id).await,
        Some(TaskOutcome::Succeeded(json!(7123)))
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().map(|l| (l.0, l.5.clone())).collect::<Vec<_>>(),
        vec![(1, json!(7)), (2, json!(71)), (3, json!(712))]
    );
    for pair in log.windows(2) {
        assert!(
            pair[0].4 <= pair[1].3,
            "step {} started before step {} ended",
            pair[1].0,
            pair[0].0
        );
    }
    let claims = events(&client, id, EventName::Claimed).await;
    assert_eq!(claims.len(), 1, "one claim for every step: {claims:?}");
    assert!(
        log.iter().all(|l| Some(l.1) == claims[0].token && l.2 == 1),
        "one token, one attempt: {log:?}"
    );
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (stats.claimed, stats.completed, stats.lease_lost),
        (1, 1, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_task_and_the_worker_keeps_serving() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let handler = |_ctx: TaskContext, p: Value| async move {
        if p["panic"] == json!(true) {
            panic!("kaboom");
        }
        Ok(json!("fine"))
    };
    let worker = Worker::builder(client.clone())
        .queue("q")
        .handler("job", handler)
        .slots(1)
        .lease(LEASE)
        .build()
        .unwrap()
        .start();
    let bad = enqueue(
        &client,
        EnqueueRequest {
            max_attempts: Some(2),
            ..task("q", "job", json!({"panic": true}))
        },
    )
    .await;
    match outcome(&client, bad).await {
        Some(TaskOutcome::Failed(e)) => {
            assert_eq!(e.code, PANIC_CODE);
            assert!(e.message.contains("kaboom"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.task(bad).await.unwrap().attempt,
        2,
        "a panic is retryable"
    );
    let good = enqueue(&client, task("q", "job", json!({}))).await;
    assert_eq!(
        outcome(&client, good).await,
        Some(TaskOutcome::Succeeded(json!("fine")))
    );
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (stats.panicked, stats.failed, stats.completed),
        (2, 2, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_handlers_finish_within_the_grace_period_and_releases_the_rest() {
    let c = Cluster::start(3).await;
    let client = client(&c);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = move |ctx: TaskContext, p: Value| {
        let tx = tx.clone();
        async move {
            tx.send(("started", ctx.id(), None)).unwrap();
            let ms = p["ms"].as_u64().ok_or("no ms")?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!("done")),
                () = ctx.cancelled() => {
                    tx.send(("cancelled", ctx.id(), ctx.cancel_reason())).unwrap();
                    Err(TaskError::retryable("interrupted"))
                }
            }
        }
    };
    let grace = Duration::from_millis(1500);
    let worker = Worker::builder(client.clone())
        .queue("q")
        .handler("job", handler)
        .slots(2)
        .lease(LEASE)
        .build()
        .unwrap()
        .start();
    let quick = enqueue(&client, task("q", "job", json!({"ms": 700}))).await;
    let slow = enqueue(&client, task("q", "job", json!({"ms": 60_000}))).await;
    let mut started = vec![
        recv(&mut rx, "start").await.1,
        recv(&mut rx, "start").await.1,
    ];
    started.sort();
    assert_eq!(started, vec![quick, slow]);
    let waiting = enqueue(&client, task("q", "job", json!({"ms": 1}))).await;

    let t0 = Instant::now();
    let stats = worker.shutdown(grace).await;
    let took = t0.elapsed();
    assert!(
        took >= grace && took < grace + Duration::from_secs(3),
        "shutdown took {took:?}"
    );
    assert_eq!(
        recv(&mut rx, "cancel").await,
        ("cancelled", slow, Some(CancelReason::Shutdown))
    );
    assert_eq!(
        outcome(&client, quick).await,
        Some(TaskOutcome::Succeeded(json!("done"))),
        "finished within the grace"
    );
    let slow_view = client.task(slow).await.unwrap();
    assert_eq!(
        (slow_view.state.as_str(), slow_view.attempt),
        ("queued", 0),
        "released without using an attempt"
    );
    assert_eq!(events(&client, slow, EventName::Released).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting_view = client.task(waiting).await.unwrap();
    assert_eq!(
        (waiting_view.state.as_str(), waiting_view.attempt),
        ("queued", 0),
        "nothing claimed after the shutdown began"
    );
    assert_eq!(
        (stats.completed, stats.released, stats.failed, stats.running),
        (1, 1, 0, 0),
        "{stats:?}"
    );
}
