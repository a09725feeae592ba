//! The environment's pure parts, runnable without root: addressing, the nemesis records
//! fault events become, and the refusal to touch the network outside the sandbox.
//! The real thing is exercised by `jepsen-run --smoke` (needs root).

use std::time::Instant;

use jepsen_style_tests::env::{net, sandbox, EnvError, FaultEvent};
use jepsen_style_tests::history::{History, NemesisType, Record};

#[test]
fn node_addresses_are_private_and_distinct() {
    assert_eq!(net::ns_name(1), "n1");
    assert_eq!(net::node_ip(1), "10.77.0.11");
    assert_eq!(net::node_url(3), "http://10.77.0.13:7001");
    let ips: std::collections::BTreeSet<String> = (1..=net::MAX_NODES).map(net::node_ip).collect();
    assert_eq!(ips.len(), net::MAX_NODES);
    assert!(!ips.contains(net::HARNESS_IP));
    assert!(ips.iter().all(
        |ip| ip.starts_with("10.77.0.") && ip.rsplit('.').next().unwrap().parse::<u8>().is_ok()
    ));
}

#[test]
fn fault_events_become_history_lines_the_reader_accepts() {
    let epoch = Instant::now();
    let start = FaultEvent::new(
        NemesisType::Start,
        "partition-isolate",
        vec!["n1|n2,n3".into()],
        epoch,
        true,
    );
    let stop = FaultEvent::new(
        NemesisType::Stop,
        "partition-isolate",
        vec!["n1|n2,n3".into()],
        epoch,
        true,
    );
    let header = r#"{"format":"taskswarm-history","version":1,"workload":"Q","nodes":3}"#;
    let text = format!(
        "{header}\n{}\n{}\n",
        serde_json::to_string(&start.to_record(1, 7)).unwrap(),
        serde_json::to_string(&stop.to_record(2, 7)).unwrap()
    );
    let h = History::read(text.as_bytes()).expect("nemesis records parse");
    let kinds: Vec<_> = h
        .records()
        .iter()
        .map(|r| match r {
            Record::Nemesis(n) => (n.kind, n.fault.id, n.fault.kind.clone(), n.effective),
            other => panic!("not a nemesis record: {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (NemesisType::Start, 7, "partition-isolate".to_owned(), true),
            (NemesisType::Stop, 7, "partition-isolate".to_owned(), true)
        ]
    );
}

#[test]
fn network_changes_are_refused_outside_the_sandbox() {
    // The test process is not the sandboxed harness: nothing may touch the host network.
    assert!(!sandbox::inside());
    assert!(matches!(net::create_bridge(), Err(EnvError::NotSandboxed)));
    assert!(matches!(
        net::create_node_ns(1),
        Err(EnvError::NotSandboxed)
    ));
}
