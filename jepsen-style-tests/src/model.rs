//! A task's states as the public API names them, and which ones are final.
//!
//! The wire enum from `taskswarm-api`, never the state machine's: the checker judges the
//! system from outside and must only know the wire contract, like any client.

pub use taskswarm_api::TaskState;
