//! The smoke run: proves the environment works end to end on a real cluster.
//!
//! 3 nodes in namespaces → a leader → a few enqueues → isolate the leader → a new leader
//! among the others, a write through the majority is acknowledged and a write to the
//! isolated old leader is not → heal → all nodes converge on one applied index and state
//! hash. Failing expectations are `Outcome::Failed`; setup problems are errors.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use jepsen_style_tests::env::{client, FaultEvent, Nodes, NodesConfig, Partitions};
use serde_json::{json, Value};

use crate::{Args, Outcome};

/// Longest wait for a leader: several election timeouts, plus process start-up.
const LEADER_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for the nodes to agree after the heal.
const CONVERGE_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Client timeout for ordinary requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The isolated leader answers `indeterminate` after its write timeout; give it that plus
/// slack, then count a silence as "not acknowledged" too.
const ISOLATED_WRITE_TIMEOUT: Duration =
    Duration::from_millis(jepsen_style_tests::env::nodes::WRITE_TIMEOUT_MS + 3_000);
const TASKS_BEFORE_FAULT: usize = 3;
const LOG_TAIL_LINES: usize = 15;
const CLUSTER_SECRET: &str = "jepsen-smoke-secret";

struct Smoke {
    http: reqwest::Client,
    nodes: Nodes,
    start: Instant,
    /// Next history index and fault id for the nemesis records printed to the log.
    next_index: u64,
}

impl Smoke {
    fn log(&self, msg: &str) {
        println!("[{:>6} ms] {msg}", self.start.elapsed().as_millis());
    }

    fn record(&mut self, ev: &FaultEvent, fault_id: u64) -> anyhow::Result<()> {
        let line = serde_json::to_string(&ev.to_record(self.next_index, fault_id))?;
        self.next_index += 1;
        self.log(&format!("nemesis {line}"));
        Ok(())
    }

