//! A test driver: a state machine with its own log index and clocks, and shorthands for
//! each command. Every apply is followed by a full invariant check.
#![allow(dead_code)]

use taskswarm_state_machine::*;

pub mod generate;

pub struct Sm {
    pub sm: StateMachine,
    pub index: u64,
    pub wall_ms: u64,
    pub cluster_ms: u64,
    pub log: Vec<(u64, Entry)>,
}

impl Default for Sm {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Sm {
    pub fn new(config: Config) -> Self {
        Self {
            sm: StateMachine::new(config),
            index: 0,
            wall_ms: 1_000_000,
            cluster_ms: 0,
            log: Vec::new(),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&mut self, ms: u64) {
        self.wall_ms += ms;
        self.cluster_ms += ms;
    }

    pub fn apply_all(&mut self, commands: Vec<Command>) -> Vec<CommandResult> {
        self.index += 1;
        let entry = Entry {
            wall_ms: self.wall_ms,
            cluster_ms: self.cluster_ms,
            commands,
        };
        let outcome = self.sm.apply(self.index, &entry);
        self.sm.check_invariants();
        self.log.push((self.index, entry));
        assert_eq!(
            Outcome::from_bytes(&outcome.to_bytes()).unwrap(),
            outcome,
            "outcome round-trips"
        );
        outcome.results
    }

    pub fn apply(&mut self, command: Command) -> CommandResult {
        self.apply_all(vec![command]).pop().unwrap()
    }

    pub fn enqueue(&mut self, t: NewTask) -> Result<Enqueued, Rejection> {
        match self.apply(Command::Enqueue { tasks: vec![t] }) {
            Ok(Reply::Enqueued(mut v)) => v.pop().unwrap(),
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(e) => Err(e),
        }
    }

    pub fn add(&mut self, queue: &str, kind: &str) -> TaskId {
        self.enqueue(new_task(queue, kind)).unwrap().id
    }

    pub fn claim_with(&mut self, c: Claim) -> Result<Vec<ClaimedTask>, Rejection> {
        match self.apply(Command::Claim(c))? {
            Reply::Claimed(v) => Ok(v),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn claim(&mut self, queue: &str, max: u32) -> Vec<ClaimedTask> {
        self.claim_with(claim(queue, max)).unwrap()
    }

    pub fn claim_one(&mut self, queue: &str) -> ClaimedTask {
        let mut v = self.claim(queue, 1);
        assert_eq!(v.len(), 1, "one task claimed");
        v.pop().unwrap()
    }

    pub fn heartbeat(&mut self, task: TaskId, token: Token) -> Result<HeartbeatAck, Rejection> {
        self.heartbeat_with(LeaseBeat {
            task,
            token,
            progress: None,
            lease_ms: None,
        })
    }

    pub fn heartbeat_with(&mut self, beat: LeaseBeat) -> Result<HeartbeatAck, Rejection> {
        match self.apply(Command::Heartbeat {
            worker: "w1".into(),
            leases: vec![beat],
        })? {
            Reply::Heartbeats(mut v) => v.pop().unwrap(),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn complete(&mut self, task: TaskId, token: Token) -> CommandResult {
        self.apply(Command::Complete {
            task,
            token,
            result: "\"ok\"".into(),
        })
    }

    pub fn fail(&mut self, task: TaskId, token: Token, retryable: bool) -> CommandResult {
        self.apply(Command::Fail {
            task,
            token,
            code: None,
            message: "boom".into(),
            retryable,
            retry_after_ms: None,
        })
    }

    pub fn tick(&mut self) -> TickReport {
        match self.apply(Command::Tick) {
            Ok(Reply::Ticked(r)) => r,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn state(&self, id: TaskId) -> TaskState {
        self.sm.task(id).expect("task exists").state
    }

    pub fn task(&self, id: TaskId) -> &Task {
        self.sm.task(id).expect("task exists")
    }
}

pub fn new_task(queue: &str, kind: &str) -> NewTask {
    NewTask {
        queue: queue.into(),
        kind: kind.into(),
        payload: "{\"n\":1}".into(),
        ..Default::default()
    }
}

pub fn claim(queue: &str, max: u32) -> Claim {
    Claim {
        worker: "w1".into(),
        queues: vec![queue.into()],
        kinds: None,
        max,
        lease_ms: None,
        min_priority: None,
    }
}

pub fn code<T: std::fmt::Debug>(r: Result<T, Rejection>) -> &'static str {
    r.expect_err("a rejection").code()
}
