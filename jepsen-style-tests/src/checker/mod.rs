//! One checker per property; each is a pure function of the history.
//!
//! A checker reports [`Findings`]: `anomalies` (the system broke a promise), `gaps` (the
//! property could not be decided: missing final state, search limit, a fault that never
//! took effect) and `counts`. Anomalies beat gaps: a bug seen in an inconclusive run is
//! still a bug.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::History;

pub mod claims;
pub mod coverage;
pub mod fencing;
pub mod linearizable_reads;
pub mod lost;
pub mod phantom;
pub mod stuck;

/// Example task ids kept per kind of observation, so reports stay short on long runs.
pub const EXAMPLES_MAX: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub kind: &'static str,
    pub task: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    /// Not decided; ordered between the two so that `max` combines verdicts.
    Unknown,
    Anomalies,
}

impl Verdict {
    /// The binary's exit code: 0 valid, 1 anomalies, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Anomalies => 1,
            Verdict::Unknown => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings {
    pub property: &'static str,
    pub anomalies: Vec<Anomaly>,
    pub gaps: Vec<Anomaly>,
    pub counts: BTreeMap<&'static str, u64>,
    /// Notable but legal observations (e.g. execution duplicates), by kind.
    pub examples: BTreeMap<&'static str, Vec<u64>>,
}

impl Findings {
    pub fn new(property: &'static str) -> Self {
        Self {
            property,
            anomalies: Vec::new(),
            gaps: Vec::new(),
            counts: BTreeMap::new(),
            examples: BTreeMap::new(),
        }
    }

    pub fn anomaly(&mut self, kind: &'static str, task: Option<u64>, detail: impl Into<String>) {
        self.anomalies.push(Anomaly {
            kind,
            task,
            detail: detail.into(),
        });
    }

    pub fn gap(&mut self, kind: &'static str, task: Option<u64>, detail: impl Into<String>) {
        self.gaps.push(Anomaly {
            kind,
            task,
            detail: detail.into(),
        });
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counts.entry(name).or_insert(0) += n;
    }

    pub fn example(&mut self, kind: &'static str, task: u64) {
        let list = self.examples.entry(kind).or_default();
        if list.len() < EXAMPLES_MAX && !list.contains(&task) {
            list.push(task);
        }
    }

    pub fn verdict(&self) -> Verdict {
        if !self.anomalies.is_empty() {
            Verdict::Anomalies
        } else if !self.gaps.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }

    /// Anomalies of one kind, for tests and the report.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.anomalies.iter().map(|a| a.kind).collect()
    }
}

/// The final state, or a `no_final_state` gap in `out`: properties judged on the final
/// state cannot be decided without it.
pub(crate) fn final_state_or_gap<'h>(
    history: &'h History,
    out: &mut Findings,
) -> Option<&'h crate::history::FinalState> {
    let fin = history.final_state();
    if fin.is_none() {
        out.gap(
            "no_final_state",
            None,
            "the history has no final-state record",
        );
    }
    fin
}

/// Runs every checker.
pub fn check_all(history: &History) -> Vec<Findings> {
    vec![
        lost::check(history),
        phantom::check(history),
        fencing::check(history),
        linearizable_reads::check(history),
        stuck::check(history),
        coverage::check(history),
    ]
}

pub fn overall(findings: &[Findings]) -> Verdict {
    findings
        .iter()
        .map(Findings::verdict)
        .max()
        .unwrap_or(Verdict::Valid)
}
