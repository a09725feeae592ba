//! The public HTTP API of taskswarm, version 1: request and response bodies as serde types.
//!
//! The server (coordinator) and the clients (worker crate, CLI) share these, so a field
//! renamed here is renamed for both. Every request type rejects unknown fields: a typo in
//! a client is an `invalid_request`, not a silently ignored option.
//!
//! Times ending in `_at_ms` are wall-clock milliseconds since the Unix epoch as seen by the
//! leader; durations end in `_ms`.

mod cluster;
mod error;
mod names;
mod task;
mod worker;

pub use cluster::*;
pub use error::*;
pub use names::*;
pub use task::*;
pub use worker::*;

/// The path prefix of every v1 endpoint.
pub const API_PREFIX: &str = "/v1";
