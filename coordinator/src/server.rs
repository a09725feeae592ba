//! Runs one node: storage, Raft, and one HTTP listener serving both the public API and
//! the Raft RPC endpoints, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;

use crate::http::forward::Forwarder;
use crate::raft::{rpc_server, Node, NodeConfig, StartError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// After the shutdown signal, requests still running (event streams never end by
/// themselves; long-poll claims wait) get this long before their connections are closed.
pub const SHUTDOWN_GRACE_MS: u64 = 2_000;

/// Serves until `shutdown` resolves, then stops Raft. With `forward_to_leader`, a
/// follower forwards requests for the leader instead of answering 307.
pub async fn serve(
    cfg: NodeConfig,
    listen: SocketAddr,
    api_token: Option<String>,
    forward_to_leader: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|cause| ServeError::Listen {
            addr: listen,
            cause,
        })?;
    let secret = cfg.cluster_secret.clone();
    let append_stream = cfg.append_stream;
    let node = Node::start(cfg).await?;
    let forwarder =
        Forwarder::new(node.id()).map_err(|e| ServeError::Serve(std::io::Error::other(e)))?;
    let app = crate::http::router(node.clone(), api_token, forwarder, forward_to_leader)
        .merge(rpc_server::router(&node, &secret, append_stream));
    tracing::info!(%listen, forward_to_leader, "serving");
    let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<()>();
    let stopping = node.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        // Long-polls answer now and event streams end: the graceful stop waits only for
        // requests doing real work.
        stopping.begin_stopping();
        let _ = signalled_tx.send(());
    });
    let grace_over = async {
        if signalled.await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(SHUTDOWN_GRACE_MS)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result.map_err(ServeError::Serve),
        () = grace_over => {
            tracing::info!(grace_ms = SHUTDOWN_GRACE_MS, "requests still open after the grace period are dropped");
            Ok(())
        }
    };
    node.shutdown().await;
    result
}
