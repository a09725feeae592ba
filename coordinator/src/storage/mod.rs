//! RocksDB storage for the Raft log and durable snapshots of the state machine.
