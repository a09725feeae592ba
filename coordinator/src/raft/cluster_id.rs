//! Which cluster a node belongs to, so that nodes of two clusters never exchange Raft
//! messages — above all a cluster restored from a backup and the cluster it was taken
//! from, which share node ids, addresses and possibly the secret.
//!
//! The node that forms a cluster draws a random id and records it in its log store; a
//! restore records one derived from the backup and the new voters (`storage/seed.rs`).
//! Every Raft RPC carries the sender's id; a node without one (new, or added as a
//! learner) adopts the first id it is sent, durably. A node with an id refuses RPCs with
//! another id or with none. Clusters formed before ids existed have none anywhere and
//! accept each other as before.

use std::sync::Mutex;

use reqwest::header::HeaderValue;

use crate::storage::LogStore;

/// Header carrying the sender's cluster id (32 hex digits) on every Raft RPC.
pub const CLUSTER_ID_HEADER: &str = "x-taskswarm-cluster-id";

/// What to do with an RPC, given this node's id and the sender's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdCheck {
    Accept,
    /// This node has no id yet: take the sender's, then accept.
    Adopt(u128),
    Refuse {
        own: u128,
        given: Option<u128>,
    },
}

pub fn check(own: Option<u128>, given: Option<u128>) -> IdCheck {
    match (own, given) {
        (None, None) => IdCheck::Accept,
        (None, Some(given)) => IdCheck::Adopt(given),
        (Some(own), Some(given)) if own == given => IdCheck::Accept,
        (Some(own), given) => IdCheck::Refuse { own, given },
    }
}

pub fn parse(text: &str) -> Option<u128> {
    u128::from_str_radix(text, 16).ok()
}

pub fn format(id: u128) -> String {
    format!("{id:032x}")
}

/// This node's id, kept in its log store, with its header value made once (every Raft
/// RPC sends it).
#[derive(Debug)]
pub struct ClusterIdentity {
    id: Mutex<Option<(u128, HeaderValue)>>,
    log: LogStore,
}

fn with_header(id: u128) -> (u128, HeaderValue) {
    let value = HeaderValue::from_str(&format(id)).expect("hex digits are a valid header value");
    (id, value)
}

impl ClusterIdentity {
    /// Blocking: reads the log store.
    pub fn load(log: LogStore) -> Result<Self, String> {
        let id = log.cluster_id()?;
        Ok(Self {
            id: Mutex::new(id.map(with_header)),
            log,
        })
    }

    pub fn get(&self) -> Option<u128> {
        self.id
            .lock()
            .expect("cluster id lock")
            .as_ref()
            .map(|(id, _)| *id)
    }

    /// The value of [`CLUSTER_ID_HEADER`] to send, once this node has an id.
    pub fn header(&self) -> Option<HeaderValue> {
        self.id
            .lock()
            .expect("cluster id lock")
            .as_ref()
            .map(|(_, value)| value.clone())
    }

    /// For the node forming a new cluster: a fresh random id, recorded before the
    /// cluster exists. Keeps an id already there.
    pub fn create(&self) -> Result<u128, String> {
        let mut id = self.id.lock().expect("cluster id lock");
        if let Some((existing, _)) = *id {
            return Ok(existing);
        }
        let fresh = fastrand::u128(1..);
        self.log.save_cluster_id(fresh)?;
        *id = Some(with_header(fresh));
        Ok(fresh)
    }

    /// Decides on an RPC carrying `given`, adopting it (durably) when this node has none.
    /// `Err` is the refusal's reason.
    pub fn admit(&self, given: Option<u128>) -> Result<(), String> {
        let mut id = self.id.lock().expect("cluster id lock");
        match check(id.as_ref().map(|(own, _)| *own), given) {
            IdCheck::Accept => Ok(()),
            IdCheck::Adopt(given) => {
                self.log.save_cluster_id(given)?;
                *id = Some(with_header(given));
                tracing::info!(cluster_id = %format(given), "joined cluster");
                Ok(())
            }
            IdCheck::Refuse { own, given } => Err(format!(
                "this node belongs to cluster {}, the sender to {}",
                format(own),
                given.map_or_else(|| "none (an unidentified cluster)".into(), format)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        assert_eq!(check(None, None), IdCheck::Accept);
        assert_eq!(check(None, Some(7)), IdCheck::Adopt(7));
        assert_eq!(check(Some(7), Some(7)), IdCheck::Accept);
        assert_eq!(
            check(Some(7), Some(8)),
            IdCheck::Refuse {
                own: 7,
                given: Some(8)
            }
        );
        // A restored cluster refuses a node of an unidentified (older) cluster.
        assert_eq!(
            check(Some(7), None),
            IdCheck::Refuse {
                own: 7,
                given: None
            }
        );
    }

    #[test]
    fn ids_round_trip_through_the_header_text() {
        for id in [1u128, u128::MAX, 0x1234_5678_9abc_def0_1122_3344_5566_7788] {
            assert_eq!(parse(&format(id)), Some(id));
        }
        assert_eq!(parse("not hex"), None);
    }

    #[test]
    fn a_node_adopts_the_first_id_and_keeps_it_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        let identity = ClusterIdentity::load(log.clone()).unwrap();
        assert_eq!(identity.get(), None);
        identity.admit(Some(42)).unwrap();
        assert!(identity.admit(Some(43)).is_err());
        assert!(identity.admit(None).is_err());
        drop(identity);
        let again = ClusterIdentity::load(log).unwrap();
        assert_eq!(again.get(), Some(42));
        assert_eq!(again.create().unwrap(), 42, "create keeps an existing id");
    }
}