    fn logs(&self) -> String {
        (1..=self.nodes.count())
            .map(|n| {
                format!(
                    "--- node {n} ---\n{}",
                    self.nodes.log_tail(n, LOG_TAIL_LINES)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until every node of `group` names the same leader, a member of `group`
    /// other than `exclude`, which itself says it leads.
    async fn wait_leader(&self, group: &[usize], exclude: Option<usize>) -> Option<usize> {
        let deadline = Instant::now() + LEADER_WAIT;
        while Instant::now() < deadline {
            let mut seen = Vec::new();
            for n in group {
                seen.push(
                    client::status(&self.http, &self.nodes.url(*n))
                        .await
                        .and_then(|s| s.leader_id),
                );
            }
            if let Some(Some(first)) = seen.first().copied() {
                let leader = usize::try_from(first).unwrap_or(0);
                if seen.iter().all(|l| *l == Some(first))
                    && group.contains(&leader)
                    && exclude != Some(leader)
                {
                    return Some(leader);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    async fn enqueue(
        &self,
        node: usize,
        key: &str,
        timeout: Duration,
    ) -> Result<(u16, Value), reqwest::Error> {
        let body =
            json!({"queue": "smoke", "kind": "k", "payload": {"key": key}, "idempotency_key": key});
        let resp = self
            .http
            .post(format!("{}/v1/tasks", self.nodes.url(node)))
            .json(&body)
            .timeout(timeout)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Enqueues through `node` until acknowledged (the key makes retries idempotent).
    async fn enqueue_acked(&self, node: usize, key: &str) -> Option<u64> {
        let deadline = Instant::now() + LEADER_WAIT;
        while Instant::now() < deadline {
            if let Ok((status, body)) = self.enqueue(node, key, REQUEST_TIMEOUT).await {
                if status == 200 || status == 201 {
                    return body["id"].as_u64();
                }
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Waits for every node to answer with the same leader, applied index and state hash.
    async fn converge(&self) -> Result<String, String> {
        let deadline = Instant::now() + CONVERGE_WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut all = Vec::new();
            for n in 1..=self.nodes.count() {
                all.push(client::status_with_hash(&self.http, &self.nodes.url(n)).await);
            }
            let view: Vec<_> = all
                .iter()
                .map(|s| {
                    s.as_ref()
                        .map(|s| (s.leader_id, s.applied_index, s.state_hash.clone()))
                })
                .collect();
            last = format!("{view:?}");
            if let Some(Some(first)) = view.first() {
                if first.0.is_some() && view.iter().all(|v| v.as_ref() == Some(first)) {
                    return Ok(format!(
                        "leader {:?}, applied index {}, state hash {:?}",
                        first.0, first.1, first.2
                    ));
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Err(last)
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let bin = args.taskswarm_bin();
    if !bin.is_file() {
        bail!(
            "no taskswarm binary at {} (build it or pass --taskswarm-bin)",
            bin.display()
        );
    }
    let run_dir = args.run_dir_or_new("smoke");
    let cfg = NodesConfig {
        count: args.nodes,
        bin,
        run_dir: run_dir.clone(),
        cluster_secret: CLUSTER_SECRET.to_owned(),
        extra_args: Vec::new(),
        faketime_lib: None,
    };
    let nodes = Nodes::create(cfg).context("creating the environment")?;
    let mut parts = Partitions::new(nodes.count(), nodes.epoch());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    // Log times and fault times share one clock: the environment's epoch.
    let start = nodes.epoch();
    let mut s = Smoke {
        http,
        nodes,
        start,
        next_index: 0,
    };
    s.log(&format!(
        "{} nodes in namespaces n1..n{}, run dir {}",
        s.nodes.count(),
        s.nodes.count(),
        run_dir.display()
    ));
    let all: Vec<usize> = (1..=s.nodes.count()).collect();

    let Some(leader) = s.wait_leader(&all, None).await else {
        return Ok(Outcome::Failed(format!(
            "no leader within {LEADER_WAIT:?}\n{}",
            s.logs()
        )));
    };
    s.log(&format!(
        "leader is node {leader} ({})",
        s.nodes.url(leader)
    ));
    for i in 0..TASKS_BEFORE_FAULT {
        let Some(id) = s.enqueue_acked(leader, &format!("before-{i}")).await else {
            return Ok(Outcome::Failed(format!(
                "enqueue before-{i} never acknowledged\n{}",
                s.logs()
            )));
        };
        s.log(&format!("enqueued before-{i} as task {id}"));
    }

    let ev = parts.isolate(leader)?;
    s.record(&ev, 1)?;
    if !ev.effective {
        bail!("isolating node {leader}: nft rules not listed after install");
    }
    let others: Vec<usize> = all.iter().copied().filter(|n| *n != leader).collect();
    let Some(new_leader) = s.wait_leader(&others, Some(leader)).await else {
        return Ok(Outcome::Failed(format!(
            "no new leader among {others:?} within {LEADER_WAIT:?}\n{}",
            s.logs()
        )));
    };
    s.log(&format!("new leader is node {new_leader}"));
    let Some(id) = s.enqueue_acked(new_leader, "majority").await else {
        return Ok(Outcome::Failed(format!(
            "write through the majority never acknowledged\n{}",
            s.logs()
        )));
    };
    s.log(&format!(
        "write through the majority acknowledged: task {id}"
    ));
    match s.enqueue(leader, "isolated", ISOLATED_WRITE_TIMEOUT).await {
        Ok((status, body)) if status == 200 || status == 201 => {
            return Ok(Outcome::Failed(format!(
                "isolated old leader {leader} acknowledged a write: {status} {body}"
            )));
        }
        Ok((status, body)) => s.log(&format!(
            "write to isolated node {leader} not acknowledged: {status} {body}"
        )),
        Err(e) => s.log(&format!(
            "write to isolated node {leader} not acknowledged: {e}"
        )),
    }

    let ev = parts.heal()?;
    s.record(&ev, 1)?;
    if !ev.effective {
        bail!("healing: nft rules still listed");
    }
    match s.converge().await {
        Ok(summary) => s.log(&format!("converged: {summary}")),
        Err(last) => {
            return Ok(Outcome::Failed(format!(
                "no convergence within {CONVERGE_WAIT:?}: {last}\n{}",
                s.logs()
            )))
        }
    }
    process_faults(&mut s, &mut parts, &all).await
}

/// The other fault primitives, each once: pause + resume the leader, kill + restart a
/// follower, a two-group partition, then convergence again.
async fn process_faults(
    s: &mut Smoke,
    parts: &mut Partitions,
    all: &[usize],
) -> anyhow::Result<Outcome> {
    let Some(leader) = s.wait_leader(all, None).await else {
        return Ok(Outcome::Failed(format!(
            "no leader after the heal\n{}",
            s.logs()
        )));
    };
    let ev = s.nodes.pause(leader)?;
    s.record(&ev, 2)?;
    if !ev.effective {
        bail!("SIGSTOP of node {leader} not visible in /proc");
    }
    let others: Vec<usize> = all.iter().copied().filter(|n| *n != leader).collect();
    let Some(new_leader) = s.wait_leader(&others, Some(leader)).await else {
        return Ok(Outcome::Failed(format!(
            "no new leader while node {leader} is paused\n{}",
            s.logs()
        )));
    };
    s.log(&format!(
        "node {leader} paused; new leader is node {new_leader}"
    ));
    let ev = s.nodes.resume(leader)?;
    s.record(&ev, 2)?;

    let follower = others
        .iter()
        .copied()
        .find(|n| *n != new_leader)
        .unwrap_or(leader);
    let ev = s.nodes.kill(follower)?;
    s.record(&ev, 3)?;
    let Some(id) = s.enqueue_acked(new_leader, "while-killed").await else {
        return Ok(Outcome::Failed(format!(
            "no write acknowledged with node {follower} killed\n{}",
            s.logs()
        )));
    };
    s.log(&format!(
        "node {follower} killed; write acknowledged: task {id}"
    ));
    let ev = s.nodes.restart(follower)?;
    s.record(&ev, 3)?;

    // Halves: the follower alone, the rest together (on 3 nodes: minority of one).
    let rest: Vec<usize> = all.iter().copied().filter(|n| *n != follower).collect();
    let ev = parts.partition(&[vec![follower], rest])?;
    s.record(&ev, 4)?;
    if !ev.effective {
        bail!("partition rules not listed after install");
    }
    let ev = parts.heal()?;
    s.record(&ev, 4)?;
    match s.converge().await {
        Ok(summary) => s.log(&format!("converged again: {summary}")),
        Err(last) => {
            return Ok(Outcome::Failed(format!(
                "no convergence after the process faults: {last}\n{}",
                s.logs()
            )))
        }
    }
    Ok(Outcome::Passed)
}
