//! Recording a run: every process (the harness's clients and each worker process) appends
//! [`Event`]s stamped on the shared monotonic clock ([`super::clock`]); at the end they
//! are merged into one [`History`] whose `index` order is real-time order.
//!
//! Why timestamps and a merge rather than a shared counter: workers are separate
//! processes (so that the nemesis can SIGSTOP one), and a counter handed out over a pipe
//! would be read late. A late *invoke* would make an operation look like it started after
//! something it really overlapped, which could invent an anomaly. Timestamps taken right
//! before the request and right after the answer only ever widen an operation.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::env::FaultEvent;
use crate::history::{
    Fault, FinalRecord, FinalState, Header, History, HistoryError, NemesisRecord, NemesisType,
    OpRecord, OpType, OpValue, Record, F, FINAL_PROCESS, NEMESIS_PROCESS,
};

use super::clock::mono_ns;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t_ns: u64,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    Op {
        process: u64,
        kind: OpType,
        f: F,
        value: OpValue,
    },
    Nemesis {
        kind: NemesisType,
        fault: Fault,
        effective: bool,
    },
}

impl Event {
    /// At equal timestamps invokes sort first and completions last: that makes the two
    /// operations overlap, which never invents an ordering the run did not have.
    fn sort_key(&self) -> (u64, u8) {
        let rank = match &self.body {
            EventBody::Op {
                kind: OpType::Invoke,
                ..
            } => 0,
            EventBody::Nemesis { .. } => 1,
            EventBody::Op { .. } => 2,
        };
        (self.t_ns, rank)
    }
}

#[derive(Debug)]
enum Sink {
    Memory(Mutex<Vec<Event>>),
    /// One JSON line per event, flushed at once: a SIGKILLed worker loses nothing it
    /// recorded, and an invoke without its completion reads as an unknown outcome.
    File(Mutex<BufWriter<File>>),
}

/// Cheap to clone; every clone appends to the same sink.
#[derive(Debug, Clone)]
pub struct Recorder {
    sink: Arc<Sink>,
}

impl Recorder {
    pub fn memory() -> Recorder {
        Recorder {
            sink: Arc::new(Sink::Memory(Mutex::new(Vec::new()))),
        }
    }

    pub fn file(path: &Path) -> std::io::Result<Recorder> {
        let file = File::create(path)?;
        Ok(Recorder {
            sink: Arc::new(Sink::File(Mutex::new(BufWriter::new(file)))),
        })
    }

