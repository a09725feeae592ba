//! Runs one node: storage, Raft, and one HTTP listener serving both the public API and
//! the Raft RPC endpoints, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;

use crate::raft::{rpc_server, Node, NodeConfig, StartError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Serves until `shutdown` resolves, then stops Raft.
pub async fn serve(
    cfg: NodeConfig,
    listen: SocketAddr,
    api_token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let secret = cfg.cluster_secret.clone();
    let node = Node::start(cfg).await?;
    let app =
        crate::http::router(node.clone(), api_token).merge(rpc_server::router(&node, &secret));
    tracing::info!(%listen, "serving");
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve);
    node.shutdown().await;
    result
}
