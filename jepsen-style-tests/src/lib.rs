//! The fault-injection suite of taskswarm.
//!
//! What a run produces and what judges it: the versioned JSON-lines history
//! ([`history`]), its operations paired invoke → completion ([`ops`]), the model of a
//! task's states ([`model`]), one checker per property ([`checker`]), the terminal report
//! ([`report`], [`availability`]) and the HTML timeline ([`timeline`]). The environment
//! ([`env`]): nodes in network namespaces and the faults injected into them. A run
//! ([`run`]): the seeded nemesis schedule, the workloads' clients and worker processes,
//! the recorder that merges their events into a history, the drain and the final state.
//! The binaries: `jepsen-run` (a run, or `--smoke`) and `jepsen-check` (a history).

pub mod availability;
pub mod checker;
pub mod env;
pub mod expect;
pub mod history;
pub mod model;
pub mod ops;
pub mod report;
pub mod run;
pub mod timeline;

#[cfg(test)]
pub(crate) mod testkit;