    fn push(&self, event: Event) {
        match &*self.sink {
            Sink::Memory(events) => events.lock().expect("recorder lock").push(event),
            Sink::File(out) => {
                let mut out = out.lock().expect("recorder lock");
                // A failed write leaves a gap the checker reports as unknown outcomes;
                // it must not take the worker down mid-operation.
                let line = serde_json::to_string(&event).expect("events serialize");
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    pub fn invoke(&self, process: u64, f: F, value: OpValue) {
        self.push(Event {
            t_ns: mono_ns(),
            body: EventBody::Op {
                process,
                kind: OpType::Invoke,
                f,
                value,
            },
        });
    }

    /// The completion (`ok`, `fail` or `info`) of `process`'s outstanding `f`.
    pub fn complete(&self, process: u64, kind: OpType, f: F, value: OpValue) {
        assert_ne!(kind, OpType::Invoke, "a completion is not an invoke");
        self.push(Event {
            t_ns: mono_ns(),
            body: EventBody::Op {
                process,
                kind,
                f,
                value,
            },
        });
    }

    pub fn nemesis(&self, ev: &FaultEvent, fault_id: u64) {
        self.push(Event {
            t_ns: mono_ns(),
            body: EventBody::Nemesis {
                kind: ev.phase,
                fault: Fault {
                    id: fault_id,
                    kind: ev.kind.clone(),
                    targets: ev.targets.clone(),
                },
                effective: ev.effective,
            },
        });
    }

    /// The events recorded in memory so far (empty for a file sink).
    pub fn take(&self) -> Vec<Event> {
        match &*self.sink {
            Sink::Memory(events) => std::mem::take(&mut *events.lock().expect("recorder lock")),
            Sink::File(_) => Vec::new(),
        }
    }
}

/// Reads a worker process's event file. A last line cut short (the process was killed
/// while writing it) is dropped; any other bad line is an error.
pub fn read_events(path: &Path) -> Result<Vec<Event>, HistoryError> {
    let lines: Vec<String> = BufReader::new(File::open(path)?)
        .lines()
        .collect::<Result<_, _>>()?;
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => {
                return Err(HistoryError::Line {
                    line: i + 1,
                    reason: format!("{}: bad event: {e}", path.display()),
                })
            }
        }
    }
    Ok(events)
}

/// A harness-clock instant as a history `time_ms` (the workload started at `epoch_ns`).
pub fn ms_since(epoch_ns: u64, t_ns: u64) -> u64 {
    t_ns.saturating_sub(epoch_ns) / 1_000_000
}

/// Merges events from every process into a validated history, in timestamp order; the
/// final state, when there is one, is the last record.
pub fn assemble(
    header: Header,
    mut events: Vec<Event>,
    epoch_ns: u64,
    final_state: Option<(u64, FinalState)>,
) -> Result<History, HistoryError> {
    events.sort_by_key(Event::sort_key);
    let mut records = Vec::with_capacity(events.len() + 1);
    for (index, e) in (0u64..).zip(events) {
        let time_ms = ms_since(epoch_ns, e.t_ns);
        records.push(match e.body {
            EventBody::Op {
                process,
                kind,
                f,
                value,
            } => Record::Op(OpRecord {
                index,
                time_ms,
                process,
                kind,
                f,
                value,
            }),
            EventBody::Nemesis {
                kind,
                fault,
                effective,
            } => Record::Nemesis(NemesisRecord {
                index,
                time_ms,
                process: NEMESIS_PROCESS.to_owned(),
                kind,
                fault,
                effective,
            }),
        });
    }
    if let Some((t_ns, value)) = final_state {
        records.push(Record::Final(FinalRecord {
            index: records.len() as u64,
            time_ms: ms_since(epoch_ns, t_ns),
            process: FINAL_PROCESS.to_owned(),
            value,
        }));
    }
    History::new(header, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Workload;

    fn op(t_ns: u64, process: u64, kind: OpType) -> Event {
        Event {
            t_ns,
            body: EventBody::Op {
                process,
                kind,
                f: F::Read,
                value: OpValue {
                    task: Some(1),
                    state: (kind == OpType::Ok).then_some(crate::model::TaskState::Queued),
                    ..OpValue::default()
                },
            },
        }
    }

    #[test]
    fn events_merge_in_time_order_and_ties_overlap() {
        // Process 2's invoke has the same timestamp as process 1's ok: the merge must
        // put the invoke first, so the two reads overlap instead of being ordered.
        let events = vec![
            op(30, 1, OpType::Ok),
            op(10, 1, OpType::Invoke),
            op(30, 2, OpType::Invoke),
            op(50, 2, OpType::Ok),
        ];
        let h = assemble(Header::new(Workload::R), events, 0, None).expect("valid");
        let order: Vec<(u64, OpType)> = h
            .records()
            .iter()
            .map(|r| match r {
                Record::Op(o) => (o.process, o.kind),
                _ => unreachable!("only ops"),
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (1, OpType::Invoke),
                (2, OpType::Invoke),
                (1, OpType::Ok),
                (2, OpType::Ok)
            ]
        );
    }

    #[test]
    fn file_sink_round_trips_and_tolerates_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("ts-rec-{}", mono_ns()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("events.jsonl");
        let rec = Recorder::file(&path).expect("file");
        rec.invoke(
            7,
            F::Read,
            OpValue {
                task: Some(3),
                ..OpValue::default()
            },
        );
        drop(rec);
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"t_ns\":12,\"bo");
        std::fs::write(&path, text).expect("write");
        let events = read_events(&path).expect("readable");
        assert_eq!(events.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
