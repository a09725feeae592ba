//! Every limit the state machine enforces, in one place.
//!
//! A limit protects the cluster from one client: a payload too large to replicate, a batch
//! that would stall the log, a queue name that breaks a URL. Each one is checked where the
//! command is validated and has a test that hits it (tests/limits.rs).

/// Largest task payload, result, error message or progress value, in bytes of JSON text.
pub const PAYLOAD_BYTES_MAX: usize = 256 * 1024;
/// Largest broadcast message in bytes of JSON text.
pub const BROADCAST_BYTES_MAX: usize = 16 * 1024;
/// Longest queue name, kind, group id, worker id, idempotency or coalesce key, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
/// Most tasks in one enqueue command.
pub const ENQUEUE_BATCH_MAX: usize = 1024;
/// Most leases in one heartbeat command.
pub const HEARTBEAT_BATCH_MAX: usize = 1024;
/// Most tasks one claim may return.
pub const CLAIM_MAX: u32 = 64;
/// Most queues one claim may name.
pub const CLAIM_QUEUES_MAX: usize = 32;
/// Most kinds one claim filter may name.
pub const CLAIM_KINDS_MAX: usize = 64;
/// Most commands in one log entry (the leader's group-commit batch).
pub const ENTRY_COMMANDS_MAX: usize = 1024;
/// Fencing tokens are `log_index * TOKEN_SLOTS_PER_ENTRY + n`, n counting the claims
/// granted inside one entry. The bound below keeps n under the slot count.
pub const TOKEN_SLOTS_PER_ENTRY: u64 = 1 << 16;
const _: () = assert!((ENTRY_COMMANDS_MAX as u64) * (CLAIM_MAX as u64) <= TOKEN_SLOTS_PER_ENTRY);
/// Idempotency keys of coalesced joiners remembered per task. Past this, a joiner's
/// key is not remembered (its retry joins again while the task is open, or makes a new
/// task after it finished).
pub const JOIN_KEYS_MAX: usize = 256;
/// Events kept per task; older ones are dropped and counted.
pub const TASK_EVENTS_MAX: usize = 64;
/// The highest behaviour version a `RaiseBehaviour` may name (far above any real one: it
/// only keeps a corrupt or hostile command from meaning "every future version").
pub const BEHAVIOUR_VERSION_LIMIT: u32 = 10_000;
/// Broadcast messages kept; older ones are dropped.
pub const BROADCASTS_KEPT_MAX: usize = 1024;
/// Distinct queues (a queue exists while it holds tasks or is paused).
pub const QUEUES_MAX: usize = 10_000;
/// Priorities accepted: higher runs first.
pub const PRIORITY_MIN: i32 = -1_000;
pub const PRIORITY_MAX: i32 = 1_000;
/// Ready seqs (a task's place in FIFO order) stay below this: the ready index packs one
/// with the priority into a word (`machine.rs`, `ReadyKey`). A power of two.
pub const READY_SEQ_MAX: u64 = 1 << 53;
/// Attempts a task may be given.
pub const ATTEMPTS_MAX: u32 = 1_000;
/// Lease length bounds.
pub const LEASE_MS_MIN: u64 = 100;
pub const LEASE_MS_MAX: u64 = 60 * 60 * 1000;
/// Longest delay, timeout or backoff accepted (one year).
pub const DURATION_MS_MAX: u64 = 365 * 24 * 60 * 60 * 1000;
/// Backoff multiplier bounds, in thousandths (1000 = x1.0).
pub const BACKOFF_MULTIPLIER_PERMILLE_MIN: u32 = 1_000;
pub const BACKOFF_MULTIPLIER_PERMILLE_MAX: u32 = 100_000;
/// Items one tick handles in each category (expiries, promotions, drops). When more are
/// due, `next_due` stays in the past and the leader proposes another tick at once, so one
/// huge backlog never produces one huge log entry.
pub const TICK_ITEMS_MAX: usize = 4_096;
/// Tasks scanned by one list query before it returns a cursor.
pub const LIST_SCAN_MAX: usize = 100_000;
/// Most tasks returned by one list query.
pub const LIST_LIMIT_MAX: usize = 1_000;

/// Defaults used when an enqueue leaves a field out.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_LEASE_MS: u64 = 30_000;
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 1_000;
pub const DEFAULT_BACKOFF_MULTIPLIER_PERMILLE: u32 = 2_000;
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 5 * 60 * 1000;
/// Finished tasks (and their idempotency keys) are kept this long, in cluster time.
pub const DEFAULT_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// Tasks held at once, finished ones included, before enqueue answers `queue_full`.
pub const DEFAULT_TASKS_MAX: u64 = 10_000_000;
/// The largest `tasks_max` a cluster may be configured with.
pub const TASKS_MAX_LIMIT: u64 = 1_000_000_000;
