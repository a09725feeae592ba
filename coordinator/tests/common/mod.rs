//! A real cluster of `taskswarm node` processes on loopback, for tests that kill, restart
//! and partition nodes. Each test gets its own ports and data directories.
#![allow(dead_code)]

pub mod contract;
pub mod producer;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;

/// Fast timeouts: tests wait for elections, so keep them short (but stable on 2 cores).
const NODE_FLAGS: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--election-min-ms",
    "600",
    "--election-max-ms",
    "1200",
];
/// The `--election-max-ms` of `NODE_FLAGS`, for tests that wait out an election timeout.
pub const ELECTION_MAX_MS: u64 = 1_200;
/// Longest a test waits for a leader or a condition.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub dir: TempDir,
    pub urls: Vec<String>,
    /// Behind locks so that a test can stop and start nodes through a shared `&Cluster`
    /// while its load runs (never held across an await).
    procs: Mutex<Vec<Option<Child>>>,
    peers: String,
    extra: Vec<String>,
    /// Per node: the binary it starts from and flags of its own (rolling upgrades).
    bins: Mutex<Vec<PathBuf>>,
    node_flags: Mutex<Vec<Vec<String>>>,
    pub http: reqwest::Client,
}

/// Ports the harness hands out, below the kernel's ephemeral range: a port from that
/// range (what binding port 0 gives) can be taken by any outgoing connection between the
/// check and the node's own bind, and a node then fails with "Address already in use".
/// Below the range, only an explicit bind can take it.
const HARNESS_PORTS: std::ops::Range<u16> = 20_000..32_000;
/// Ports each test process starts apart from the others (by its pid), so that test
/// binaries running at once rarely try the same ones.
const HARNESS_PORTS_PER_PROCESS: u32 = 500;

fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Where the kernel's range starts lower, stop below it (unless nothing would be left).
    let ephemeral_first = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(HARNESS_PORTS.end);
    let end = HARNESS_PORTS.end.min(ephemeral_first);
    let ports = if end > HARNESS_PORTS.start + 1_000 {
        HARNESS_PORTS.start..end
    } else {
        HARNESS_PORTS
    };
    let span = u32::from(ports.end - ports.start);
    let base = std::process::id() % (span / HARNESS_PORTS_PER_PROCESS) * HARNESS_PORTS_PER_PROCESS;
    for _ in 0..span {
        let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = ports.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {ports:?}");
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, &[]).await
    }

    pub async fn start_with(n: usize, extra: &[&str]) -> Cluster {
        Self::start_seeded(n, extra, |_, _, _| {}).await
    }

    /// Like `start`, with flags of their own for some nodes from their first start.
    pub async fn start_with_node_flags(n: usize, node_flags: &[(usize, &[&str])]) -> Cluster {
        Self::start_prepared(n, &[], |_, _, _| {}, node_flags, |_, _| None).await
    }

    /// Like `start_with`, each node started by the program `bin(id, data_dir)` returns
    /// (given the node's arguments after the taskswarm binary), or by taskswarm itself.
    pub async fn start_with_launchers(
        n: usize,
        extra: &[&str],
        bin: impl Fn(usize, &Path) -> Option<PathBuf>,
    ) -> Cluster {
        Self::start_prepared(n, extra, |_, _, _| {}, &[], bin).await
    }

    /// Like `start_with`, but `seed(data_dir, id, peers)` prepares each node's data
    /// directory before the nodes start (e.g. `taskswarm restore`).
    pub async fn start_seeded(
        n: usize,
        extra: &[&str],
        seed: impl Fn(&std::path::Path, usize, &str),
    ) -> Cluster {
        Self::start_prepared(n, extra, seed, &[], |_, _| None).await
    }

    async fn start_prepared(
        n: usize,
        extra: &[&str],
        seed: impl Fn(&std::path::Path, usize, &str),
        node_flags: &[(usize, &[&str])],
        bin: impl Fn(usize, &Path) -> Option<PathBuf>,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let urls: Vec<String> = (0..n)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let peers = urls
            .iter()
            .enumerate()
            .map(|(i, u)| format!("{}={u}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        // A cluster started with --api-token gets the token on every harness request.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(i) = extra.iter().position(|f| *f == "--api-token") {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", extra[i + 1]).parse().unwrap(),
            );
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .default_headers(headers)
            .build()
            .unwrap();
        let mut c = Cluster {
            dir,
            urls,
            procs: Mutex::new(Vec::new()),
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            bins: Mutex::new(vec![PathBuf::from(env!("CARGO_BIN_EXE_taskswarm")); n]),
            node_flags: Mutex::new(vec![Vec::new(); n]),
            http,
        };
        for (id, flags) in node_flags {
            c.set_node_flags(*id, flags);
        }
        for id in 1..=n {
            if let Some(launcher) = bin(id, &c.dir.path().join(format!("node-{id}"))) {
                c.set_binary(id, &launcher);
            }
        }
        for id in 1..=n {
            seed(&c.dir.path().join(format!("node-{id}")), id, &c.peers);
        }
        for id in 1..=n {
            let child = c.spawn(id);
            c.procs.get_mut().unwrap().push(Some(child));
        }
        c.wait_leader().await;
        c
    }

    fn spawn(&self, id: usize) -> Child {
        let url = &self.urls[id - 1];
        let data = self.dir.path().join(format!("node-{id}"));
        let log = std::fs::File::create(self.dir.path().join(format!("node-{id}.log"))).unwrap();
        Command::new(&self.bins.lock().unwrap()[id - 1])
            .arg("node")
            .args([
                "--id",
                &id.to_string(),
                "--listen",
                url.trim_start_matches("http://"),
            ])
            .args([
                "--data-dir",
                &data.to_string_lossy(),
                "--peers",
                &self.peers,
                "--cluster-secret",
                "test-secret",
            ])
            .args(NODE_FLAGS)
            .args(&self.extra)
            .args(&self.node_flags.lock().unwrap()[id - 1])
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("taskswarm binary runs")
    }

    /// Starts one more node (id = current count + 1) that is not a member yet: it waits
    /// to be added as a learner.
    pub fn add_node(&mut self) -> usize {
        self.urls.push(format!("http://127.0.0.1:{}", free_port()));
        self.bins
            .get_mut()
            .unwrap()
            .push(PathBuf::from(env!("CARGO_BIN_EXE_taskswarm")));
        self.node_flags.get_mut().unwrap().push(Vec::new());
        let id = self.urls.len();
        let child = self.spawn(id);
        self.procs.get_mut().unwrap().push(Some(child));
        id
    }

    pub fn url(&self, id: usize) -> &str {
        &self.urls[id - 1]
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill(&self, id: usize) {
        let taken = self.procs.lock().unwrap()[id - 1].take();
        if let Some(mut child) = taken {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends SIGTERM (a clean stop, as Docker and systemd do) and waits for the exit;
    /// returns how long the node took to exit.
    pub fn stop(&self, id: usize) -> std::time::Duration {
        let taken = self.procs.lock().unwrap()[id - 1].take();
        let mut child = taken.expect("node is running");
        let started = std::time::Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap();
        started.elapsed()
    }

    /// The binary node `id` starts from at its next (re)start.
    pub fn set_binary(&self, id: usize, bin: &Path) {
        self.bins.lock().unwrap()[id - 1] = bin.to_owned();
    }

    /// Flags of node `id`'s own, from its next (re)start on.
    pub fn set_node_flags(&self, id: usize, flags: &[&str]) {
        self.node_flags.lock().unwrap()[id - 1] = flags.iter().map(|s| s.to_string()).collect();
    }

    /// Waits up to `within` for node `id` to exit by itself; its exit status if it did
    /// (it then counts as stopped).
    pub fn wait_exit(&self, id: usize, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            {
                let mut procs = self.procs.lock().unwrap();
                let child = procs[id - 1].as_mut().expect("node is running");
                if let Some(status) = child.try_wait().unwrap() {
                    procs[id - 1] = None;
                    return Some(status);
                }
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of running node `id`.
    pub fn pid(&self, id: usize) -> u32 {
        self.procs.lock().unwrap()[id - 1]
            .as_ref()
            .expect("node is running")
            .id()
    }

    /// Node `id`'s stderr so far.
    pub fn log(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }

    pub fn restart(&self, id: usize) {
        assert!(
            self.procs.lock().unwrap()[id - 1].is_none(),
            "node {id} is running"
        );
        let child = self.spawn(id);
        self.procs.lock().unwrap()[id - 1] = Some(child);
    }

    pub fn running(&self) -> Vec<usize> {
        (1..=self.urls.len())
            .filter(|id| self.procs.lock().unwrap()[id - 1].is_some())
            .collect()
    }

    /// A gauge or counter (an unlabelled line) from a node's `/metrics`.
    pub async fn metric(&self, id: usize, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url(id)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
    }

    pub async fn status(&self, id: usize) -> Option<Value> {
        let url = format!("{}/v1/cluster?state_hash=true", self.url(id));
        let resp = self.http.get(&url).send().await.ok()?;
        let status = resp.status().as_u16();
        let (json, body) = json_body(resp).await;
        contract::check("GET", &url, status, json, &body);
        json.then_some(body)
    }

    /// Waits until the running nodes agree on one leader; returns its id.
    pub async fn wait_leader(&self) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut leaders = Vec::new();
            for id in self.running() {
                leaders.push(self.status(id).await.and_then(|s| s["leader_id"].as_u64()));
            }
            if let Some(Some(first)) = leaders.first() {
                let first = *first as usize;
                if leaders.iter().all(|l| *l == Some(first as u64))
                    && self.running().contains(&first)
                {
                    // The leader must also answer writes: it has committed its term's entry.
                    if self
                        .status(first)
                        .await
                        .is_some_and(|s| s["leader_id"].as_u64() == Some(first as u64))
                    {
                        return first;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader within {WAIT:?}: {leaders:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn follower(&self, leader: usize) -> usize {
        self.running()
            .into_iter()
            .find(|id| *id != leader)
            .expect("a running follower")
    }

    pub async fn post(
        &self,
        id: usize,
        path: &str,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let url = format!("{}{path}", self.url(id));
        let resp = self.http.post(&url).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let (json, body) = json_body(resp).await;
        contract::check("POST", &url, status, json, &body);
        (status, body, headers)
    }

    pub async fn post_raw(&self, id: usize, path: &str, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.url(id));
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let (json, body) = json_body(resp).await;
        contract::check("POST", &url, status, json, &body);
        (status, body)
    }

    pub async fn get(&self, id: usize, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.url(id));
        let resp = self.http.get(&url).send().await.unwrap();
        let status = resp.status().as_u16();
        let (json, body) = json_body(resp).await;
        contract::check("GET", &url, status, json, &body);
        (status, body)
    }

    /// Enqueues on the leader, retrying through elections; returns the task id.
    pub async fn enqueue(&self, key: &str, payload: Value) -> u64 {
        let body = json!({"queue": "q", "kind": "k", "payload": payload, "idempotency_key": key});
        self.retry_post("/v1/tasks", body, |s| s == 200 || s == 201)
            .await["id"]
            .as_u64()
            .unwrap()
    }

    /// Posts to whichever node leads, retrying on redirects, 503s and dead nodes, until
    /// `ok(status)`. Only for idempotent requests.
    pub async fn retry_post(&self, path: &str, body: Value, ok: impl Fn(u16) -> bool) -> Value {
        self.retry_request("POST", path, Some(body), ok).await
    }

    /// `retry_post` for any method; `body` is sent as JSON when given.
    pub async fn retry_request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        ok: impl Fn(u16) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        loop {
            for id in self.running() {
                let url = format!("{}{path}", self.url(id));
                let mut request = self.http.request(method.clone(), &url);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                if let Ok(resp) = request.send().await {
                    let status = resp.status().as_u16();
                    let (json, value) = json_body(resp).await;
                    contract::check(method.as_str(), &url, status, json, &value);
                    if ok(status) {
                        return value;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never succeeded\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The nodes' stderr, for assertion messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in 1..=self.urls.len() {
            let text = std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out += &format!(
                "--- node {id} ---\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        out
    }
}

/// The body as JSON, and whether it was JSON (`Null` otherwise).
async fn json_body(resp: reqwest::Response) -> (bool, Value) {
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match resp.bytes().await {
        Ok(bytes) if is_json => match serde_json::from_slice(&bytes) {
            Ok(value) => (true, value),
            Err(_) => (false, Value::Null),
        },
        _ => (false, Value::Null),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.procs.get_mut().unwrap().iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
