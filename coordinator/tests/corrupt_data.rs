//! A node that finds damaged data at start refuses to start, naming the file, instead of
//! serving from what it could read; the runbook's rebuild from the other members then
//! brings it back with every acknowledged task.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::json;

/// Flips every bit of the byte at `offset` of `file`.
fn flip_byte(file: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[byte[0] ^ 0xff]).unwrap();
    f.sync_all().unwrap();
}

/// The largest RocksDB write-ahead log file (`NNNNNN.log`) in a node's log directory.
fn largest_wal(node_dir: &Path) -> PathBuf {
    std::fs::read_dir(node_dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a WAL file")
}

/// Starts node `id` and expects it to refuse: a non-zero exit and a log line containing
/// every one of `expected`.
fn assert_refuses(c: &Cluster, id: usize, expected: &[&str]) {
    c.restart(id);
    let exit = c.wait_exit(id, Duration::from_secs(20));
    let log = c.log(id);
    assert!(
        exit.is_some_and(|s| !s.success()),
        "node {id} started on damaged data: {exit:?}\n{log}"
    );
    for text in expected {
        assert!(log.contains(text), "{text:?} missing from:\n{log}");
    }
    assert!(log.contains("rebuild it from the other members"), "{log}");
}

/// The runbook's rebuild: remove the member, empty its directory, start it, add it back;
/// then every task must be readable on it.
async fn rebuild(c: &Cluster, id: usize, tasks: &[u64]) {
    let started = Instant::now();
    c.retry_request(
        "DELETE",
        &format!("/v1/cluster/nodes/{id}?force=true"),
        None,
        |s| s == 200,
    )
    .await;
    std::fs::remove_dir_all(c.dir.path().join(format!("node-{id}"))).unwrap();
    c.restart(id);
    let addr = c.url(id).to_owned();
    c.retry_post("/v1/cluster/nodes", json!({"id": id, "addr": addr}), |s| {
        s == 200
    })
    .await;
    // add-node returns once the node has the log; applying it follows.
    let deadline = Instant::now() + common::WAIT;
    for task in tasks {
        loop {
            let (status, body) = c
                .get(id, &format!("/v1/tasks/{task}?consistency=local"))
                .await;
            if status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "task {task} never reached the rebuilt node {id}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "node {id} rebuilt from the others in {} ms",
        started.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_is_refused_at_start_and_the_node_is_rebuilt() {
    let c = Cluster::start(3).await;
    let mut tasks = Vec::new();
    for i in 0..150 {
        tasks.push(c.enqueue(&format!("t{i}"), json!({"i": i})).await);
    }
    let leader = c.wait_leader().await;
    let victim = c.follower(leader);
    // SIGKILL: the entries stay in the WAL, as after a crash.
    c.kill(victim);
    let wal = largest_wal(&c.dir.path().join(format!("node-{victim}")));
    let len = std::fs::metadata(&wal).unwrap().len();
    flip_byte(&wal, len / 2);
    // Before the fix, RocksDB's default recovery stopped at the damage without an error
    // and the node served a log missing the later acknowledged entries.
    let name = wal.file_name().unwrap().to_string_lossy().into_owned();
    assert_refuses(&c, victim, &["raft log", "Corruption", &name]);
    rebuild(&c, victim, &tasks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refused_at_start_and_the_node_is_rebuilt() {
    let c = Cluster::start_with(3, &["--snapshot-every", "20"]).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        tasks.push(c.enqueue(&format!("t{i}"), json!({"i": i})).await);
    }
    let leader = c.wait_leader().await;
    let victim = c.follower(leader);
    let snapshot = c
        .dir
        .path()
        .join(format!("node-{victim}/snapshot/current.snap"));
    let deadline = Instant::now() + common::WAIT;
    while !snapshot.exists() {
        assert!(Instant::now() < deadline, "no snapshot on node {victim}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.stop(victim);
    let len = std::fs::metadata(&snapshot).unwrap().len();
    flip_byte(&snapshot, len / 2);
    assert_refuses(
        &c,
        victim,
        &[&snapshot.to_string_lossy(), "checksum at byte"],
    );
    rebuild(&c, victim, &tasks).await;
}
