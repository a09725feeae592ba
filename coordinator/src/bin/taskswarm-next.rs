//! The `taskswarm-next` binary: the `taskswarm` CLI, unchanged, built over a state machine
//! that supports one behaviour version more than this release (feature `next-behaviour`;
//! see the state machine's `behaviour.rs`). It stands in for the next release in the
//! rolling-upgrade tests; never ship it. Build with
//! `cargo build --release -p taskswarm-coordinator --features next-behaviour --bin taskswarm-next`.

#[path = "../main.rs"]
mod taskswarm;

fn main() {
    taskswarm::main();
}
