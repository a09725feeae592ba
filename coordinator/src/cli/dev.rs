//! `taskswarm dev`: a local cluster on loopback, one child process per node, for trying
//! things out. Ctrl-C stops every node.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::process::{Child, Command};

/// Most nodes `dev` starts.
pub const DEV_NODES_MAX: u16 = 9;
/// How long `dev` waits for a leader before giving up.
pub const DEV_READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Number of nodes (3 or 5 make sense).
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Port of node 1; node N listens on BASE_PORT + N - 1.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Data directories go under here (node-1, node-2, ...). Kept between runs.
    #[arg(long, default_value = ".taskswarm-dev")]
    pub dir: PathBuf,
    /// Extra flags passed to every `taskswarm node`.
    #[arg(last = true)]
    pub node_args: Vec<String>,
}

/// The allocator's settings for a node (mimalloc, see main.rs), read from the environment
/// when the process starts, before `main`, so a node cannot set them for itself: its
/// launchers do (here; in deploy/, the images and the systemd unit).
/// `MIMALLOC_PURGE_DELAY=0` gives freed pages back at once. With mimalloc's default (1 s,
/// and much later for pages freed by another thread), followers held about 280 MiB more
/// than the leader after loading a million tasks (deploy/README.md, "Memory and
/// threads"). A variable already set in `dev`'s environment is left to the nodes as it is.
fn allocator_env_defaults() -> impl Iterator<Item = (&'static str, &'static str)> {
    [("MIMALLOC_PURGE_DELAY", "0")]
        .into_iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
}

/// Runtime threads for each of `nodes` nodes on one machine with `cores` cores: an even
/// share, at least one. Measured with 3 nodes on 2 cores (bench/README.md): one thread
/// each instead of two cut context switches per task from 12 to 8.3 and server CPU per
/// task by about a tenth.
pub fn worker_threads_per_node(cores: usize, nodes: usize) -> usize {
    (cores / nodes.max(1)).max(1)
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=DEV_NODES_MAX).contains(&args.nodes),
        "--nodes must be 1..={DEV_NODES_MAX}"
    );
    let exe = std::env::current_exe().context("locating the taskswarm binary")?;
    let urls: Vec<String> = (0..args.nodes)
        .map(|i| format!("http://127.0.0.1:{}", args.base_port + i))
        .collect();
    let peers = urls
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{}={u}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    // The nodes share this machine's cores unless told otherwise (node --worker-threads).
    let threads_flag = (!args
        .node_args
        .iter()
        .any(|a| a.starts_with("--worker-threads")))
    .then(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        worker_threads_per_node(cores, usize::from(args.nodes)).to_string()
    });
    let mut children: Vec<Child> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let dir = args.dir.join(format!("node-{}", i + 1));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let child = Command::new(&exe)
            .arg("node")
            .args(["--id", &(i + 1).to_string()])
            .args(["--listen", url.trim_start_matches("http://")])
            .args(["--data-dir", &dir.to_string_lossy()])
            .args(["--peers", &peers])
            .args(["--cluster-secret", "taskswarm-dev"])
            .args(threads_flag.iter().flat_map(|n| ["--worker-threads", n]))
            .envs(allocator_env_defaults())
            .args(&args.node_args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a node")?;
        println!("node {} at {url} (data in {})", i + 1, dir.display());
        children.push(child);
    }
    let leader = tokio::select! {
        found = wait_for_leader(&urls) => found?,
        () = super::node::shutdown_signal() => return stop(children).await,
    };
    println!(
        "ready: {} nodes, leader is node {leader}; try: curl -s {}/v1/cluster",
        args.nodes, urls[0]
    );
    super::node::shutdown_signal().await;
    stop(children).await
}

async fn wait_for_leader(urls: &[String]) -> anyhow::Result<u64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let deadline = tokio::time::Instant::now() + DEV_READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        for url in urls {
            let status = http.get(format!("{url}/v1/cluster")).send().await;
            if let Ok(resp) = status {
                if let Ok(s) = resp.json::<taskswarm_api::ClusterStatus>().await {
                    if let Some(leader) = s.leader_id {
                        return Ok(leader);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("no leader within {DEV_READY_TIMEOUT:?}")
}

/// SIGTERM to every node, so each shuts down cleanly; then wait for them.
async fn stop(children: Vec<Child>) -> anyhow::Result<()> {
    println!("stopping {} nodes", children.len());
    for child in &children {
        if let Some(pid) = child.id() {
            // SAFETY-free: the `kill` command, not libc, so the crate keeps forbidding unsafe.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for mut child in children {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::worker_threads_per_node;

    #[test]
    fn co_located_nodes_split_the_cores_and_keep_at_least_one_thread() {
        assert_eq!(worker_threads_per_node(2, 3), 1);
        assert_eq!(worker_threads_per_node(8, 3), 2);
        assert_eq!(worker_threads_per_node(16, 5), 3);
        assert_eq!(worker_threads_per_node(1, 1), 1);
        assert_eq!(worker_threads_per_node(4, 0), 4);
    }
}
