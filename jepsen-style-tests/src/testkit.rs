//! Hand-written histories for the checkers' unit tests.

use crate::history::*;
use crate::model::TaskState;

/// Milliseconds between consecutive events, so latencies are non-zero.
const STEP_MS: u64 = 10;

#[derive(Debug)]
pub struct Builder {
    header: Header,
    records: Vec<Record>,
    index: u64,
}

impl Builder {
    pub fn new(workload: Workload) -> Self {
        Self {
            header: Header::new(workload),
            records: Vec::new(),
            index: 0,
        }
    }

    fn next(&mut self) -> (u64, u64) {
        self.index += 1;
        (self.index, self.index * STEP_MS)
    }

    pub fn schedule(&mut self, id: u64, kind: &str) -> &mut Self {
        self.header.scheduled_faults.push(Fault {
            id,
            kind: kind.to_owned(),
            targets: vec!["n1".to_owned()],
        });
        self
    }

    pub fn op(&mut self, process: u64, kind: OpType, f: F, value: OpValue) -> &mut Self {
        let (index, time_ms) = self.next();
        self.records.push(Record::Op(OpRecord {
            index,
            time_ms,
            process,
            kind,
            f,
            value,
        }));
        self
    }

    pub fn invoke(&mut self, process: u64, f: F, value: OpValue) -> &mut Self {
        self.op(process, OpType::Invoke, f, value)
    }

    pub fn enqueue(
        &mut self,
        process: u64,
        client: &str,
        outcome: OpType,
        task: Option<u64>,
    ) -> &mut Self {
        self.invoke(
            process,
            F::Enqueue,
            OpValue {
                client_id: Some(client.to_owned()),
                ..OpValue::default()
            },
        );
        self.op(
            process,
            outcome,
            F::Enqueue,
            OpValue {
                task,
                ..OpValue::default()
            },
        )
    }

    pub fn claim(&mut self, process: u64, claimed: &[(u64, u64)]) -> &mut Self {
        self.invoke(process, F::Claim, OpValue::default());
        let claimed = claimed
            .iter()
            .map(|&(task, token)| Claimed {
                task,
                token,
                client_id: None,
            })
            .collect();
        self.op(
            process,
            OpType::Ok,
            F::Claim,
            OpValue {
                claimed: Some(claimed),
                ..OpValue::default()
            },
        )
    }

    pub fn lease_invoke(&mut self, process: u64, f: F, task: u64, token: u64) -> &mut Self {
        self.invoke(
            process,
            f,
            OpValue {
                task: Some(task),
                token: Some(token),
                ..OpValue::default()
            },
        )
    }

    /// A lease op invoked and completed at once; `error` only for fail/info.
    pub fn lease(
        &mut self,
        process: u64,
        f: F,
        task: u64,
        token: u64,
        outcome: OpType,
        error: Option<&str>,
    ) -> &mut Self {
        self.lease_invoke(process, f, task, token);
        let state = (f == F::Complete && outcome == OpType::Ok).then_some(TaskState::Succeeded);
        self.op(
            process,
            outcome,
            f,
            OpValue {
                state,
                error: error.map(str::to_owned),
                ..OpValue::default()
            },
        )
    }

    pub fn read(&mut self, process: u64, task: u64, state: TaskState) -> &mut Self {
        self.invoke(
            process,
            F::Read,
            OpValue {
                task: Some(task),
                ..OpValue::default()
            },
        );
        self.op(
            process,
            OpType::Ok,
            F::Read,
            OpValue {
                state: Some(state),
                ..OpValue::default()
            },
        )
    }

    pub fn nemesis(&mut self, kind: NemesisType, id: u64, effective: bool) -> &mut Self {
        let (index, time_ms) = self.next();
        let fault = self
            .header
            .scheduled_faults
            .iter()
            .find(|f| f.id == id)
            .cloned()
            .unwrap_or(Fault {
                id,
                kind: "unscheduled".to_owned(),
                targets: Vec::new(),
            });
        self.records.push(Record::Nemesis(NemesisRecord {
            index,
            time_ms,
            process: NEMESIS_PROCESS.to_owned(),
            kind,
            fault,
            effective,
        }));
        self
    }

    /// tasks: (id, state, final token, client id); nodes: (id, leader, applied, hash).
    pub fn finish(
        &mut self,
        tasks: &[(u64, TaskState, Option<u64>, &str)],
        nodes: &[(u64, Option<u64>, u64, &str)],
    ) -> &mut Self {
        let (index, time_ms) = self.next();
        let value = FinalState {
            tasks: tasks
                .iter()
                .map(|&(id, state, token, client)| {
                    (
                        id,
                        FinalTask {
                            state,
                            token,
                            client_id: Some(client.to_owned()),
                        },
                    )
                })
                .collect(),
            nodes: nodes
                .iter()
                .map(|&(id, leader_id, applied_index, hash)| FinalNode {
                    id,
                    leader_id,
                    applied_index,
                    state_hash: hash.to_owned(),
                })
                .collect(),
        };
        self.records.push(Record::Final(FinalRecord {
            index,
            time_ms,
            process: FINAL_PROCESS.to_owned(),
            value,
        }));
        self
    }

    pub fn build(&self) -> History {
        match History::new(self.header.clone(), self.records.clone()) {
            Ok(h) => h,
            Err(e) => panic!("test history is invalid: {e}"),
        }
    }
}

/// Three converged nodes, node 1 leading.
pub const NODES_OK: [(u64, Option<u64>, u64, &str); 3] = [
    (1, Some(1), 40, "abc"),
    (2, Some(1), 40, "abc"),
    (3, Some(1), 40, "abc"),
];

/// The fault-phase prefix of the valid history, without its final record, so tests can
/// append an anomaly before finishing:
/// tasks 1 (c1) and 2 (c2) acknowledged, 3 (c3) unknown but recovered; task 2 is claimed
/// twice (a lease really lost) and its first holder's completion is refused.
pub fn valid_prefix() -> Builder {
    let mut b = Builder::new(Workload::L);
    b.schedule(1, "partition-isolate-leader");
    b.enqueue(1, "c1", OpType::Ok, Some(1))
        .enqueue(1, "c2", OpType::Ok, Some(2))
        .enqueue(2, "c3", OpType::Info, None)
        .nemesis(NemesisType::Start, 1, true)
        .claim(3, &[(1, 100), (3, 101)])
        .lease(3, F::Heartbeat, 1, 100, OpType::Ok, None)
        .read(5, 1, TaskState::Running)
        .lease(3, F::Complete, 1, 100, OpType::Ok, None)
        .read(5, 1, TaskState::Succeeded)
        .claim(4, &[(2, 200)])
        .claim(6, &[(2, 300)])
        .nemesis(NemesisType::Stop, 1, true)
        .lease(4, F::Complete, 2, 200, OpType::Fail, Some("lease_lost"))
        .lease(6, F::Complete, 2, 300, OpType::Ok, None)
        .lease(3, F::Complete, 3, 101, OpType::Ok, None);
    b
}

pub const TASKS_OK: [(u64, TaskState, Option<u64>, &str); 3] = [
    (1, TaskState::Succeeded, Some(100), "c1"),
    (2, TaskState::Succeeded, Some(300), "c2"),
    (3, TaskState::Succeeded, Some(101), "c3"),
];

/// A history every checker accepts.
pub fn valid() -> History {
    valid_prefix().finish(&TASKS_OK, &NODES_OK).build()
}
