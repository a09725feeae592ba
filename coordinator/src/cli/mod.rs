//! The `taskswarm` command line: `node` runs one coordinator, `dev` a local cluster.

pub mod bench;
pub mod dev;
pub mod node;
