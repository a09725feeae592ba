//! The snapshot file format: what `current.snap` holds.
//!
//! ```text
//! magic      8 bytes   b"TSWSNAPF"
//! version    u32 LE    SNAPSHOT_FILE_VERSION
//! meta_len   u32 LE    length of the next field
//! meta       JSON      openraft SnapshotMeta (last log id, membership, snapshot id)
//! state      ...       StateMachine::snapshot() bytes (versioned by the state machine)
//! checksum   u64 LE    FNV-1a 64 of every byte before it
//! ```
//!
//! The metadata is JSON because it is small and openraft owns its shape: JSON survives
//! openraft adding a field better than a positional encoding would. The checksum catches
//! a torn or bit-rotted file, which must stop the node at open rather than become its
//! state.

use crate::types::SnapshotMeta;

pub const SNAPSHOT_FILE_MAGIC: &[u8; 8] = b"TSWSNAPF";
/// Version of the snapshot file layout. Bump it when the layout changes, keep decoding the
/// old one, and add its bytes to tests/fixtures.
pub const SNAPSHOT_FILE_VERSION: u32 = 1;
/// Largest metadata accepted. Real metadata is a few hundred bytes (a membership of a
/// handful of nodes); a larger length field means a corrupt file.
pub const SNAPSHOT_META_BYTES_MAX: usize = 1024 * 1024;

const VERSION_BYTES: usize = 4;
const META_LEN_BYTES: usize = 4;
const HEADER_BYTES: usize = SNAPSHOT_FILE_MAGIC.len() + VERSION_BYTES + META_LEN_BYTES;
const CHECKSUM_BYTES: usize = 8;

/// Why a snapshot file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot file I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot file is {len} bytes, shorter than its fixed fields")]
    TooShort { len: usize },
    #[error("not a snapshot file (bad magic bytes)")]
    BadMagic,
    #[error("unsupported snapshot file version {found} (this build reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("the checksum at byte {offset} does not match bytes 0..{offset} (stored {stored:#018x}, computed {computed:#018x}): torn or corrupt file")]
    Checksum {
        stored: u64,
        computed: u64,
        offset: usize,
    },
    #[error("snapshot metadata of {len} bytes does not fit the file or the limit of {max}")]
    BadMetaLength { len: usize, max: usize },
    #[error("snapshot metadata is not valid: {0}")]
    Meta(#[from] serde_json::Error),
}

/// The file's bytes for `meta` and the state machine's snapshot `state`.
pub fn encode(meta: &SnapshotMeta, state: &[u8]) -> Result<Vec<u8>, SnapshotFileError> {
    let mut out = Vec::with_capacity(HEADER_BYTES + state.len() + CHECKSUM_BYTES + 1024);
    write_to(&mut out, meta, state)?;
    Ok(out)
}

/// Writes the file's bytes to `out` without assembling them in memory first: a snapshot
/// of a large backlog is hundreds of megabytes, and a second copy of it doubled the
/// node's memory for the length of the write.
pub fn write_to(
    out: &mut impl std::io::Write,
    meta: &SnapshotMeta,
    state: &[u8],
) -> Result<(), SnapshotFileError> {
    let meta_json = serde_json::to_vec(meta)?;
    if meta_json.len() > SNAPSHOT_META_BYTES_MAX {
        return Err(SnapshotFileError::BadMetaLength {
            len: meta_json.len(),
            max: SNAPSHOT_META_BYTES_MAX,
        });
    }
    let meta_len = u32::try_from(meta_json.len()).expect("SNAPSHOT_META_BYTES_MAX fits u32");
    let mut head = Vec::with_capacity(HEADER_BYTES + meta_json.len());
    head.extend_from_slice(SNAPSHOT_FILE_MAGIC);
    head.extend_from_slice(&SNAPSHOT_FILE_VERSION.to_le_bytes());
    head.extend_from_slice(&meta_len.to_le_bytes());
    head.extend_from_slice(&meta_json);
    let checksum = fnv1a_from(fnv1a(&head), state);
    out.write_all(&head)?;
    out.write_all(state)?;
    out.write_all(&checksum.to_le_bytes())?;
    Ok(())
}

