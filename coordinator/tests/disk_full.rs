//! A full data disk: with `--disk-free-min-mb`, the leader refuses writes with `503
//! storage_full` before the disk fills, nothing refused is written, reads still work,
//! and once space is back the cluster takes writes again by itself.
//!
//! Each node's data directory is a small tmpfs in a mount namespace of its own, with a
//! filler file taking part of it; freeing space is deleting the filler from inside that
//! namespace. Needs root (mount namespaces), so it is ignored by a plain `cargo test`;
//! `./x test` runs it as root:
//! `cargo test --release -p taskswarm-coordinator --test disk_full -- --ignored`

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::{json, Value};

const TMPFS_MB: u64 = 400;
const FILLER_MB: u64 = 100;
/// Above RocksDB's WAL preallocation and one memtable flush (tens of MB each, at once).
const MIN_FREE_MB: u64 = 200;
/// Payload of each write: large, so that the disk fills in a few hundred writes.
const PAD_BYTES: usize = 200_000;
/// Writes tried at most before the disk must have been declared full.
const WRITES_MAX: usize = 2_000;

/// A process holding a mount namespace of its own, with a tmpfs for each node's data
/// directory and a filler file in each. It outlives node restarts, so a node's data does
/// too; dropped, it ends and the tmpfs mounts go with the namespace.
struct Disks {
    holder: std::process::Child,
    scripts: tempfile::TempDir,
}

