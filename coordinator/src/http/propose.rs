//! Typed proposals: one function per command, each returning that command's own reply.
//!
//! The state machine answers every command with one `Reply` enum. Which variant belongs
//! to which command is matched here, once, instead of in each handler. The outer
//! `Result` is the proposal (leadership, quorum, an unknown outcome); the inner one is
//! the state machine's answer: a refusal is a value.
//!
//! A reply of another variant would be a state-machine bug: the command did apply, so
//! the answer is `indeterminate` (never a failure), logged as an error.

use taskswarm_state_machine::{
    Claim, ClaimedTask, Command, Enqueued, HeartbeatAck, LeaseBeat, NewTask, Rejection, Reply,
    TaskId, TaskState, Token,
};

use super::error::ApiError;
use crate::raft::Node;

type Answer<T> = Result<Result<T, Rejection>, ApiError>;

async fn propose<T>(
    node: &Node,
    command: Command,
    take: impl FnOnce(Reply) -> Result<T, Reply>,
) -> Answer<T> {
    let name = command.name();
    match node.propose(command).await? {
        Err(rejection) => Ok(Err(rejection)),
        Ok(reply) => take(reply).map(Ok).map_err(|other| {
            tracing::error!(command = name, reply = ?other, "a command got another command's reply");
            ApiError::Indeterminate(format!("{name} got an unexpected reply"))
        }),
    }
}

pub async fn enqueue(node: &Node, tasks: Vec<NewTask>) -> Answer<Vec<Result<Enqueued, Rejection>>> {
    propose(node, Command::Enqueue { tasks }, |r| match r {
        Reply::Enqueued(results) => Ok(results),
        other => Err(other),
    })
    .await
}

pub async fn claim(node: &Node, claim: Claim) -> Answer<Vec<ClaimedTask>> {
    propose(node, Command::Claim(claim), |r| match r {
        Reply::Claimed(tasks) => Ok(tasks),
        other => Err(other),
    })
    .await
}

pub async fn heartbeat(
    node: &Node,
    worker: String,
    leases: Vec<LeaseBeat>,
) -> Answer<Vec<Result<HeartbeatAck, Rejection>>> {
    propose(node, Command::Heartbeat { worker, leases }, |r| match r {
        Reply::Heartbeats(acks) => Ok(acks),
        other => Err(other),
    })
    .await
}

/// Whether the task had already succeeded with this token (a retried complete).
pub async fn complete(node: &Node, task: TaskId, token: Token, result: String) -> Answer<bool> {
    let command = Command::Complete {
        task,
        token,
        result,
    };
    propose(node, command, |r| match r {
        Reply::Completed { duplicate } => Ok(duplicate),
        other => Err(other),
    })
    .await
}

/// `(duplicate, the tasks claimed after the completion)`.
pub async fn complete_and_claim(
    node: &Node,
    task: TaskId,
    token: Token,
    result: String,
    next: Claim,
) -> Answer<(bool, Vec<ClaimedTask>)> {
    let command = Command::CompleteAndClaim {
        task,
        token,
        result,
        next,
    };
    propose(node, command, |r| match r {
        Reply::CompletedAndClaimed { duplicate, tasks } => Ok((duplicate, tasks)),
        other => Err(other),
    })
    .await
}

/// What `POST /v1/tasks/{id}/fail` carries.
#[derive(Debug)]
pub struct Failure {
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
}

/// The task's state after the failure.
pub async fn fail(node: &Node, task: TaskId, token: Token, failure: Failure) -> Answer<TaskState> {
    let command = Command::Fail {
        task,
        token,
        code: failure.code,
        message: failure.message,
        retryable: failure.retryable,
        retry_after_ms: failure.retry_after_ms,
    };
    propose(node, command, |r| match r {
        Reply::FailRecorded { state } => Ok(state),
        other => Err(other),
    })
    .await
}

pub async fn release(node: &Node, task: TaskId, token: Token, delay_ms: u64) -> Answer<TaskState> {
    let command = Command::Release {
        task,
        token,
        delay_ms,
    };
    propose(node, command, |r| match r {
        Reply::Released { state } => Ok(state),
        other => Err(other),
    })
    .await
}

pub async fn cancel(node: &Node, task: TaskId) -> Answer<TaskState> {
    propose(node, Command::Cancel { task }, |r| match r {
        Reply::CancelRecorded { state } => Ok(state),
        other => Err(other),
    })
    .await
}

pub async fn requeue(node: &Node, task: TaskId) -> Answer<()> {
    propose(node, Command::Requeue { task }, |r| match r {
        Reply::Requeued => Ok(()),
        other => Err(other),
    })
    .await
}

pub async fn set_paused(node: &Node, queue: String, paused: bool) -> Answer<()> {
    let command = if paused {
        Command::Pause { queue }
    } else {
        Command::Resume { queue }
    };
    propose(node, command, |r| match r {
        Reply::QueueUpdated => Ok(()),
        other => Err(other),
    })
    .await
}

/// The message's sequence number.
pub async fn broadcast(node: &Node, channel: String, message: String) -> Answer<u64> {
    propose(node, Command::Broadcast { channel, message }, |r| match r {
        Reply::Broadcast { seq } => Ok(seq),
        other => Err(other),
    })
    .await
}
