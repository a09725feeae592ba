//! A taskswarm coordinator node. See ARCHITECTURE.md for the map.

pub mod http;
pub mod raft;
pub mod server;
pub mod storage;
