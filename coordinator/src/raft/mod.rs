//! openraft glue: the type configuration, the network between nodes, and the node itself
//! (group commit, cluster clock, ticks). Only this module and `storage` name openraft.

pub mod types;
