//! `taskswarm backup --out FILE` and `taskswarm restore FILE --data-dir D --id N --peers P`.
//!
//! Backup asks any node for `GET /v1/backup` with `x-taskswarm-forward: 1`, so a follower
//! fetches it from the leader: one request, whichever node answers. The file is checked
//! (layout, checksum) before it is renamed into place, so a half-written or corrupt
//! backup never carries the final name.
//!
//! Restore is offline: it seeds an empty data directory for one node of a new cluster.
//! Run it once per node with the same file and the same `--peers`, then start the nodes.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use taskswarm_coordinator::http::forward::FORWARD_HEADER;
use taskswarm_coordinator::raft::cluster_id;
use taskswarm_coordinator::storage::{backup_file, seed_from_backup};

use super::client_args::ClientArgs;

/// How long one node may take to send a backup (a large state takes seconds).
pub const BACKUP_TIMEOUT_MS: u64 = 600_000;
/// Passes over the server list before giving up (elections take about a second).
pub const BACKUP_ROUNDS_MAX: u32 = 5;

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the backup (written to FILE.partial first, then renamed).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A file written by `taskswarm backup`.
    pub file: PathBuf,
    /// The new node's data directory (must not hold a node's data yet).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The new node's id; must be one of --peers.
    #[arg(long)]
    pub id: u64,
    /// Every voter of the new cluster, `ID=URL,...` as for `taskswarm node`.
    #[arg(long)]
    pub peers: String,
}

pub async fn backup(args: BackupArgs, c: &ClientArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(BACKUP_TIMEOUT_MS))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let servers: Vec<&str> = c
        .servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut last_error = String::from("no servers given");
    let mut bytes = None;
    'rounds: for round in 0..BACKUP_ROUNDS_MAX {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for server in &servers {
            let mut request = http
                .get(format!("{}/v1/backup", server.trim_end_matches('/')))
                .header(FORWARD_HEADER, "1");
            if let Some(token) = &c.api_token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    bytes = Some(
                        resp.bytes()
                            .await
                            .with_context(|| format!("reading the backup from {server}"))?,
                    );
                    break 'rounds;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    if status.as_u16() == 401 || status.as_u16() == 403 {
                        bail!("{server} refused the backup ({status}): {body}");
                    }
                    last_error = format!("{server} answered {status}: {body}");
                }
                Err(e) => last_error = format!("{server}: {e}"),
            }
        }
    }
    let Some(bytes) = bytes else {
        bail!("no node served a backup: {last_error}");
    };
    let (header, _) = backup_file::decode(&bytes).context("the backup received is not valid")?;
    let partial = args.out.with_extension("partial");
    {
        let mut file = std::fs::File::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.out.display()))?;
    if c.json {
        println!("{}", serde_json::to_string(&header)?);
    } else {
        println!(
            "backup of the state at log index {} ({} bytes, state hash {}) written to {}",
            header.applied_index,
            bytes.len(),
            header.state_hash,
            args.out.display()
        );
    }
    Ok(())
}

pub fn restore(args: RestoreArgs, json: bool) -> anyhow::Result<()> {
    let voters = super::node::parse_peers(&args.peers)?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let seeded = seed_from_backup(&bytes, &args.data_dir, args.id, &voters)
        .with_context(|| format!("restoring {}", args.file.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "applied_index": seeded.applied_index,
                "state_hash": seeded.state_hash,
                "tasks": seeded.tasks,
                "cluster_id": cluster_id::format(seeded.cluster_id),
            })
        );
    } else {
        println!(
            "node {} seeded in {} with the state at log index {} ({} tasks, state hash {}), new cluster {}; start it with the same --peers",
            args.id,
            args.data_dir.display(),
            seeded.applied_index,
            seeded.tasks,
            seeded.state_hash,
            cluster_id::format(seeded.cluster_id)
        );
    }
    Ok(())
}
