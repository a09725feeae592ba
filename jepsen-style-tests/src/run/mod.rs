//! A fault-injection run: the parts `jepsen-run` assembles. The schedule ([`schedule`])
//! says which faults happen when; the nemesis ([`nemesis`]) makes them happen (its roll
//! steps in [`roll`], its replacements in [`replace`]); the
//! workload's clients ([`clients`]) record every operation ([`recorder`]) through a plain
//! HTTP client ([`wire`]); worker processes ([`worker_procs`]) can be paused like real
//! ones; after the heal the drain and final state ([`final_state`]) close the history.

pub mod clients;
pub mod clock;
pub mod final_state;
pub mod nemesis;
pub mod recorder;
pub mod rejoin;
pub mod replace;
pub mod rng;
pub mod roll;
pub mod schedule;
pub mod wire;
pub mod worker_procs;
pub mod workload;

/// History process ids: producers count from 1, readers from here, the probe is one, workers from
/// [`WORKER_PROCESS_BASE`] + 100 × worker process.
pub const READER_PROCESS_BASE: u64 = 100;
/// The probe (`clients::probe`), between the readers and the workers.
pub const PROBE_PROCESS: u64 = 900;
pub const WORKER_PROCESS_BASE: u64 = 1_000;
