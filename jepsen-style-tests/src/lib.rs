//! The fault-injection suite of taskswarm.
//!
//! This first slice holds what a run produces and what judges it: the versioned JSON-lines
//! history ([`history`]), its operations paired invoke → completion ([`ops`]), the model of
//! a task's states ([`model`]), one checker per property ([`checker`]) and the terminal
//! report ([`report`]). The cluster runner (namespaces, nemeses, workloads) comes next and
//! only has to write a history in this format.

pub mod checker;
pub mod history;
pub mod model;
pub mod ops;
pub mod report;

#[cfg(test)]
pub(crate) mod testkit;
