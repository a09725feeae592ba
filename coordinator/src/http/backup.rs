//! `GET /v1/backup`: a consistent copy of the cluster's state (`storage/backup_file.rs`),
//! for `taskswarm backup`. Served by the leader after a read barrier, so the copy holds
//! every write acknowledged before the request began. The state lock is held only to
//! take a copy-on-write view; encoding runs beside the applies.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use taskswarm_state_machine::SNAPSHOT_FORMAT_VERSION;

use super::error::ApiError;
use crate::raft::Node;
use crate::storage::backup_file::{self, BackupHeader};

#[utoipa::path(get, path = "/v1/backup", tag = "ops", responses((status = 200, description = "The backup file (see `taskswarm restore`): a header with the applied index and state hash, the state, a checksum", content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn backup(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    node.read_barrier().await?;
    let (view, applied_index) = {
        let sm = node.state();
        (sm.snapshot_view(), sm.last_applied())
    };
    let source_node_id = node.id();
    let file = tokio::task::spawn_blocking(move || {
        let state = view.encode();
        let header = BackupHeader {
            applied_index,
            state_hash: format!("{:016x}", backup_file::fnv1a(&state)),
            state_bytes: state.len() as u64,
            snapshot_format_version: SNAPSHOT_FORMAT_VERSION,
            source_node_id,
            taken_at_ms: crate::raft::clock::wall_ms(),
        };
        backup_file::encode(&header, &state)
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the backup could not be encoded: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"taskswarm-{applied_index}.backup\""),
            ),
        ],
        file,
    )
        .into_response())
}
