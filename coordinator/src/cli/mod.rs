//! The `taskswarm` command line: `node` runs one coordinator, `dev` a local cluster.

pub mod admin;
pub mod bench;
pub mod client_args;
pub mod output;
pub mod tasks;
pub mod dev;
pub mod exec_worker;
pub mod node;
