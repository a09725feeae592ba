//! Operations: each invoke paired with its completion, in invoke order.
//!
//! An invoke with no completion by the end of the history is treated as `info` (unknown):
//! the client died or the run ended while it was in flight.

use std::collections::BTreeMap;

use crate::history::{History, OpRecord, OpType, Record, F};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Definitely did not happen.
    Fail,
    /// May or may not have happened, at any time after the invoke.
    Info,
}

#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    pub f: F,
    pub invoke: &'a OpRecord,
    pub completion: Option<&'a OpRecord>,
}

impl<'a> Operation<'a> {
    pub fn outcome(&self) -> Outcome {
        match self.completion.map(|c| c.kind) {
            Some(OpType::Ok) => Outcome::Ok,
            Some(OpType::Fail) => Outcome::Fail,
            _ => Outcome::Info,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome() == Outcome::Ok
    }

    /// History position of the invoke: real-time order is index order.
    pub fn start(&self) -> u64 {
        self.invoke.index
    }

    /// History position of the completion; `u64::MAX` when unknown, since an unknown
    /// operation may take effect at any later time.
    pub fn end(&self) -> u64 {
        match self.outcome() {
            Outcome::Info => u64::MAX,
            _ => self.completion.map_or(u64::MAX, |c| c.index),
        }
    }

    /// The task addressed by the invoke (lease ops, read, cancel).
    pub fn task(&self) -> Option<u64> {
        self.invoke.value.task
    }

    pub fn token(&self) -> Option<u64> {
        self.invoke.value.token
    }

    /// The completion's value, when there is one.
    pub fn result(&self) -> Option<&'a crate::history::OpValue> {
        self.completion.map(|c| &c.value)
    }

    /// The error code of a fail/info completion.
    pub fn error(&self) -> Option<&'a str> {
        self.completion.and_then(|c| c.value.error.as_deref())
    }

    pub fn latency_ms(&self) -> Option<u64> {
        self.completion
            .map(|c| c.time_ms.saturating_sub(self.invoke.time_ms))
    }
}

/// Pairs invokes with completions. The history was validated, so pairing cannot fail.
pub fn operations(history: &History) -> Vec<Operation<'_>> {
    let mut ops: Vec<Operation<'_>> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for record in history.records() {
        let Record::Op(op) = record else { continue };
        if op.kind == OpType::Invoke {
            open.insert(op.process, ops.len());
            ops.push(Operation {
                f: op.f,
                invoke: op,
                completion: None,
            });
        } else if let Some(i) = open.remove(&op.process) {
            ops[i].completion = Some(op);
        }
    }
    ops
}
