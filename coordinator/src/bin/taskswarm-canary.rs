//! The `taskswarm-canary` binary: the `taskswarm` CLI, unchanged, built over the
//! deliberately broken state machine (feature `canary`, which enables the state machine's
//! `canary-accept-stale-tokens`: lease operations with stale fencing tokens are accepted).
//! For the fault suite's canary run only, to prove its checker catches the violation;
//! never ship it. Build with
//! `cargo build --release -p taskswarm-coordinator --features canary --bin taskswarm-canary`.

#[path = "../main.rs"]
mod taskswarm;

fn main() {
    taskswarm::main();
}
