//! The fault-injection suite of taskswarm.
//!
//! This first slice holds what a run produces and what judges it: the versioned JSON-lines
//! history ([`history`]), its operations paired invoke → completion ([`ops`]), the model of
//! a task's states ([`model`]), one checker per property ([`checker`]) and the terminal
//! report ([`report`]). The second slice adds the environment ([`env`]): nodes in network
//! namespaces and the faults injected into them. Nemesis scheduling and workloads come
//! next and only have to write a history in this format.

pub mod checker;
pub mod env;
pub mod history;
pub mod model;
pub mod ops;
pub mod report;

#[cfg(test)]
pub(crate) mod testkit;
