//! One file per command: validation, then the state change. Shared transitions live in
//! `lifecycle.rs`.

mod broadcast;
mod cancel;
mod claim;
mod complete;
mod configure;
mod enqueue;
mod fail;
mod heartbeat;
mod raise_behaviour;
mod release;
mod requeue;
mod tick;
