//! The command line against a real cluster: commands work, and bad input exits non-zero
//! with one clear line.

mod common;

use std::process::{Command, Output};

use common::Cluster;

fn taskswarm(c: &Cluster, args: &[&str]) -> Output {
    let servers = c.urls.join(",");
    Command::new(env!("CARGO_BIN_EXE_taskswarm"))
        .args(["--servers", &servers])
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_print_what_they_did() {
    let c = Cluster::start(3).await;
    let out = taskswarm(
        &c,
        &[
            "enqueue",
            "--queue",
            "mail",
            "--kind",
            "send",
            "--payload",
            r#"{"to":"a@b"}"#,
            "--priority",
            "-3",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "task 1 created (queued)");
    let out = taskswarm(&c, &["--json", "get", "1"]);
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            task["queue"].as_str(),
            task["priority"].as_i64(),
            task["payload"]["to"].as_str()
        ),
        (Some("mail"), Some(-3), Some("a@b"))
    );
    let out = taskswarm(&c, &["queues"]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("mail") && l.split_whitespace().nth(2) == Some("1")),
        "{}",
        stdout(&out)
    );
    let file = c.dir.path().join("tasks.jsonl");
    std::fs::write(
        &file,
        "{\"kind\":\"a\"}\n\n{\"kind\":\"b\",\"queue\":\"mail\"}\n",
    )
    .unwrap();
    let out = taskswarm(&c, &["batch", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "2 tasks: 2 created, 0 already existed, 0 refused"
    );
    let out = taskswarm(&c, &["cancel", "1"]);
    assert_eq!(stdout(&out).trim(), "task 1: cancelled");
    let out = taskswarm(&c, &["events", "1"]);
    let text = stdout(&out);
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["enqueued", "cancelled"], "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_non_zero_with_one_clear_line() {
    let c = Cluster::start(3).await;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["enqueue", "--kind", "k", "--payload", "{nope"],
            "the payload is not valid JSON",
        ),
        (vec!["enqueue", "--kind", "bad kind"], "invalid_request"),
        (
            vec!["enqueue", "--kind", "k", "--priority", "99999"],
            "invalid_request",
        ),
        (vec!["get", "424242"], "not_found"),
        (vec!["requeue", "424242"], "not_found"),
        (
            vec!["batch", "/nonexistent/file.jsonl"],
            "opening /nonexistent/file.jsonl",
        ),
        (vec!["cluster", "membership"], "name at least one voter"),
    ];
    for (args, expected) in cases {
        let out = taskswarm(&c, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, got {err:?}");
        assert!(
            lines[0].starts_with("taskswarm: ") && lines[0].contains(expected),
            "{args:?}: {err}"
        );
    }
    // Flags clap itself refuses also exit non-zero.
    let out = taskswarm(&c, &["enqueue"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--kind"));
    // Nothing was enqueued by any of it.
    let out = taskswarm(&c, &["--json", "queues"]);
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["queues"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_token_requests_without_it_are_refused() {
    let c = Cluster::start_with(3, &["--api-token", "s3cret"]).await;
    let plain = reqwest::Client::new();
    let resp = plain
        .get(format!("{}/v1/queues", c.url(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = plain
        .get(format!("{}/v1/queues", c.url(1)))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = plain
        .get(format!("{}/healthz", c.url(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "probes stay open");
    let (status, _) = c.get(1, "/v1/queues").await;
    assert_eq!(status, 200, "the token opens the API");
    let out = taskswarm(&c, &["--api-token", "s3cret", "enqueue", "--kind", "k"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = taskswarm(&c, &["enqueue", "--kind", "k"]);
    assert!(
        !out.status.success() && stderr(&out).contains("unauthorized"),
        "{}",
        stderr(&out)
    );
}

/// `taskswarm worker --exec`: success, failure and a timeout that kills the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exec_worker_runs_a_command_per_task() {
    let c = Cluster::start(3).await;
    let script = r#"case "$TASKSWARM_TASK_KIND" in
  ok) cat ;;
  env) echo "{\"id\": $TASKSWARM_TASK_ID, \"attempt\": $TASKSWARM_TASK_ATTEMPT, \"token\": $TASKSWARM_TASK_TOKEN}" ;;
  bad) echo "boom" >&2; exit 3 ;;
  slow) sleep 30 ;;
esac"#;
    let servers = c.urls.join(",");
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_taskswarm"))
        .args([
            "--servers",
            &servers,
            "worker",
            "--queue",
            "exec",
            "--exec",
            script,
            "--slots",
            "1",
            "--lease-ms",
            "2000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let enqueue = |kind: &str, extra: serde_json::Value| {
        let mut body = serde_json::json!({"queue": "exec", "kind": kind, "payload": {"x": [1, 2]}, "max_attempts": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let ok = c
        .retry_post("/v1/tasks", enqueue("ok", serde_json::json!({})), |s| {
            s == 201
        })
        .await["id"]
        .as_u64()
        .unwrap();
    let env = c
        .retry_post("/v1/tasks", enqueue("env", serde_json::json!({})), |s| {
            s == 201
        })
        .await["id"]
        .as_u64()
        .unwrap();
    let bad = c
        .retry_post("/v1/tasks", enqueue("bad", serde_json::json!({})), |s| {
            s == 201
        })
        .await["id"]
        .as_u64()
        .unwrap();
    let slow = c
        .retry_post(
            "/v1/tasks",
            enqueue("slow", serde_json::json!({"start_to_close_ms": 1500})),
            |s| s == 201,
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let after = c
        .retry_post("/v1/tasks", enqueue("ok", serde_json::json!({})), |s| {
            s == 201
        })
        .await["id"]
        .as_u64()
        .unwrap();
    let leader = c.wait_leader().await;
    let (_, t) = c
        .get(leader, &format!("/v1/tasks/{ok}?wait_ms=20000"))
        .await;
    assert_eq!(
        (t["state"].as_str(), &t["result"]),
        (Some("succeeded"), &serde_json::json!({"x": [1, 2]})),
        "{t}"
    );
    let (_, t) = c
        .get(leader, &format!("/v1/tasks/{env}?wait_ms=20000"))
        .await;
    assert_eq!(t["result"]["id"].as_u64(), Some(env), "{t}");
    assert_eq!(t["result"]["attempt"].as_u64(), Some(1));
    assert!(t["result"]["token"].as_u64().unwrap() > 0);
    let (_, t) = c
        .get(leader, &format!("/v1/tasks/{bad}?wait_ms=20000"))
        .await;
    assert_eq!(t["state"], "failed", "{t}");
    assert_eq!(t["error"]["code"], "command_failed");
    assert!(
        t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exit status 3: boom"),
        "{t}"
    );
    let (_, t) = c
        .get(leader, &format!("/v1/tasks/{slow}?wait_ms=20000"))
        .await;
    assert_eq!(
        (t["state"].as_str(), t["error"]["code"].as_str()),
        (Some("failed"), Some("run_timeout")),
        "{t}"
    );
    // With one slot, the next task runs only if the slow command was killed.
    let (_, t) = c
        .get(leader, &format!("/v1/tasks/{after}?wait_ms=20000"))
        .await;
    assert_eq!(t["state"], "succeeded", "{t}");
    worker.kill().unwrap();
    worker.wait().unwrap();
}
