//! The history file format: a literal example parses, round-trips byte for byte, and
//! every malformed line is refused with its line number.

use jepsen_style_tests::checker::{check_all, overall, Verdict};
use jepsen_style_tests::history::{History, HistoryError, OpType, Record, F};
use proptest::prelude::*;

const EXAMPLE: &str = r#"{"format":"taskswarm-history","version":1,"workload":"Q","nodes":3,"seed":42,"scheduled_faults":[{"id":1,"kind":"kill","targets":["n1"]}]}
{"index":1,"time_ms":5,"process":0,"type":"invoke","f":"enqueue","value":{"client_id":"q-0-1"}}
{"index":2,"time_ms":9,"process":0,"type":"ok","f":"enqueue","value":{"task":1}}
{"index":3,"time_ms":10,"process":"nemesis","type":"start","fault":{"id":1,"kind":"kill","targets":["n1"]},"effective":true}
{"index":4,"time_ms":12,"process":1,"type":"invoke","f":"claim","value":{}}
{"index":5,"time_ms":20,"process":1,"type":"ok","f":"claim","value":{"claimed":[{"task":1,"token":65536,"client_id":"q-0-1"}]}}
{"index":6,"time_ms":21,"process":1,"type":"invoke","f":"complete","value":{"task":1,"token":65536}}
{"index":7,"time_ms":30,"process":1,"type":"ok","f":"complete","value":{"state":"succeeded"}}
{"index":8,"time_ms":31,"process":2,"type":"invoke","f":"read","value":{"task":1}}
{"index":9,"time_ms":33,"process":2,"type":"ok","f":"read","value":{"state":"succeeded"}}
{"index":10,"time_ms":40,"process":"nemesis","type":"stop","fault":{"id":1,"kind":"kill","targets":["n1"]},"effective":true}
{"index":11,"time_ms":50,"process":"final","value":{"tasks":{"1":{"state":"succeeded","token":65536,"client_id":"q-0-1"}},"nodes":[{"id":1,"leader_id":2,"applied_index":9,"state_hash":"f00"},{"id":2,"leader_id":2,"applied_index":9,"state_hash":"f00"},{"id":3,"leader_id":2,"applied_index":9,"state_hash":"f00"}]}}
"#;

fn read(text: &str) -> Result<History, HistoryError> {
    History::read(text.as_bytes())
}

fn line_of(err: HistoryError) -> usize {
    match err {
        HistoryError::Line { line, .. } => line,
        other => panic!("expected a line error, got {other}"),
    }
}

#[test]
fn example_round_trips_byte_for_byte_and_is_valid() {
    let h = read(EXAMPLE).expect("example parses");
    assert_eq!(h.records().len(), 11);
    assert!(h.final_state().is_some());
    let mut out = Vec::new();
    h.write(&mut out).expect("writes");
    assert_eq!(String::from_utf8(out).expect("utf8"), EXAMPLE);
    assert_eq!(overall(&check_all(&h)), Verdict::Valid);
}

/// Replaces line `n` (1-based) of the example.
fn with_line(n: usize, text: &str) -> String {
    EXAMPLE
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { text } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn malformed_lines_report_their_line_number() {
    let cases = [
        (5, "{not json"),
        (
            5,
            r#"{"index":4,"time_ms":12,"process":1,"type":"invoke","f":"steal","value":{}}"#,
        ),
        (
            5,
            r#"{"index":4,"time_ms":12,"process":true,"type":"invoke","f":"claim"}"#,
        ),
        (
            5,
            r#"{"index":4,"time_ms":12,"process":1,"type":"invoke","f":"claim","value":{},"extra":1}"#,
        ),
        // Lease op without its token.
        (
            7,
            r#"{"index":6,"time_ms":21,"process":1,"type":"invoke","f":"complete","value":{"task":1}}"#,
        ),
        // Index going back.
        (
            5,
            r#"{"index":2,"time_ms":12,"process":1,"type":"invoke","f":"claim","value":{}}"#,
        ),
        // Completion whose f differs from the invoke.
        (
            6,
            r#"{"index":5,"time_ms":20,"process":1,"type":"ok","f":"read","value":{"state":"queued"}}"#,
        ),
        // Final state not last.
        (
            11,
            r#"{"index":10,"time_ms":40,"process":"final","value":{"tasks":{},"nodes":[]}}"#,
        ),
    ];
    for (line, text) in cases {
        let err = read(&with_line(line, text)).expect_err(text);
        assert_eq!(line_of(err), line, "{text}");
    }
}

#[test]
fn wrong_format_or_version_is_refused_on_line_1() {
    let other = EXAMPLE.replacen("\"version\":1", "\"version\":2", 1);
    assert_eq!(line_of(read(&other).expect_err("version 2")), 1);
    let other = EXAMPLE.replacen("taskswarm-history", "other", 1);
    assert_eq!(line_of(read(&other).expect_err("format")), 1);
    assert!(matches!(read(""), Err(HistoryError::Empty)));
}

#[test]
fn second_invoke_while_one_is_outstanding_is_refused() {
    let text = with_line(
        6,
        r#"{"index":5,"time_ms":20,"process":1,"type":"invoke","f":"read","value":{"task":1}}"#,
    );
    assert_eq!(line_of(read(&text).expect_err("double invoke")), 6);
}

#[test]
fn completion_without_an_invoke_is_refused() {
    let text = with_line(
        5,
        r#"{"index":4,"time_ms":12,"process":9,"type":"invoke","f":"claim","value":{}}"#,
    );
    assert_eq!(line_of(read(&text).expect_err("orphan completion")), 6);
}

proptest! {
    /// Any sequence of enqueue operations, whatever the outcomes, survives write → read.
    #[test]
    fn enqueue_histories_round_trip(outcomes in proptest::collection::vec(0u8..3, 0..20)) {
        use jepsen_style_tests::history::{Header, OpRecord, OpValue, Workload};
        let mut records = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            let i = i as u64;
            let kind = [OpType::Ok, OpType::Fail, OpType::Info][*o as usize];
            let value = OpValue { client_id: Some(format!("c{i}")), ..OpValue::default() };
            records.push(Record::Op(OpRecord { index: 2 * i, time_ms: i, process: i, kind: OpType::Invoke, f: F::Enqueue, value }));
            let value = OpValue { task: (kind == OpType::Ok).then_some(i), ..OpValue::default() };
            records.push(Record::Op(OpRecord { index: 2 * i + 1, time_ms: i + 1, process: i, kind, f: F::Enqueue, value }));
        }
        let h = History::new(Header::new(Workload::Q), records).expect("valid");
        let mut out = Vec::new();
        h.write(&mut out).expect("writes");
        prop_assert_eq!(History::read(out.as_slice()).expect("reads"), h);
    }
}
