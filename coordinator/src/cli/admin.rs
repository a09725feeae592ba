//! Queue and cluster commands: queues, pause, resume, broadcast, cluster status and
//! membership.

use clap::Subcommand;
use taskswarm_worker::api;

use super::client_args::ClientArgs;
use super::output;

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCmd {
    /// Task counts by state for every queue.
    Queues,
    /// Stop handing out a queue's tasks (enqueue still works).
    Pause { queue: String },
    /// Hand out a paused queue's tasks again.
    Resume { queue: String },
    /// Send a JSON message to every broadcast subscriber.
    Broadcast {
        /// The message (JSON). Omit with --follow.
        message: Option<String>,
        #[arg(long, default_value = "all")]
        channel: String,
    },
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(ClusterCmd),
}

#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCmd {
    /// Leader, term, indexes and members as one node sees them.
    Status,
    /// Add a non-voting member that starts catching up.
    AddLearner { id: u64, addr: String },
    /// Set the voting members, e.g. `membership 1 2 3 4 5`.
    Membership { voters: Vec<u64> },
    /// Add a node: as a learner, wait until it has caught up, then make it a voter.
    AddNode {
        #[arg(long)]
        id: u64,
        /// The URL the other nodes reach it at (its `--advertise`).
        #[arg(long)]
        addr: String,
        /// Longest wait for it to catch up; it stays a learner when that passes.
        #[arg(long, default_value_t = 60_000)]
        catch_up_ms: u64,
    },
    /// Remove a node (a voter leaves through joint consensus; a removed leader steps
    /// down). Refuses to leave fewer than 3 voters without --force.
    RemoveNode {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        force: bool,
    },
}

/// Time an add-node request may take beyond its catch-up wait (the promotion).
const ADD_NODE_SLACK_MS: u64 = 10_000;

fn print_status(s: &api::ClusterStatus, json: bool) {
    if json {
        return output::json(s);
    }
    let leader = s.leader_id.map_or("none".to_owned(), |l| l.to_string());
    println!(
        "node {}  leader {leader}  term {}  last log {}  applied {}  snapshot {}",
        s.node_id, s.term, s.last_log_index, s.applied_index, s.snapshot_index
    );
    let rows: Vec<Vec<String>> = s
        .members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.addr.clone(),
                if m.voter { "voter" } else { "learner" }.into(),
                if Some(m.id) == s.leader_id {
                    "leader".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    output::table(&["id", "addr", "role", ""], &rows);
}

pub async fn run(cmd: AdminCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let client = c.client()?;
    match cmd {
        AdminCmd::Queues => {
            let q = client.queues().await?;
            if c.json {
                output::json(&q);
                return Ok(());
            }
            let states = api::TaskState::ALL;
            let rows: Vec<Vec<String>> = q
                .queues
                .iter()
                .map(|v| {
                    let mut row = vec![v.name.clone(), if v.paused { "paused" } else { "" }.into()];
                    row.extend(
                        states
                            .iter()
                            .map(|s| v.counts.get(s).copied().unwrap_or(0).to_string()),
                    );
                    row
                })
                .collect();
            let mut header = vec!["queue", ""];
            header.extend(states.iter().map(|s| s.as_str()));
            output::table(&header, &rows);
        }
        AdminCmd::Pause { queue } => {
            let v = client.pause(&queue).await?;
            if c.json {
                output::json(&v)
            } else {
                println!("queue {} paused", v.name)
            }
        }
        AdminCmd::Resume { queue } => {
            let v = client.resume(&queue).await?;
            if c.json {
                output::json(&v)
            } else {
                println!("queue {} resumed", v.name)
            }
        }
        AdminCmd::Broadcast {
            message: Some(text),
            channel,
        } => {
            let message: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("the message is not valid JSON: {e}"))?;
            let seq = client.broadcast(&channel, message).await?;
            if c.json {
                output::json(&serde_json::json!({"seq": seq}))
            } else {
                println!("broadcast {seq} sent on {channel}")
            }
        }
        AdminCmd::Broadcast { message: None, .. } => {
            anyhow::bail!("give a JSON message to send (following broadcasts: `curl -N -H 'accept: text/event-stream' SERVER/v1/broadcast`)");
        }
        AdminCmd::Cluster(ClusterCmd::Status) => print_status(&client.cluster().await?, c.json),
        AdminCmd::Cluster(ClusterCmd::AddLearner { id, addr }) => {
            print_status(&client.add_learner(id, &addr).await?, c.json)
        }
        AdminCmd::Cluster(ClusterCmd::AddNode {
            id,
            addr,
            catch_up_ms,
        }) => {
            // The request lasts as long as the catch-up may.
            let client = c.client_with_timeout(std::time::Duration::from_millis(
                catch_up_ms.saturating_add(ADD_NODE_SLACK_MS),
            ))?;
            print_status(
                &client.add_node(id, &addr, Some(catch_up_ms)).await?,
                c.json,
            )
        }
        AdminCmd::Cluster(ClusterCmd::RemoveNode { id, force }) => {
            print_status(&client.remove_node(id, force).await?, c.json)
        }
        AdminCmd::Cluster(ClusterCmd::Membership { voters }) => {
            if voters.is_empty() {
                anyhow::bail!("name at least one voter");
            }
            print_status(&client.change_membership(voters).await?, c.json)
        }
    }
    Ok(())
}
