//! Flags shared by the commands that talk to a cluster.

use clap::Args;
use taskswarm_worker::Client;

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Comma-separated node URLs; any node works, more survive failures.
    #[arg(long, global = true, env = "TASKSWARM_SERVERS", default_value = taskswarm_worker::DEFAULT_SERVERS)]
    pub servers: String,
    /// API bearer token: `node` requires it from clients; client commands send it.
    #[arg(
        long,
        global = true,
        env = "TASKSWARM_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        self.client_with_config(taskswarm_worker::ClientConfig::default())
    }

    /// A client whose requests may last `request_timeout` (long server-side waits).
    pub fn client_with_timeout(
        &self,
        request_timeout: std::time::Duration,
    ) -> anyhow::Result<Client> {
        self.client_with_config(taskswarm_worker::ClientConfig {
            request_timeout,
            ..Default::default()
        })
    }

    fn client_with_config(&self, config: taskswarm_worker::ClientConfig) -> anyhow::Result<Client> {
        let config = taskswarm_worker::ClientConfig {
            api_token: self.api_token.clone(),
            ..config
        };
        Ok(Client::with_config(
            self.servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            config,
        )?)
    }
}
