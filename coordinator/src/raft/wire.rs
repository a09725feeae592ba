//! The encoding of Raft RPC bodies between nodes: one version byte, then bincode.
//!
//! bincode keeps entries compact (our log payload is already versioned bytes); the
//! version byte lets a future format be told apart instead of misread.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the Raft RPC body encoding.
pub const RPC_FORMAT_VERSION: u8 = 1;
/// Largest Raft RPC body accepted. Entries are bounded by the group-commit batch limits
/// and `max_payload_entries`, snapshots travel in chunks, so this is generous.
pub const RPC_BODY_BYTES_MAX: usize = 128 * 1024 * 1024;
/// The AppendEntries endpoint: the RPC sent most.
pub const APPEND_PATH: &str = "/raft/append";
/// Header carrying the shared cluster secret on every Raft RPC.
pub const CLUSTER_SECRET_HEADER: &str = "x-taskswarm-cluster-secret";

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("empty RPC body")]
    Empty,
    #[error("unsupported RPC format version {0} (this node speaks {RPC_FORMAT_VERSION})")]
    Version(u8),
    #[error("undecodable RPC body: {0}")]
    Decode(#[from] bincode::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, value);
    out
}

/// Appends the encoding to `out` (after a frame's head, `append_stream.rs`).
pub fn encode_into<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.push(RPC_FORMAT_VERSION);
    bincode::serialize_into(out, value).expect("serializing into a Vec cannot fail");
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != RPC_FORMAT_VERSION {
        return Err(WireError::Version(version));
    }
    Ok(bincode::deserialize(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let bytes = encode(&(7u64, "x".to_owned()));
        assert_eq!(
            decode::<(u64, String)>(&bytes).unwrap(),
            (7, "x".to_owned())
        );
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(matches!(
            decode::<(u64, String)>(&other),
            Err(WireError::Version(2))
        ));
        assert!(matches!(
            decode::<(u64, String)>(&[]),
            Err(WireError::Empty)
        ));
    }
}
