//! After the heal: wait for the drain (every acknowledged task finished), then read the
//! final state: every task from the leader and every node's applied index and state hash.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wire::{Reply, Wire};
use crate::env::client;
use crate::history::{FinalNode, FinalState, FinalTask};
use crate::model::TaskState;

/// Tasks per list page (the API's maximum).
pub const LIST_PAGE_MAX: usize = 1_000;
/// Pages per listing: bounds a listing at a million tasks.
pub const LIST_PAGES_MAX: usize = 1_000;
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

/// Every task in the cluster, through the leader (linearizable list reads).
pub async fn list_all(wire: &Wire) -> Result<BTreeMap<u64, FinalTask>, String> {
    let mut tasks = BTreeMap::new();
    let mut after: Option<u64> = None;
    for _ in 0..LIST_PAGES_MAX {
        let path = match after {
            Some(a) => format!("/v1/tasks?limit={LIST_PAGE_MAX}&after={a}"),
            None => format!("/v1/tasks?limit={LIST_PAGE_MAX}"),
        };
        let page = match wire.get(&path, LIST_TIMEOUT).await {
            Reply::Ok(v) => v,
            other => return Err(format!("listing tasks: {other:?}")),
        };
        for t in page["tasks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let (Some(id), Some(state)) = (t["id"].as_u64(), state_of(t)) else {
                return Err(format!("listing tasks: unreadable task {t}"));
            };
            tasks.insert(
                id,
                FinalTask {
                    state,
                    token: t["lease"]["token"].as_u64(),
                    client_id: t["payload"]["client_id"].as_str().map(str::to_owned),
                },
            );
        }
        match page["next"].as_u64() {
            Some(next) => after = Some(next),
            None => return Ok(tasks),
        }
    }
    Err(format!(
        "more than {} tasks",
        LIST_PAGE_MAX * LIST_PAGES_MAX
    ))
}

fn state_of(t: &Value) -> Option<TaskState> {
    serde_json::from_value(t["state"].clone()).ok()
}

/// Waits until every acknowledged task has finished. Returns how long it took, or the
/// ids still unfinished at the deadline.
pub async fn drain(
    wire: &Wire,
    acked: &BTreeSet<u64>,
    timeout: Duration,
) -> Result<Duration, Vec<u64>> {
    let start = Instant::now();
    let mut pending: Vec<u64> = acked.iter().copied().collect();
    while start.elapsed() < timeout {
        if let Ok(tasks) = list_all(wire).await {
            pending = acked
                .iter()
                .copied()
                .filter(|id| !tasks.get(id).is_some_and(|t| t.state.is_finished()))
                .collect();
            if pending.is_empty() {
                return Ok(start.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Err(pending)
}

/// Every node's view; `None` entries did not answer.
async fn views(http: &reqwest::Client, urls: &[String]) -> Vec<Option<FinalNode>> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        out.push(
            client::status_with_hash(http, url)
                .await
                .map(|s| FinalNode {
                    id: s.node_id,
                    leader_id: s.leader_id,
                    applied_index: s.applied_index,
                    state_hash: s.state_hash.unwrap_or_default(),
                }),
        );
    }
    out
}

fn converged(views: &[Option<FinalNode>]) -> bool {
    let Some(Some(first)) = views.first() else {
        return false;
    };
    first.leader_id.is_some()
        && views.iter().all(|v| {
            v.as_ref().is_some_and(|v| {
                v.leader_id == first.leader_id
                    && v.applied_index == first.applied_index
                    && v.state_hash == first.state_hash
            })
        })
}

/// Reads the final state once the nodes agree, or what they say at `timeout` (the stuck
/// checker then reports the disagreement, with a note for the run log). No task listing
/// at all is an error: an empty final state would read as every task lost.
pub async fn collect(
    wire: &Wire,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<(FinalState, Option<String>), String> {
    let start = Instant::now();
    let urls = wire.nodes().to_vec();
    loop {
        let before = views(http, &urls).await;
        let tasks = list_all(wire).await;
        let after = views(http, &urls).await;
        let settled = converged(&before) && before == after;
        if let (true, Ok(tasks)) = (settled, &tasks) {
            return Ok((
                FinalState {
                    tasks: tasks.clone(),
                    nodes: after.into_iter().flatten().collect(),
                },
                None,
            ));
        }
        if start.elapsed() >= timeout {
            let missing: Vec<usize> = (1..=urls.len())
                .filter(|i| after[i - 1].is_none())
                .collect();
            let tasks = tasks?;
            let note =
                format!("nodes did not converge within {timeout:?} (silent nodes: {missing:?})");
            return Ok((
                FinalState {
                    tasks,
                    nodes: after.into_iter().flatten().collect(),
                },
                Some(note),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Most final-token lookups per run: one request each, so only tasks whose token matters
/// (claimed under more than one lease) are looked up.
pub const TOKEN_LOOKUPS_MAX: usize = 20_000;

/// The token each of `tasks` succeeded with, from the `succeeded` event in its event
/// list (a finished task no longer shows its lease). Tasks without one are left out.
pub async fn succeeded_tokens(wire: &Wire, tasks: &BTreeSet<u64>) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for &task in tasks.iter().take(TOKEN_LOOKUPS_MAX) {
        let Reply::Ok(v) = wire
            .get(&format!("/v1/tasks/{task}/events"), LIST_TIMEOUT)
            .await
        else {
            continue;
        };
        let token = v["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|e| e["event"] == taskswarm_api::EventName::Succeeded.as_str())
            .and_then(|e| e["token"].as_u64());
        if let Some(token) = token {
            out.insert(task, token);
        }
    }
    out
}
