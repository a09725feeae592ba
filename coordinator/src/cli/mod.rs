//! The `taskswarm` command line: `node` runs one coordinator, `dev` a local cluster.

pub mod admin;
pub mod backup;
pub mod bench;
pub mod bench_backlog;
pub mod bench_sequential;
pub mod client_args;
pub mod dev;
pub mod exec_worker;
pub mod node;
pub mod output;
pub mod tasks;
