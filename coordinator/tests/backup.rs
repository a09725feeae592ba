//! Backup and restore end to end: a backup taken through a follower while the cluster
//! serves writes, restored into a brand-new cluster (new ports, new data, new secret)
//! that serves exactly the tasks acknowledged before the backup, continues the fencing
//! tokens, and belongs to another cluster than its source.

mod common;

use std::process::Command;

use common::Cluster;
use serde_json::{json, Value};

fn taskswarm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_taskswarm"))
        .args(args)
        .output()
        .expect("the taskswarm binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `taskswarm restore FILE` for node 1 of `peers` into `data`.
fn restore_node_1(
    file: &std::path::Path,
    data: &std::path::Path,
    peers: &str,
) -> (bool, String, String) {
    taskswarm(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--id",
        "1",
        "--peers",
        peers,
    ])
}

/// Every task, in id order, as the leader sees it.
async fn all_tasks(c: &Cluster) -> Vec<Value> {
    let leader = c.wait_leader().await;
    let (status, page) = c.get(leader, "/v1/tasks?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page["tasks"].as_array().unwrap().clone()
}

/// What must survive a restore (times are estimates that move with the clocks).
fn essence(task: &Value) -> Value {
    json!({
        "id": task["id"], "queue": task["queue"], "kind": task["kind"],
        "payload": task["payload"], "state": task["state"], "attempt": task["attempt"],
        "result": task["result"], "error": task["error"],
        "lease_token": task["lease"]["token"], "created_at_ms": task["created_at_ms"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_new_cluster_with_the_same_tasks() {
    let a = Cluster::start(3).await;
    let leader = a.wait_leader().await;
    for n in 0..6 {
        a.enqueue(&format!("k{n}"), json!({"n": n})).await;
    }
    let (_, claimed, _) = a
        .post(
            leader,
            "/v1/claim",
            json!({"worker": "w", "queues": ["q"], "max": 3, "lease_ms": 60000}),
        )
        .await;
    let leases: Vec<(u64, u64)> = claimed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["lease"]["token"].as_u64().unwrap(),
            )
        })
        .collect();
    let (done, token) = leases[0];
    a.post(
        leader,
        &format!("/v1/tasks/{done}/complete"),
        json!({"token": token, "result": "ok"}),
    )
    .await;
    let (failed, token) = leases[1];
    a.post(
        leader,
        &format!("/v1/tasks/{failed}/fail"),
        json!({"token": token, "error": "no", "retryable": false}),
    )
    .await;
    let before = all_tasks(&a).await;

    // Through a follower: it fetches the backup from the leader.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.backup");
    let follower = a.url(a.follower(leader)).to_owned();
    let (ok, out, err) = taskswarm(&[
        "--servers",
        &follower,
        "--json",
        "backup",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "backup failed: {err}");
    let header: Value = serde_json::from_str(out.trim()).unwrap();
    // Written after the backup: must not be in the restored cluster.
    a.enqueue("after", json!({"late": true})).await;

    let restored = std::sync::Mutex::new(Vec::new());
    let b = Cluster::start_seeded(3, &[], |data_dir, id, peers| {
        let (ok, out, err) = taskswarm(&[
            "--json",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--id",
            &id.to_string(),
            "--peers",
            peers,
        ]);
        assert!(ok, "restore of node {id} failed: {err}");
        restored
            .lock()
            .unwrap()
            .push(serde_json::from_str::<Value>(out.trim()).unwrap());
    })
    .await;
    let restored = restored.into_inner().unwrap();
    for r in &restored {
        assert_eq!(
            r["state_hash"], header["state_hash"],
            "restore checked the state it decoded"
        );
        assert_eq!(r["applied_index"], header["applied_index"]);
        assert_eq!(
            r["cluster_id"], restored[0]["cluster_id"],
            "one new cluster"
        );
    }

    let after: Vec<Value> = all_tasks(&b).await;
    assert_eq!(
        after.iter().map(essence).collect::<Vec<_>>(),
        before.iter().map(essence).collect::<Vec<_>>(),
        "the restored cluster serves exactly the tasks of the backup"
    );

    // It works, and its fencing tokens continue above every token of the source.
    let b_leader = b.wait_leader().await;
    let id = b.enqueue("new", json!({"new": true})).await;
    assert!(
        id > before
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .max()
            .unwrap()
    );
    let (_, claimed, _) = b
        .post(
            b_leader,
            "/v1/claim",
            json!({"worker": "w2", "queues": ["q"], "max": 1}),
        )
        .await;
    let new_token = claimed["tasks"][0]["lease"]["token"].as_u64().unwrap();
    assert!(
        leases.iter().all(|(_, t)| *t < new_token),
        "token {new_token} after {leases:?}"
    );
    let (s, _, _) = b
        .post(
            b_leader,
            &format!("/v1/tasks/{}/heartbeat", leases[2].0),
            json!({"token": leases[2].1}),
        )
        .await;
    assert_eq!(
        s, 200,
        "a lease held at backup time is still held after the restore"
    );

    // The two clusters refuse each other's Raft messages.
    let b_id = restored[0]["cluster_id"].as_str().unwrap();
    let refused = a
        .http
        .post(format!("{}/raft/append", a.url(leader)))
        .header("x-taskswarm-cluster-secret", "test-secret")
        .header("x-taskswarm-cluster-id", b_id)
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        409,
        "the source cluster refuses the restored one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_corrupted_backup_is_refused_and_writes_nothing() {
    let a = Cluster::start(1).await;
    a.enqueue("x", json!({"n": 1})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.backup");
    let (ok, _, err) = taskswarm(&[
        "--servers",
        a.url(1),
        "backup",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&file).unwrap();
    let peers = "1=http://127.0.0.1:1";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("corrupted", {
            let mut b = bytes.clone();
            let middle = b.len() / 2;
            b[middle] ^= 0xff;
            b
        }),
        ("not a backup", b"hello, this is not a backup file".to_vec()),
    ];
    for (what, content) in cases {
        let bad = dir
            .path()
            .join(format!("{}.backup", what.replace(' ', "-")));
        std::fs::write(&bad, content).unwrap();
        let data = dir.path().join(format!("data-{}", what.replace(' ', "-")));
        let (ok, out, err) = restore_node_1(&bad, &data, peers);
        assert!(!ok, "a {what} backup was restored: {out}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("truncated or corrupt") || err.contains("not a taskswarm backup"),
            "{what}: {err}"
        );
        assert!(!data.exists(), "a refused restore wrote {}", data.display());
    }
    // The good file restores, once: a second restore into the same directory is refused.
    let data = dir.path().join("data-good");
    assert!(restore_node_1(&file, &data, peers).0);
    let (ok, _, err) = restore_node_1(&file, &data, peers);
    assert!(!ok && err.contains("already holds a node's data"), "{err}");
}
