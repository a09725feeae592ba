//! A taskswarm coordinator node. See ARCHITECTURE.md for the map.

pub mod http;
pub mod raft;
mod secret;
pub mod server;
pub mod storage;
