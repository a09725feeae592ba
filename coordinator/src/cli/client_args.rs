//! Flags shared by the commands that talk to a cluster.

use clap::Args;
use taskswarm_worker::Client;

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Comma-separated node URLs; any node works, more survive failures.
    #[arg(long, global = true, env = "TASKSWARM_SERVERS", default_value = "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003")]
    pub servers: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(self.servers.split(',').map(str::trim).filter(|s| !s.is_empty()))?)
    }
}
