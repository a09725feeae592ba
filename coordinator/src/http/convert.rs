//! Conversions between the wire types (`taskswarm_api`) and the state machine's types.
//! JSON values travel through the state machine as text; they are parsed back here.

use serde_json::Value;
use taskswarm_api as api;
use taskswarm_state_machine as sm;

use crate::raft::ClockRef;

pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("a serde_json Value always serializes")
}

/// Text the coordinator stored from a `Value`, so it parses; `Null` guards the impossible.
pub fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn new_task(r: api::EnqueueRequest) -> sm::NewTask {
    sm::NewTask {
        queue: r.queue,
        kind: r.kind,
        payload: json_text(&r.payload),
        priority: r.priority,
        idempotency_key: r.idempotency_key,
        coalesce_key: r.coalesce_key,
        run_at_wall_ms: r.run_at_ms,
        delay_ms: r.delay_ms,
        max_attempts: r.max_attempts,
        // A non-finite or out-of-range multiplier becomes a value the state machine's
        // range check refuses (NaN casts to 0, huge values saturate).
        backoff: r.backoff.map(|b| sm::Backoff {
            initial_ms: b.initial_ms,
            multiplier_permille: (b.multiplier * 1000.0).round() as u32,
            max_ms: b.max_ms,
        }),
        lease_ms: r.lease_ms,
        timeouts: sm::Timeouts {
            schedule_to_start_ms: r.schedule_to_start_ms,
            start_to_close_ms: r.start_to_close_ms,
            schedule_to_close_ms: r.schedule_to_close_ms,
        },
        group: r.group,
    }
}

pub fn enqueued(e: &sm::Enqueued) -> api::EnqueueResponse {
    api::EnqueueResponse {
        id: e.id.0,
        created: e.created,
        coalesced: e.coalesced,
        state: state(e.state),
    }
}

pub fn task_error(e: &sm::TaskError) -> api::TaskErrorView {
    api::TaskErrorView {
        code: e.code.clone(),
        message: e.message.clone(),
    }
}

pub fn task(clock: &ClockRef, t: &sm::Task) -> api::TaskView {
    api::TaskView {
        id: t.id.0,
        queue: t.queue.to_string(),
        kind: t.kind.to_string(),
        payload: json_value(&t.payload),
        priority: t.priority,
        state: state(t.state),
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        lease: t.lease.as_ref().map(|l| api::LeaseView {
            worker: l.worker.clone(),
            token: l.token.0,
            lease_ms: l.lease_ms,
            expires_at_ms: clock.to_wall_ms(l.expires_cluster_ms),
        }),
        cancel_requested: t.rare.cancel_requested,
        result: t.rare.result.as_deref().map(json_value),
        error: t.rare.error.as_deref().map(task_error),
        progress: t.rare.progress.as_deref().map(json_value),
        group: t.rare.group.clone(),
        idempotency_key: t.idempotency_key.as_deref().map(str::to_owned),
        coalesce_key: t.rare.coalesce_key.clone(),
        joined: t.rare.joined,
        created_at_ms: t.created_wall_ms,
        // A relative delay waits on cluster time: shown as this node's wall estimate.
        run_at_ms: t
            .rare
            .run_at
            .map(|r| r.wall_estimate_ms(clock.wall_ms, clock.cluster_ms)),
        finished_at_ms: t.rare.finished_wall_ms,
    }
}

/// The wire name of a state: one match, so a new state fails to compile here first.
pub fn state(s: sm::TaskState) -> api::TaskState {
    match s {
        sm::TaskState::Scheduled => api::TaskState::Scheduled,
        sm::TaskState::Queued => api::TaskState::Queued,
        sm::TaskState::Running => api::TaskState::Running,
        sm::TaskState::Succeeded => api::TaskState::Succeeded,
        sm::TaskState::Failed => api::TaskState::Failed,
        sm::TaskState::Cancelled => api::TaskState::Cancelled,
        sm::TaskState::Expired => api::TaskState::Expired,
    }
}

/// The state machine's state for a wire name (list filters).
pub fn state_from_wire(s: api::TaskState) -> sm::TaskState {
    match s {
        api::TaskState::Scheduled => sm::TaskState::Scheduled,
        api::TaskState::Queued => sm::TaskState::Queued,
        api::TaskState::Running => sm::TaskState::Running,
        api::TaskState::Succeeded => sm::TaskState::Succeeded,
        api::TaskState::Failed => sm::TaskState::Failed,
        api::TaskState::Cancelled => sm::TaskState::Cancelled,
        api::TaskState::Expired => sm::TaskState::Expired,
    }
}