impl Disks {
    fn new(data_dirs: &[PathBuf]) -> Disks {
        let mut setup = String::new();
        for dir in data_dirs {
            setup += &format!(
                "mkdir -p {d} && mount -t tmpfs -o size={TMPFS_MB}m tmpfs {d} && fallocate -l {FILLER_MB}m {d}/filler && ",
                d = dir.display()
            );
        }
        let holder = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "/bin/sh", "-c"])
            .arg(format!("{setup}echo ready && exec sleep 100000"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare runs");
        let mut disks = Disks {
            holder,
            scripts: tempfile::tempdir().unwrap(),
        };
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(disks.holder.stdout.as_mut().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "the tmpfs mounts failed (root needed)"
        );
        disks
    }

    /// A program that runs taskswarm inside the namespace with the tmpfs mounts.
    fn launcher(&self, id: usize) -> PathBuf {
        let path = self.scripts.path().join(format!("launch-{id}.sh"));
        let script = format!(
            "#!/bin/sh\nexec nsenter -t {pid} -m -- {bin} \"$@\"\n",
            pid = self.holder.id(),
            bin = env!("CARGO_BIN_EXE_taskswarm"),
        );
        std::fs::write(&path, script).unwrap();
        let status = std::process::Command::new("chmod")
            .args(["+x", &path.to_string_lossy()])
            .status()
            .unwrap();
        assert!(status.success());
        path
    }

    /// Deletes the filler file in `data_dir`.
    fn free_space(&self, data_dir: &Path) {
        let filler = data_dir.join("filler");
        let status = std::process::Command::new("nsenter")
            .args(["-t", &self.holder.id().to_string(), "-m", "rm"])
            .arg(&filler)
            .status()
            .unwrap();
        assert!(status.success(), "rm {}", filler.display());
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The data directories `Cluster` will give its nodes, known before it starts them.
fn data_dirs(root: &Path, n: usize) -> Vec<PathBuf> {
    (1..=n).map(|id| root.join(format!("node-{id}"))).collect()
}

/// A 3-node cluster whose nodes keep their data on `disks`' tmpfs mounts.
async fn cluster_on_tmpfs(disks: &OnceLock<Disks>, min_free_mb: u64) -> Cluster {
    let min_free = min_free_mb.to_string();
    Cluster::start_with_launchers(3, &["--disk-free-min-mb", &min_free], |id, data| {
        let root = data.parent().unwrap();
        Some(
            disks
                .get_or_init(|| Disks::new(&data_dirs(root, 3)))
                .launcher(id),
        )
    })
    .await
}

/// What the writes until the disk filled got.
struct Filled {
    acked: Vec<u64>,
    /// The keys of writes whose outcome is unknown (the node died under them).
    unknown: Vec<String>,
    refused: usize,
}

/// The running node that says it leads, if any (never waits).
async fn leader_now(c: &Cluster) -> Option<usize> {
    for id in c.running() {
        let _ = c.wait_exit(id, Duration::ZERO);
    }
    for id in c.running() {
        let url = format!("{}/v1/cluster", c.url(id));
        if let Ok(r) = c.http.get(&url).send().await {
            let s: Value = r.json().await.unwrap_or(Value::Null);
            if s["leader_id"].as_u64() == Some(id as u64) {
                return Some(id);
            }
        }
    }
    None
}

/// Writes large tasks, each key retried through leader changes, until `stop` says so
/// (or fewer than a majority of the 3 nodes still run).
async fn fill(c: &Cluster, stop: impl Fn(&Filled) -> bool) -> Filled {
    let pad = "x".repeat(PAD_BYTES);
    let mut got = Filled {
        acked: Vec::new(),
        unknown: Vec::new(),
        refused: 0,
    };
    let started = Instant::now();
    let mut leader = c.wait_leader().await;
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while i < WRITES_MAX && !stop(&got) && c.running().len() >= 2 {
        assert!(Instant::now() < deadline, "still filling\n{}", c.logs());
        let key = format!("w{i}");
        let body =
            json!({"queue": "q", "kind": "k", "payload": {"pad": pad}, "idempotency_key": key});
        let url = format!("{}/v1/tasks", c.url(leader));
        let answer = c.http.post(&url).json(&body).send().await;
        let (status, answer) = match answer {
            Ok(r) => (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        };
        match (status, answer["error"]["code"].as_str()) {
            (201, _) => {
                got.acked.push(answer["id"].as_u64().unwrap());
                i += 1;
            }
            (503, Some("storage_full")) => {
                got.refused += 1;
                i += 1;
            }
            (307 | 503, Some("not_leader" | "no_leader" | "no_quorum")) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                leader = leader_now(c).await.unwrap_or(leader);
            }
            // The node died under the write, or its outcome is unknown: counted apart
            // (it may have been written), then on with a new key.
            _ => {
                got.unknown.push(key);
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                leader = leader_now(c).await.unwrap_or(leader);
            }
        }
    }
    println!(
        "{} writes acknowledged, {} refused, {} unknown, in {} ms",
        got.acked.len(),
        got.refused,
        got.unknown.len(),
        started.elapsed().as_millis()
    );
    got
}

/// Every acknowledged task is there, and nothing else but the unknown ones.
///
/// A read the cluster cannot serve yet (a 503 while a node with a full disk is elected
/// away, say) is asked again, within the harness's wait: only a `404` says a task is
/// lost. A CI run once failed here on a 503, which this check used to call a loss.
async fn assert_exactly(c: &Cluster, got: &Filled) {
    for id in &got.acked {
        let task = c
            .retry_request("GET", &format!("/v1/tasks/{id}"), None, |s| {
                s == 200 || s == 404
            })
            .await;
        assert_eq!(
            task["id"].as_u64(),
            Some(*id),
            "acknowledged task {id} lost: {task}"
        );
    }
    let queues = c
        .retry_request("GET", "/v1/queues", None, |s| s == 200)
        .await;
    let queued = queues["queues"][0]["counts"]["queued"]
        .as_u64()
        .unwrap_or(0);
    let acked = got.acked.len() as u64;
    assert!(
        queued >= acked && queued <= acked + got.unknown.len() as u64,
        "{queued} queued for {acked} acknowledged and {} unknown: {queues}",
        got.unknown.len()
    );
}

/// Waits until a new write is acknowledged; returns how long that took.
async fn write_again(c: &Cluster) -> Duration {
    let started = Instant::now();
    let deadline = started + common::WAIT;
    loop {
        let leader = c.wait_leader().await;
        let body = json!({"queue": "q", "kind": "k", "payload": {"after": true}});
        let (status, answer, _) = c.post(leader, "/v1/tasks", body).await;
        if status == 201 {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "writes still refused: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: tmpfs data directories in a private mount namespace"]
async fn a_full_disk_refuses_writes_changes_nothing_and_recovers_when_space_is_back() {
    let disks = OnceLock::new();
    let c = cluster_on_tmpfs(&disks, MIN_FREE_MB).await;
    let got = fill(&c, |g| g.refused >= 5).await;
    assert!(
        got.refused >= 5 && got.unknown.is_empty(),
        "the disk never filled"
    );
    let leader = c.wait_leader().await;
    assert_eq!(c.metric(leader, "taskswarm_storage_full").await, 1);
    assert_exactly(&c, &got).await;

    // Space back on every node: writes are taken again, with no restart.
    for dir in data_dirs(c.dir.path(), 3) {
        disks.get().unwrap().free_space(&dir);
    }
    let took = write_again(&c).await;
    println!(
        "writes taken again {} ms after space came back",
        took.as_millis()
    );
    assert_eq!(c.running().len(), 3, "a node stopped\n{}", c.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: tmpfs data directories in a private mount namespace"]
async fn a_disk_filled_past_the_margin_stops_the_nodes_and_a_restart_loses_nothing() {
    // No margin: the writes run into the full disk itself.
    let disks = OnceLock::new();
    let c = cluster_on_tmpfs(&disks, 0).await;
    // Until a majority has stopped: a node whose disk fills stops rather than serve HTTP
    // without its Raft (what it did before); a new leader takes over until its own disk
    // fills. The last node, a follower that got no further entries, keeps running.
    let got = fill(&c, |_| false).await;
    let running = c.running();
    assert!(
        running.len() <= 1,
        "nodes {running:?} still running\n{}",
        c.logs()
    );
    for id in (1..=3).filter(|id| !running.contains(id)) {
        assert!(c.log(id).contains("the data disk is full"), "{}", c.log(id));
    }
    // Space back; the supervisor's restart (here, the test's) brings them back.
    for dir in data_dirs(c.dir.path(), 3) {
        disks.get().unwrap().free_space(&dir);
    }
    for id in (1..=3).filter(|id| !running.contains(id)) {
        c.restart(id);
    }
    let took = write_again(&c).await;
    println!(
        "writes taken again {} ms after the restart",
        took.as_millis()
    );
    assert_exactly(&c, &got).await;
}
