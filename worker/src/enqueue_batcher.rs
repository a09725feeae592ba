//! Automatic batching of enqueues from many concurrent callers: each caller awaits its own
//! task's answer, while the tasks travel together in one `POST /v1/tasks/batch` (one
//! request, one Raft command). A batch leaves when it is full or when its first task has
//! waited `linger` (at most [`LINGER_MAX`]); while [`BATCHES_IN_FLIGHT_MAX`] batches are
//! in flight, the next one keeps filling, so batches grow with the load by themselves.
//!
//! Every task gets its idempotency key before it joins a batch, so the batch is retried
//! through timeouts and leader changes as safely as a single enqueue.

use std::sync::Arc;
use std::time::Duration;

use taskswarm_api as api;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::{Client, ClientError};

/// Longest a task may wait for others before its batch leaves.
pub const LINGER_MAX: Duration = Duration::from_millis(5);
/// Most tasks in one batch (the server accepts up to 1024 per request).
pub const BATCH_TASKS_MAX: usize = 256;
/// Batches sent at once; the next one fills while they are out.
pub const BATCHES_IN_FLIGHT_MAX: usize = 4;
/// Callers queued before `enqueue` waits for room.
pub const QUEUED_TASKS_MAX: usize = 4 * BATCH_TASKS_MAX;

type Answer = Result<api::EnqueueResponse, ClientError>;

struct Pending {
    task: api::EnqueueRequest,
    reply: oneshot::Sender<Answer>,
}

/// Enqueues through batches. Cheap to clone; clones share the batches. The background
/// task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct EnqueueBatcher {
    tx: mpsc::Sender<Pending>,
    client: Client,
}

impl Client {
    /// An enqueuer that batches concurrent enqueues, waiting at most `linger` (capped at
    /// [`LINGER_MAX`]) for company. Use it where many tasks or requests enqueue at once;
    /// a lone caller pays up to `linger` extra.
    pub fn enqueue_batcher(&self, linger: Duration) -> EnqueueBatcher {
        let (tx, rx) = mpsc::channel(QUEUED_TASKS_MAX);
        tokio::spawn(run(self.clone(), rx, linger.min(LINGER_MAX)));
        EnqueueBatcher {
            tx,
            client: self.clone(),
        }
    }
}

impl EnqueueBatcher {
    /// Enqueues one task in the next batch and returns its own result: a refusal of this
    /// task is `Rejected` for this caller only; a failure of the whole request (unknown
    /// outcome, no cluster) reaches every caller of the batch.
    pub async fn enqueue(&self, mut task: api::EnqueueRequest) -> Answer {
        task.idempotency_key
            .get_or_insert_with(|| self.client.new_key());
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { task, reply })
            .await
            .map_err(|_| ClientError::InvalidArgument("the enqueue batcher stopped".into()))?;
        answer.await.unwrap_or_else(|_| {
            Err(ClientError::Indeterminate(
                "the enqueue batcher stopped before answering".into(),
            ))
        })
    }
}

/// Gathers batches and sends them, up to `BATCHES_IN_FLIGHT_MAX` at once.
async fn run(client: Client, mut rx: mpsc::Receiver<Pending>, linger: Duration) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let leave_at = Instant::now() + linger;
        while batch.len() < BATCH_TASKS_MAX {
            match tokio::time::timeout_at(leave_at, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        // While every slot is busy, callers keep queueing: take them into this batch.
        let permit = loop {
            if let Ok(permit) = in_flight.clone().try_acquire_owned() {
                break permit;
            }
            tokio::select! {
                permit = in_flight.clone().acquire_owned() => {
                    break permit.expect("the semaphore is never closed");
                }
                more = rx.recv(), if batch.len() < BATCH_TASKS_MAX => match more {
                    Some(p) => batch.push(p),
                    None => {
                        break in_flight.clone().acquire_owned().await.expect("never closed");
                    }
                },
            }
        };
        let client = client.clone();
        tokio::spawn(async move {
            send(&client, batch).await;
            drop(permit);
        });
    }
}

async fn send(client: &Client, batch: Vec<Pending>) {
    let (tasks, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.task, p.reply)).unzip();
    let sent = tasks.len();
    for (reply, answer) in replies
        .into_iter()
        .zip(answers(client.enqueue_batch(tasks).await, sent))
    {
        // A caller that gave up has dropped its receiver: nothing to tell.
        let _ = reply.send(answer);
    }
}

/// One answer per task, in order, from the batch's result.
fn answers(result: Result<Vec<api::BatchItem>, ClientError>, sent: usize) -> Vec<Answer> {
    match result {
        Ok(items) if items.len() == sent => items
            .into_iter()
            .map(|item| match item {
                api::BatchItem::Ok(r) => Ok(r),
                api::BatchItem::Err(e) => Err(ClientError::Rejected {
                    status: 400,
                    code: e.error.code,
                    message: e.error.message,
                }),
            })
            .collect(),
        Ok(items) => {
            let e = ClientError::Protocol(format!(
                "a batch of {sent} tasks was answered with {} results",
                items.len()
            ));
            vec![Err(e); sent]
        }
        Err(e) => vec![Err(e); sent],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: u64) -> api::BatchItem {
        api::BatchItem::Ok(api::EnqueueResponse {
            id,
            created: true,
            coalesced: false,
            state: api::TaskState::Queued,
        })
    }

    #[test]
    fn each_caller_gets_its_own_result() {
        let refused = api::BatchItem::Err(api::ErrorBody::new("payload_too_large", "too big"));
        let got = answers(Ok(vec![ok(7), refused, ok(9)]), 3);
        assert_eq!(got[0].as_ref().unwrap().id, 7);
        assert_eq!(
            got[1].as_ref().unwrap_err().code(),
            Some("payload_too_large")
        );
        assert_eq!(got[2].as_ref().unwrap().id, 9);
    }

    #[test]
    fn a_failed_request_reaches_every_caller_and_a_short_answer_is_a_protocol_error() {
        let got = answers(Err(ClientError::Indeterminate("timeout".into())), 2);
        assert!(got
            .iter()
            .all(|a| matches!(a, Err(ClientError::Indeterminate(_)))));
        let got = answers(Ok(vec![ok(1)]), 2);
        assert!(got
            .iter()
            .all(|a| matches!(a, Err(ClientError::Protocol(_)))));
    }
}
