//! The versioned encodings of everything the log store keeps in RocksDB.
//!
//! Every stored value is one format-version byte followed by bincode (fixed-width
//! little-endian integers, no trailing bytes). The version byte lets a later build read
//! what this one wrote: bump the constant when a format changes, keep decoding the old
//! version, and add its bytes to tests/fixtures (tests/storage.rs checks them).
//!
//! A log record is bincode of `openraft::Entry<TypeConfig>`. Its application payload,
//! `taskswarm_state_machine::Entry`, serializes through serde as the state machine's own
//! versioned bytes, so the command format keeps its own compatibility promise inside ours.
//!
//! Decoding never panics: an unknown version, a short record or trailing garbage is a
//! [`CodecError`].

use bincode::Options as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{LogId, RaftEntry, Vote};

/// Version of a log record in the `logs` column family.
pub const LOG_RECORD_VERSION: u8 = 1;
/// Version of the saved vote.
pub const VOTE_RECORD_VERSION: u8 = 1;
/// Version of a saved log id (the committed and the last purged log id).
pub const LOG_ID_RECORD_VERSION: u8 = 1;

/// Why stored bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty {what} record")]
    Empty { what: &'static str },
    #[error("unsupported {what} record version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        what: &'static str,
        found: u8,
        supported: u8,
    },
    #[error("corrupt {what} record: {source}")]
    Corrupt {
        what: &'static str,
        source: bincode::Error,
    },
    #[error("cannot encode {what} record: {source}")]
    Encode {
        what: &'static str,
        source: bincode::Error,
    },
    #[error("log key of {len} bytes (expected {LOG_KEY_BYTES})")]
    BadLogKey { len: usize },
}

/// Bytes of a key in the `logs` column family.
pub const LOG_KEY_BYTES: usize = 8;

/// The key of log entry `index`: big-endian, so RocksDB's bytewise order is index order
/// and range scans and `delete_range` work on indexes directly.
pub fn log_key(index: u64) -> [u8; LOG_KEY_BYTES] {
    index.to_be_bytes()
}

/// The index a `logs` key stands for.
pub fn log_index(key: &[u8]) -> Result<u64, CodecError> {
    let bytes: [u8; LOG_KEY_BYTES] = key
        .try_into()
        .map_err(|_| CodecError::BadLogKey { len: key.len() })?;
    Ok(u64::from_be_bytes(bytes))
}

pub fn encode_log_record(entry: &RaftEntry) -> Result<Vec<u8>, CodecError> {
    encode(LOG_RECORD_VERSION, "log", entry)
}

pub fn decode_log_record(bytes: &[u8]) -> Result<RaftEntry, CodecError> {
    decode(LOG_RECORD_VERSION, "log", bytes)
}

pub fn encode_vote(vote: &Vote) -> Result<Vec<u8>, CodecError> {
    encode(VOTE_RECORD_VERSION, "vote", vote)
}

pub fn decode_vote(bytes: &[u8]) -> Result<Vote, CodecError> {
    decode(VOTE_RECORD_VERSION, "vote", bytes)
}

/// The committed log id is optional (openraft may save `None`); the purged one is not,
/// but both use this record so there is one log-id format.
pub fn encode_log_id(log_id: &Option<LogId>) -> Result<Vec<u8>, CodecError> {
    encode(LOG_ID_RECORD_VERSION, "log id", log_id)
}

pub fn decode_log_id(bytes: &[u8]) -> Result<Option<LogId>, CodecError> {
    decode(LOG_ID_RECORD_VERSION, "log id", bytes)
}

/// One bincode configuration for every record, spelled out so that a bincode default
/// changing can never change our bytes.
fn bincode_options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

fn encode<T: Serialize>(version: u8, what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    let size = bincode_options()
        .serialized_size(value)
        .map_err(|source| CodecError::Encode { what, source })?;
    let mut out = Vec::with_capacity(1 + usize::try_from(size).unwrap_or(0));
    out.push(version);
    bincode_options()
        .serialize_into(&mut out, value)
        .map_err(|source| CodecError::Encode { what, source })?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(
    version: u8,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let (&found, body) = bytes.split_first().ok_or(CodecError::Empty { what })?;
    if found != version {
        return Err(CodecError::UnsupportedVersion {
            what,
            found,
            supported: version,
        });
    }
    // Deserializing from a slice: a corrupt length prefix fails at the end of the input
    // instead of allocating what it claims.
    bincode_options()
        .deserialize(body)
        .map_err(|source| CodecError::Corrupt { what, source })
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};
    use taskswarm_state_machine::{Command, Entry, NewTask};

    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn normal_entry() -> RaftEntry {
        let tasks = vec![NewTask {
            queue: "q".into(),
            kind: "k".into(),
            payload: "{}".into(),
            ..Default::default()
        }];
        RaftEntry {
            log_id: log_id(2, 7),
            payload: EntryPayload::Normal(std::sync::Arc::new(Entry {
                wall_ms: 5,
                cluster_ms: 6,
                commands: vec![Command::Enqueue { tasks }],
            })),
        }
    }

    #[test]
    fn records_round_trip() {
        let entry = normal_entry();
        assert_eq!(
            decode_log_record(&encode_log_record(&entry).unwrap()).unwrap(),
            entry
        );
        let vote = Vote::new(3, 9);
        assert_eq!(decode_vote(&encode_vote(&vote).unwrap()).unwrap(), vote);
        for id in [None, Some(log_id(4, 11))] {
            assert_eq!(decode_log_id(&encode_log_id(&id).unwrap()).unwrap(), id);
        }
    }

    #[test]
    fn records_start_with_their_version() {
        assert_eq!(
            encode_log_record(&normal_entry()).unwrap()[0],
            LOG_RECORD_VERSION
        );
        assert_eq!(
            encode_vote(&Vote::new(1, 1)).unwrap()[0],
            VOTE_RECORD_VERSION
        );
        assert_eq!(encode_log_id(&None).unwrap()[0], LOG_ID_RECORD_VERSION);
    }

    #[test]
    fn unknown_version_is_an_error() {
        let mut bytes = encode_vote(&Vote::new(1, 1)).unwrap();
        bytes[0] = 2;
        assert!(matches!(
            decode_vote(&bytes),
            Err(CodecError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(decode_vote(&[]), Err(CodecError::Empty { .. })));
    }

    #[test]
    fn every_truncation_and_trailing_garbage_is_an_error() {
        let bytes = encode_log_record(&normal_entry()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_log_record(&bytes[..len]).is_err(),
                "truncated to {len} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_log_record(&longer).is_err(), "trailing byte");
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = encode_log_record(&normal_entry()).unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= 1 << bit;
                let _ = decode_log_record(&corrupt);
            }
        }
    }

    #[test]
    fn log_keys_sort_by_index() {
        assert!(log_key(255) < log_key(256));
        assert_eq!(log_index(&log_key(u64::MAX - 1)).unwrap(), u64::MAX - 1);
        assert!(log_index(&[1, 2, 3]).is_err());
    }
}
