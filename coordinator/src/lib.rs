//! A taskswarm coordinator node. See ARCHITECTURE.md for the map.

pub mod raft;
pub mod storage;
