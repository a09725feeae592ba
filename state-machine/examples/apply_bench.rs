//! Throughput of `apply` on a state holding 1,000,000 queued tasks, and the cost of its
//! snapshot. A benchmark prints numbers; it asserts nothing about speed.
//!
//! cargo run --release -p taskswarm-state-machine --example apply_bench [-- TASKS ROUNDS]

use std::time::Instant;

use taskswarm_state_machine::*;

const COMMANDS_PER_ENTRY: usize = 1_000;

/// The workload: 256-byte JSON payloads.
const PAYLOAD_BYTES: usize = 256;

/// A prefix shaped like the Rust client's (`c` and 16 hex digits).
const KEY_PREFIX: &str = "c5eed0000c0ffee00";

fn payload(i: usize) -> String {
    let head = format!("{{\"n\":{i},\"pad\":\"");
    let pad = PAYLOAD_BYTES - head.len() - 2;
    format!("{head}{}\"}}", "x".repeat(pad))
}

fn task(i: usize) -> NewTask {
    NewTask {
        queue: format!("q{}", i % 4),
        kind: "work".into(),
        payload: payload(i),
        priority: (i % 3) as i32,
        // The Rust client gives every enqueue a key: its per-client prefix and a counter.
        idempotency_key: Some(format!("{KEY_PREFIX}-{i}")),
        ..Default::default()
    }
}

struct Clock {
    index: u64,
    ms: u64,
}

impl Clock {
    fn entry(&mut self, commands: Vec<Command>) -> (u64, Entry) {
        self.index += 1;
        self.ms += 1;
        (
            self.index,
            Entry {
                wall_ms: 1_700_000_000_000 + self.ms,
                cluster_ms: self.ms,
                commands,
            },
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let rss_before = rss_mib();
    let mut sm = StateMachine::default();
    let mut clock = Clock { index: 0, ms: 0 };

    let start = Instant::now();
    let mut n = 0;
    while n < tasks {
        let batch: Vec<NewTask> = (n..(n + limits::ENQUEUE_BATCH_MAX).min(tasks))
            .map(task)
            .collect();
        n += batch.len();
        let (i, e) = clock.entry(vec![Command::Enqueue { tasks: batch }]);
        sm.apply(i, &e);
    }
    let fill = start.elapsed();
    let per_task = (rss_mib() - rss_before) * 1048576.0 / tasks as f64;
    println!(
        "sizes: Task {} B, Event {} B (inline, before heap strings and index entries)",
        std::mem::size_of::<Task>(),
        std::mem::size_of::<Event>()
    );
    println!(
        "memory: {per_task:.0} bytes of RSS per queued task, {:.0} beyond its {PAYLOAD_BYTES}-byte payload",
        per_task - PAYLOAD_BYTES as f64
    );
    println!("state: {tasks} queued tasks, filled in {:.2}s ({:.0} tasks/s in batches of {}), RSS {:.0} MiB",
        fill.as_secs_f64(), tasks as f64 / fill.as_secs_f64(), limits::ENQUEUE_BATCH_MAX, rss_mib());

    let (mut enq, mut claim, mut complete) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // enqueue: single-task commands, as the leader batches them from many clients
        let commands = (0..COMMANDS_PER_ENTRY)
            .map(|i| Command::Enqueue {
                tasks: vec![task(tasks + round * COMMANDS_PER_ENTRY + i)],
            })
            .collect();
        let (i, e) = clock.entry(commands);
        let t = Instant::now();
        sm.apply(i, &e);
        enq.push(COMMANDS_PER_ENTRY as f64 / t.elapsed().as_secs_f64());

        // claim: one task per command, across the four queues
        let commands = (0..COMMANDS_PER_ENTRY)
            .map(|i| {
                Command::Claim(Claim {
                    worker: format!("w{}", i % 16),
                    queues: vec![format!("q{}", i % 4)],
                    max: 1,
                    ..Default::default()
                })
            })
            .collect();
        let (i, e) = clock.entry(commands);
        let t = Instant::now();
        let out = sm.apply(i, &e);
        claim.push(COMMANDS_PER_ENTRY as f64 / t.elapsed().as_secs_f64());

        // complete what was claimed
        let commands = out
            .results
            .iter()
            .map(|r| match r {
                Ok(Reply::Claimed(v)) => Command::Complete {
                    task: v[0].id,
                    token: v[0].token,
                    result: "{\"ok\":true}".into(),
                },
                other => panic!("claim failed: {other:?}"),
            })
            .collect();
        let (i, e) = clock.entry(commands);
        let t = Instant::now();
        let out = sm.apply(i, &e);
        complete.push(COMMANDS_PER_ENTRY as f64 / t.elapsed().as_secs_f64());
        assert!(out.results.iter().all(Result::is_ok));
    }
    println!(
        "apply, {rounds} rounds of {COMMANDS_PER_ENTRY} commands per entry, median commands/s:"
    );
    println!("  enqueue   {:>10.0}", median(enq));
    println!("  claim     {:>10.0}", median(claim));
    println!("  complete  {:>10.0}", median(complete));

    let (mut view, mut enc, mut dec) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..3 {
        // What the node does: the view under its lock (applies wait for this only), the
        // encoding after letting go.
        let t = Instant::now();
        let v = sm.snapshot_view();
        view.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let bytes = v.encode();
        enc.push(t.elapsed().as_secs_f64());
        drop(v);
        size = bytes.len();
        let t = Instant::now();
        let restored = StateMachine::restore(&bytes).expect("restores");
        dec.push(t.elapsed().as_secs_f64());
        assert_eq!(restored.task_count(), sm.task_count());
    }
    println!("snapshot of {} tasks: {:.1} MiB ({:.0} bytes/task), view (applies wait) {:.1}ms, encode (applies run) {:.2}s, decode+reindex {:.2}s (medians of 3), RSS {:.0} MiB",
        sm.task_count(), size as f64 / 1048576.0, size as f64 / sm.task_count() as f64, median(view) * 1000.0, median(enc), median(dec), rss_mib());
}
