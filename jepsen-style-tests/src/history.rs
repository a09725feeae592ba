//! The history of one run: a versioned JSON-lines file.
//!
//! Line 1 is the [`Header`]; every other line is one [`Record`]: an operation event
//! (`invoke` then exactly one `ok` / `fail` / `info` from the same process), a nemesis
//! `start` / `stop`, or, last, the drained final state. `info` means the outcome is
//! unknown (e.g. `indeterminate`, a timeout): the operation may or may not have happened.
//! `index` is the harness's total order of events and is what "happened before" means to
//! the checkers; `time_ms` is for latencies and the report.
//!
//! Reading validates everything a checker relies on, so checkers can be infallible: a bad
//! line is refused with its line number.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::model::TaskState;

pub const FORMAT: &str = "taskswarm-history";
pub const VERSION: u32 = 1;
/// Value of `process` on nemesis records.
pub const NEMESIS_PROCESS: &str = "nemesis";
/// Value of `process` on the final-state record.
pub const FINAL_PROCESS: &str = "final";

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("empty history: no header line")]
    Empty,
    #[error("reading history: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing history: {0}")]
    Encode(#[from] serde_json::Error),
}

fn line_error(line: usize, reason: impl Into<String>) -> HistoryError {
    HistoryError::Line {
        line,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workload {
    /// enqueue + claim + complete, then a drain.
    Q,
    /// lease contention: few tasks, many workers, short leases.
    L,
    /// task reads mixed with writes.
    R,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub workload: Workload,
    #[serde(default)]
    pub nodes: u32,
    #[serde(default)]
    pub seed: u64,
    /// Every fault the schedule planned; coverage checks each one started, took effect
    /// and stopped.
    #[serde(default)]
    pub scheduled_faults: Vec<Fault>,
    /// The process of the probe: one sequential producer with a short timeout that
    /// rotates nodes, whose first ok write after a fault is the recovery a client sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_process: Option<u64>,
}

impl Header {
    pub fn new(workload: Workload) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            workload,
            nodes: 0,
            seed: 0,
            scheduled_faults: Vec::new(),
            probe_process: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Unique per run: pairs a start with its stop.
    pub id: u64,
    /// e.g. `partition-isolate-leader`, `kill`, `pause-leader`, `clock-skew`.
    pub kind: String,
    /// Nodes or workers affected, as the harness names them.
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum F {
    Enqueue,
    Claim,
    Heartbeat,
    Complete,
    Fail,
    Release,
    Read,
    Cancel,
}

impl F {
    pub const ALL: [F; 8] = [
        F::Enqueue,
        F::Claim,
        F::Heartbeat,
        F::Complete,
        F::Fail,
        F::Release,
        F::Read,
        F::Cancel,
    ];

    /// Operations that carry a lease token and must be fenced.
    pub fn is_lease_op(self) -> bool {
        matches!(self, F::Heartbeat | F::Complete | F::Fail | F::Release)
    }

    pub fn name(self) -> &'static str {
        match self {
            F::Enqueue => "enqueue",
            F::Claim => "claim",
            F::Heartbeat => "heartbeat",
            F::Complete => "complete",
            F::Fail => "fail",
            F::Release => "release",
            F::Read => "read",
            F::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    /// Unknown outcome.
    Info,
}

/// Arguments (on invoke) or result (on completion). Which fields are required for which
/// `f` and `type` is checked by [`History::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpValue {
    /// The client-generated unique id carried in the task payload: enqueue invoke; also
    /// echoed by claims and reads when the payload is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// enqueue ok: the id returned; lease ops, read, cancel invoke: the task addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
    /// Lease ops invoke: the fencing token sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// claim ok: the tasks handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<Vec<Claimed>>,
    /// read ok: the state observed; complete/fail/release/cancel ok: the state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    /// fail / info: the error code (`lease_lost`, `indeterminate`, `timeout`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claimed {
    pub task: u64,
    pub token: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    pub index: u64,
    pub time_ms: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: F,
    #[serde(default)]
    pub value: OpValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisType {
    Start,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisRecord {
    pub index: u64,
    pub time_ms: u64,
    /// Always [`NEMESIS_PROCESS`]; kept so every line has a `process`.
    pub process: String,
    #[serde(rename = "type")]
    pub kind: NemesisType,
    pub fault: Fault,
    /// On start: the harness verified the fault took hold (rule installed, process
    /// stopped...). A fault that did not is a gap in coverage, not a pass.
    #[serde(default = "yes")]
    pub effective: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalRecord {
    pub index: u64,
    pub time_ms: u64,
    /// Always [`FINAL_PROCESS`].
    pub process: String,
    pub value: FinalState,
}

/// The cluster after heal and drain, read from every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalState {
    pub tasks: BTreeMap<u64, FinalTask>,
    pub nodes: Vec<FinalNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalTask {
    pub state: TaskState,
    /// The token of the task's last lease, if it was ever claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalNode {
    pub id: u64,
    /// The leader this node believes in; `None` when it knows none.
    #[serde(default)]
    pub leader_id: Option<u64>,
    pub applied_index: u64,
    pub state_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Record {
    Op(OpRecord),
    Nemesis(NemesisRecord),
    Final(FinalRecord),
}

impl Record {
    pub fn index(&self) -> u64 {
        match self {
            Record::Op(r) => r.index,
            Record::Nemesis(r) => r.index,
            Record::Final(r) => r.index,
        }
    }

    pub fn time_ms(&self) -> u64 {
        match self {
            Record::Op(r) => r.time_ms,
            Record::Nemesis(r) => r.time_ms,
            Record::Final(r) => r.time_ms,
        }
    }

    /// Dispatch on `process` by hand: an untagged derive would hide the real error
    /// behind "did not match any variant".
    fn parse(text: &str) -> Result<Record, String> {
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let kind = match raw.get("process") {
            Some(serde_json::Value::Number(_)) => "op",
            Some(serde_json::Value::String(s)) if s == NEMESIS_PROCESS => "nemesis",
            Some(serde_json::Value::String(s)) if s == FINAL_PROCESS => "final",
            Some(other) => return Err(format!("unknown process {other}")),
            None => return Err("missing field `process`".to_owned()),
        };
        let bad = |e: serde_json::Error| format!("bad {kind} record: {e}");
        Ok(match kind {
            "op" => Record::Op(serde_json::from_value(raw).map_err(bad)?),
            "nemesis" => Record::Nemesis(serde_json::from_value(raw).map_err(bad)?),
            _ => Record::Final(serde_json::from_value(raw).map_err(bad)?),
        })
    }
}

/// A validated history. Fields are private so that no checker sees an unvalidated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    header: Header,
    records: Vec<Record>,
}

impl History {
    /// Validates records as if they were lines 2, 3, ... of a file.
    pub fn new(header: Header, records: Vec<Record>) -> Result<Self, HistoryError> {
        let lines: Vec<usize> = (0..records.len()).map(|i| i + 2).collect();
        validate(&header, &records, &lines)?;
        Ok(Self { header, records })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn final_state(&self) -> Option<&FinalState> {
        match self.records.last() {
            Some(Record::Final(f)) => Some(&f.value),
            _ => None,
        }
    }

    /// Reads a whole history; blank lines are skipped but still counted.
    pub fn read(reader: impl BufRead) -> Result<Self, HistoryError> {
        let mut header = None;
        let mut records = Vec::new();
        let mut lines = Vec::new();
        for (i, text) in reader.lines().enumerate() {
            let line = i + 1;
            let text = text?;
            if text.trim().is_empty() {
                continue;
            }
            if header.is_none() {
                let h: Header = serde_json::from_str(&text)
                    .map_err(|e| line_error(line, format!("bad header: {e}")))?;
                header = Some(h);
                continue;
            }
            records.push(Record::parse(&text).map_err(|reason| line_error(line, reason))?);
            lines.push(line);
        }
        let header = header.ok_or(HistoryError::Empty)?;
        validate(&header, &records, &lines)?;
        Ok(Self { header, records })
    }

    pub fn write(&self, mut out: impl Write) -> Result<(), HistoryError> {
        serde_json::to_writer(&mut out, &self.header)?;
        out.write_all(b"\n")?;
        for r in &self.records {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn validate(header: &Header, records: &[Record], lines: &[usize]) -> Result<(), HistoryError> {
    if header.format != FORMAT {
        return Err(line_error(
            1,
            format!("format is {:?}, expected {FORMAT:?}", header.format),
        ));
    }
    if header.version != VERSION {
        return Err(line_error(
            1,
            format!(
                "version {} is not supported (only {VERSION})",
                header.version
            ),
        ));
    }
    // Process → the f of its outstanding invoke: a process runs one operation at a time.
    let mut outstanding: BTreeMap<u64, F> = BTreeMap::new();
    let mut last_index = None;
    for (pos, (record, &line)) in records.iter().zip(lines).enumerate() {
        if last_index.is_some_and(|last| record.index() <= last) {
            return Err(line_error(
                line,
                format!("index {} does not increase", record.index()),
            ));
        }
        last_index = Some(record.index());
        match record {
            Record::Op(op) => {
                validate_value(op).map_err(|reason| line_error(line, reason))?;
                match (op.kind, outstanding.get(&op.process).copied()) {
                    (OpType::Invoke, None) => {
                        outstanding.insert(op.process, op.f);
                    }
                    (OpType::Invoke, Some(f)) => {
                        return Err(line_error(
                            line,
                            format!(
                                "process {} invokes {} while its {} is outstanding",
                                op.process,
                                op.f.name(),
                                f.name()
                            ),
                        ))
                    }
                    (_, None) => {
                        return Err(line_error(
                            line,
                            format!("process {} completes without an invoke", op.process),
                        ))
                    }
                    (_, Some(f)) if f != op.f => {
                        return Err(line_error(
                            line,
                            format!(
                                "completion f {} does not match invoke f {}",
                                op.f.name(),
                                f.name()
                            ),
                        ))
                    }
                    (_, Some(_)) => {
                        outstanding.remove(&op.process);
                    }
                }
            }
            Record::Nemesis(n) if n.process != NEMESIS_PROCESS => {
                return Err(line_error(
                    line,
                    format!("nemesis record with process {:?}", n.process),
                ))
            }
            Record::Nemesis(_) => {}
            Record::Final(_) if pos + 1 != records.len() => {
                return Err(line_error(
                    line,
                    "the final-state record must be the last line",
                ))
            }
            Record::Final(_) => {}
        }
    }
    Ok(())
}

/// The fields each checker needs, so a history missing them is refused, not misjudged.
fn validate_value(op: &OpRecord) -> Result<(), String> {
    let v = &op.value;
    let missing = |field: &str| {
        Err(format!(
            "{} {:?} needs `value.{field}`",
            op.f.name(),
            op.kind
        ))
    };
    match (op.f, op.kind) {
        (F::Enqueue, OpType::Invoke) if v.client_id.is_none() => missing("client_id"),
        (F::Enqueue, OpType::Ok) if v.task.is_none() => missing("task"),
        (F::Claim, OpType::Ok) if v.claimed.is_none() => missing("claimed"),
        (f, OpType::Invoke) if f.is_lease_op() && (v.task.is_none() || v.token.is_none()) => {
            missing("task and token")
        }
        (F::Read | F::Cancel, OpType::Invoke) if v.task.is_none() => missing("task"),
        (F::Read, OpType::Ok) if v.state.is_none() => missing("state"),
        _ => Ok(()),
    }
}
