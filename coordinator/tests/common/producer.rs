//! A sequential producer for the runbook tests: enqueues one task at a time through
//! leader changes and records when each was acknowledged, so a test can state the
//! longest time without an acknowledged write around each step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Cluster;

pub struct Producer {
    stop: Arc<AtomicBool>,
    /// (when acknowledged, task id), in order.
    acks: Arc<Mutex<Vec<(Instant, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Keys are `{prefix}{n}`; `pause` between two enqueues.
    pub fn start(c: &Arc<Cluster>, prefix: &str, pause: Duration) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let acks: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let task = {
            let (c, stop, acks, prefix) =
                (c.clone(), stop.clone(), acks.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = c.enqueue(&format!("{prefix}{i}"), json!({"i": i})).await;
                    acks.lock().unwrap().push((Instant::now(), id));
                    tokio::time::sleep(pause).await;
                }
            })
        };
        Producer { stop, acks, task }
    }

    /// The longest time without an acknowledgement inside [from, to], in ms.
    pub fn longest_gap_ms(&self, from: Instant, to: Instant) -> u128 {
        let acks = self.acks.lock().unwrap();
        let mut last = from;
        let mut longest = 0;
        for (at, _) in acks.iter().filter(|(at, _)| *at >= from && *at <= to) {
            longest = longest.max(at.duration_since(last).as_millis());
            last = *at;
        }
        longest.max(to.duration_since(last).as_millis())
    }

    /// Stops after the enqueue in flight; the ids acknowledged, in order.
    pub async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let acks = self.acks.lock().unwrap();
        acks.iter().map(|(_, id)| *id).collect()
    }
}
