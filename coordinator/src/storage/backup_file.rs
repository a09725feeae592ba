//! The backup file format: a consistent copy of a cluster's state, taken from the
//! leader at a linearizable point (`GET /v1/backup`), restored into a new cluster by
//! `taskswarm restore`.
//!
//! ```text
//! magic        8 bytes   b"TSWBACKP"
//! version      u32 LE    BACKUP_FILE_VERSION
//! header_len   u32 LE    length of the next field
//! header       JSON      BackupHeader
//! state        ...       StateMachine::snapshot() bytes (versioned by the state machine)
//! checksum     u64 LE    FNV-1a 64 of every byte before it
//! ```
//!
//! The header says where the copy was taken (applied index, state hash, source node) so
//! that a restore can check the state it decodes is the one that was saved, and an
//! operator can tell backups apart.

use serde::{Deserialize, Serialize};

/// The snapshot file's checksum, which is also how the state hash is computed.
pub use super::snapshot_file::fnv1a;

pub const BACKUP_FILE_MAGIC: &[u8; 8] = b"TSWBACKP";
/// Version of the layout. Bump it when the layout changes and keep reading the old one.
pub const BACKUP_FILE_VERSION: u32 = 1;
/// Largest header accepted; a real one is a few hundred bytes.
pub const BACKUP_HEADER_BYTES_MAX: usize = 64 * 1024;

const FIXED_BYTES: usize = 8 + 4 + 4;
const CHECKSUM_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The log index the state has applied: every write acknowledged before the backup
    /// began is at or below it.
    pub applied_index: u64,
    /// FNV-1a 64 of the state bytes, as `/v1/cluster?state_hash=true` reports it.
    pub state_hash: String,
    pub state_bytes: u64,
    /// The state machine's snapshot format the state bytes use.
    pub snapshot_format_version: u32,
    pub source_node_id: u64,
    /// The source node's wall clock when it took the copy (ms since the Unix epoch).
    pub taken_at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupFileError {
    #[error("the backup is {len} bytes, shorter than its fixed fields: truncated or not a backup")]
    TooShort { len: usize },
    #[error("not a taskswarm backup (bad magic bytes)")]
    BadMagic,
    #[error(
        "backup format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("backup checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the file is truncated or corrupt")]
    Checksum { stored: u64, computed: u64 },
    #[error("backup header of {len} bytes does not fit the file or the limit of {max}")]
    BadHeaderLength { len: usize, max: usize },
    #[error("backup header is not valid: {0}")]
    Header(#[from] serde_json::Error),
    #[error("backup header says {expected} state bytes, the file holds {found}")]
    StateLength { expected: u64, found: u64 },
}

pub fn encode(header: &BackupHeader, state: &[u8]) -> Vec<u8> {
    assert_eq!(
        header.state_bytes,
        state.len() as u64,
        "header describes the state"
    );
    let header_json = serde_json::to_vec(header).expect("the header serializes");
    let mut out =
        Vec::with_capacity(FIXED_BYTES + header_json.len() + state.len() + CHECKSUM_BYTES);
    out.extend_from_slice(BACKUP_FILE_MAGIC);
    out.extend_from_slice(&BACKUP_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(header_json.len())
            .expect("small header")
            .to_le_bytes(),
    );
    out.extend_from_slice(&header_json);
    out.extend_from_slice(state);
    let checksum = fnv1a(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// The header and the state bytes, after checking the layout and the checksum.
pub fn decode(bytes: &[u8]) -> Result<(BackupHeader, &[u8]), BackupFileError> {
    if bytes.len() < FIXED_BYTES + CHECKSUM_BYTES {
        return Err(BackupFileError::TooShort { len: bytes.len() });
    }
    if &bytes[..8] != BACKUP_FILE_MAGIC {
        return Err(BackupFileError::BadMagic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != BACKUP_FILE_VERSION {
        return Err(BackupFileError::UnsupportedVersion {
            found: version,
            supported: BACKUP_FILE_VERSION,
        });
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let stored = u64::from_le_bytes(checksum.try_into().expect("8 bytes"));
    let computed = fnv1a(body);
    if stored != computed {
        return Err(BackupFileError::Checksum { stored, computed });
    }
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    if header_len > BACKUP_HEADER_BYTES_MAX || FIXED_BYTES + header_len > body.len() {
        return Err(BackupFileError::BadHeaderLength {
            len: header_len,
            max: BACKUP_HEADER_BYTES_MAX,
        });
    }
    let header: BackupHeader =
        serde_json::from_slice(&body[FIXED_BYTES..FIXED_BYTES + header_len])?;
    let state = &body[FIXED_BYTES + header_len..];
    if state.len() as u64 != header.state_bytes {
        return Err(BackupFileError::StateLength {
            expected: header.state_bytes,
            found: state.len() as u64,
        });
    }
    Ok((header, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BackupHeader, Vec<u8>) {
        let state = b"some state bytes".to_vec();
        let header = BackupHeader {
            applied_index: 42,
            state_hash: format!("{:016x}", fnv1a(&state)),
            state_bytes: state.len() as u64,
            snapshot_format_version: 3,
            source_node_id: 1,
            taken_at_ms: 1_700_000_000_000,
        };
        (header, state)
    }

    #[test]
    fn a_backup_round_trips() {
        let (header, state) = sample();
        let bytes = encode(&header, &state);
        let (h, s) = decode(&bytes).unwrap();
        assert_eq!((h, s), (header, state.as_slice()));
    }

    #[test]
    fn every_truncation_is_refused() {
        let (header, state) = sample();
        let bytes = encode(&header, &state);
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "a backup cut to {len} bytes was accepted"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (header, state) = sample();
        let bytes = encode(&header, &state);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "a flip at byte {i} was accepted");
        }
    }

    #[test]
    fn the_errors_say_what_is_wrong() {
        let (header, state) = sample();
        let mut bytes = encode(&header, &state);
        let len = bytes.len();
        bytes[len - 1] ^= 1;
        assert!(decode(&bytes)
            .unwrap_err()
            .to_string()
            .contains("truncated or corrupt"));
        assert!(decode(b"not a backup at all, not at all")
            .unwrap_err()
            .to_string()
            .contains("not a taskswarm backup"));
    }
}