/// The metadata and the state bytes of a snapshot file, reusing the file's buffer for
/// the state (a snapshot can be large; no second copy).
pub fn decode(mut bytes: Vec<u8>) -> Result<(SnapshotMeta, Vec<u8>), SnapshotFileError> {
    let (meta, state_start, state_end) = parse(&bytes)?;
    bytes.truncate(state_end);
    bytes.drain(..state_start);
    Ok((meta, bytes))
}

/// Checks the file and returns its metadata and where the state bytes are.
fn parse(bytes: &[u8]) -> Result<(SnapshotMeta, usize, usize), SnapshotFileError> {
    if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
        return Err(SnapshotFileError::TooShort { len: bytes.len() });
    }
    let (magic, rest) = bytes.split_at(SNAPSHOT_FILE_MAGIC.len());
    if magic != SNAPSHOT_FILE_MAGIC {
        return Err(SnapshotFileError::BadMagic);
    }
    let (version, rest) = rest.split_at(VERSION_BYTES);
    let version = u32::from_le_bytes(version.try_into().expect("split at VERSION_BYTES"));
    if version != SNAPSHOT_FILE_VERSION {
        return Err(SnapshotFileError::UnsupportedVersion {
            found: version,
            supported: SNAPSHOT_FILE_VERSION,
        });
    }
    let body_end = bytes.len() - CHECKSUM_BYTES;
    let stored = u64::from_le_bytes(bytes[body_end..].try_into().expect("CHECKSUM_BYTES long"));
    let computed = fnv1a(&bytes[..body_end]);
    if stored != computed {
        return Err(SnapshotFileError::Checksum {
            stored,
            computed,
            offset: body_end,
        });
    }
    let meta_len = u32::from_le_bytes(
        rest[..META_LEN_BYTES]
            .try_into()
            .expect("META_LEN_BYTES long"),
    );
    let meta_len = usize::try_from(meta_len).unwrap_or(usize::MAX);
    let meta_end = HEADER_BYTES.saturating_add(meta_len);
    if meta_len > SNAPSHOT_META_BYTES_MAX || meta_end > body_end {
        return Err(SnapshotFileError::BadMetaLength {
            len: meta_len,
            max: SNAPSHOT_META_BYTES_MAX,
        });
    }
    let meta = serde_json::from_slice(&bytes[HEADER_BYTES..meta_end])?;
    Ok((meta, meta_end, body_end))
}

/// 64-bit FNV-1a: simple, dependency-free, and enough to catch torn writes and flipped
/// bits (this is an integrity check against accidents, not against an attacker).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    fnv1a_from(OFFSET_BASIS, bytes)
}

/// FNV-1a continued over `bytes` from the hash of what came before them.
fn fnv1a_from(hash: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(hash, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::types::{LogId, StoredMembership};

    fn meta() -> SnapshotMeta {
        let log_id = LogId::new(CommittedLeaderId::new(3, 1), 42);
        SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(
                Some(log_id),
                Membership::new(vec![BTreeSet::from([1, 2, 3])], None),
            ),
            snapshot_id: "s-1".into(),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&meta(), b"state bytes").unwrap();
        assert_eq!(&bytes[..8], SNAPSHOT_FILE_MAGIC);
        let (decoded, state) = decode(bytes).unwrap();
        assert_eq!(decoded, meta());
        assert_eq!(state, b"state bytes");
    }

    #[test]
    fn every_flipped_bit_and_truncation_is_detected() {
        let bytes = encode(&meta(), b"state bytes").unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= 1 << bit;
                assert!(decode(corrupt).is_err(), "flipped bit {bit} of byte {i}");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(bytes[..len].to_vec()).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn checksum_is_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
