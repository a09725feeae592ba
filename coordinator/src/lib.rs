//! A taskswarm coordinator node. See ARCHITECTURE.md for the map.

pub mod http;
pub mod raft;
mod secret;
pub mod server;
pub mod storage;
/// The openraft type configuration, shared by `raft` and `storage` (which otherwise do
/// not depend on each other's internals).
pub mod types;