pub fn event_name(k: &sm::EventKind) -> api::EventName {
    match k {
        sm::EventKind::Enqueued => api::EventName::Enqueued,
        sm::EventKind::Joined => api::EventName::Joined,
        sm::EventKind::Scheduled { .. } => api::EventName::Scheduled,
        sm::EventKind::Claimed { .. } => api::EventName::Claimed,
        sm::EventKind::Progress { .. } => api::EventName::Progress,
        sm::EventKind::Released { .. } => api::EventName::Released,
        sm::EventKind::AttemptFailed { .. } => api::EventName::AttemptFailed,
        sm::EventKind::Succeeded { .. } => api::EventName::Succeeded,
        sm::EventKind::Failed { .. } => api::EventName::Failed,
        sm::EventKind::CancelRequested => api::EventName::CancelRequested,
        sm::EventKind::Cancelled => api::EventName::Cancelled,
        sm::EventKind::Expired { .. } => api::EventName::Expired,
        sm::EventKind::Requeued => api::EventName::Requeued,
    }
}

pub fn event(
    task: sm::TaskId,
    queue: &str,
    group: Option<&str>,
    state: Option<sm::TaskState>,
    e: &sm::Event,
) -> api::EventView {
    let mut v = api::EventView {
        task: task.0,
        queue: queue.to_owned(),
        state: state.map(self::state),
        event: event_name(&e.kind),
        at_ms: e.wall_ms,
        group: group.map(str::to_owned),
        worker: None,
        token: None,
        attempt: None,
        progress: None,
        error: None,
        run_at_ms: None,
    };
    match &e.kind {
        sm::EventKind::Claimed {
            worker,
            token,
            attempt,
        } => {
            v.worker = Some(worker.clone());
            v.token = Some(token.0);
            v.attempt = Some(*attempt);
        }
        sm::EventKind::Progress { token, progress } => {
            v.token = Some(token.0);
            v.progress = Some(json_value(progress));
        }
        sm::EventKind::Released { token } | sm::EventKind::Succeeded { token } => {
            v.token = Some(token.0)
        }
        sm::EventKind::AttemptFailed { token, error } => {
            v.token = Some(token.0);
            v.error = Some(task_error(error));
        }
        sm::EventKind::Failed { error } | sm::EventKind::Expired { error } => {
            v.error = Some(task_error(error))
        }
        sm::EventKind::Scheduled { run_at_wall_ms } => v.run_at_ms = Some(*run_at_wall_ms),
        sm::EventKind::Enqueued
        | sm::EventKind::Joined
        | sm::EventKind::CancelRequested
        | sm::EventKind::Cancelled
        | sm::EventKind::Requeued => {}
    }
    v
}

pub fn stream_event(e: &sm::TaskEvent) -> api::EventView {
    event(
        e.task,
        &e.queue,
        e.group.as_deref(),
        Some(e.state),
        &e.event,
    )
}

pub fn claim(r: &api::ClaimRequest) -> sm::Claim {
    sm::Claim {
        worker: r.worker.clone(),
        queues: r.queues.clone(),
        kinds: r.kinds.clone(),
        max: r.max,
        lease_ms: r.lease_ms,
        min_priority: r.min_priority,
    }
}

pub fn claimed(clock: &ClockRef, c: &sm::ClaimedTask) -> api::ClaimedTask {
    api::ClaimedTask {
        id: c.id.0,
        queue: c.queue.clone(),
        kind: c.kind.clone(),
        payload: json_value(&c.payload),
        priority: c.priority,
        attempt: c.attempt,
        max_attempts: c.max_attempts,
        group: c.group.clone(),
        lease: api::LeaseGrant {
            token: c.token.0,
            lease_ms: c.lease_ms,
            expires_at_ms: clock.to_wall_ms(c.expires_cluster_ms),
        },
    }
}

pub fn heartbeat_ack(clock: &ClockRef, a: &sm::HeartbeatAck) -> api::HeartbeatResponse {
    api::HeartbeatResponse {
        task: a.task.0,
        lease_ms: a.lease_ms,
        expires_at_ms: clock.to_wall_ms(a.expires_cluster_ms),
        cancel_requested: a.cancel_requested,
    }
}

pub fn lease_beat(b: &api::LeaseBeat) -> sm::LeaseBeat {
    sm::LeaseBeat {
        task: sm::TaskId(b.task),
        token: sm::Token(b.token),
        progress: b.progress.as_ref().map(json_text),
        lease_ms: b.lease_ms,
    }
}

/// `oldest_queued_at_ms`: the wall-clock estimate of when the longest-waiting queued
/// task became ready.
pub fn queue(
    name: &str,
    paused: bool,
    counts: &sm::Counts,
    oldest_queued_at_ms: Option<u64>,
) -> api::QueueView {
    api::QueueView {
        name: name.to_owned(),
        paused,
        counts: sm::TaskState::ALL
            .iter()
            .map(|s| (state(*s), counts.get(*s)))
            .collect(),
        oldest_queued_at_ms,
    }
}

pub fn broadcast(m: &sm::BroadcastMessage) -> api::BroadcastView {
    api::BroadcastView {
        seq: m.seq,
        channel: m.channel.clone(),
        message: json_value(&m.message),
        at_ms: m.wall_ms,
    }
}
