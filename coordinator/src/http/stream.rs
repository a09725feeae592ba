//! Live streams as server-sent events: one task's history then its new events, every
//! task's lifecycle events, and broadcast messages. Streams read this node's applied
//! state (followers apply too), so any node can serve them.
//!
//! Per-task and broadcast streams follow the applied state (woken by each apply) and
//! number their events, so nothing is sent twice and a client can resume with
//! `Last-Event-ID`. The all-tasks stream follows the apply hook's broadcast channel; a
//! subscriber too slow for `EVENT_CHANNEL_CAPACITY` gets a `lagged` event saying how many
//! it missed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use taskswarm_state_machine::TaskId;
use tokio::sync::broadcast::error::RecvError;

use taskswarm_api as api;

use super::convert;
use super::error::ApiError;
use super::params::{path_id, query};
use crate::raft::Node;

/// Idle streams send a comment this often so proxies keep them open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// An event stream that ends when the node begins to stop (clients reconnect elsewhere
/// with `Last-Event-ID`), so it never holds up the node's graceful stop.
fn sse<S: Stream<Item = Event> + Send + 'static>(node: &Arc<Node>, events: S) -> Response {
    let node = Arc::clone(node);
    let events = events.take_until(async move { node.stopped().await });
    Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// `GET /v1/tasks/{id}/events` with `Accept: text/event-stream`: the history, then each
/// new event, until the task is finished (or dropped). Event ids count the task's events
/// from 1.
pub async fn task_events(
    node: Arc<Node>,
    id: TaskId,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if node.state().task(id).is_none() {
        return Err(ApiError::NotFound(format!("task {id} not found")));
    }
    let sent = last_event_id(headers).unwrap_or(0);
    let applied = node.applied();
    let stop = Arc::clone(&node);
    let events = stream::unfold(
        (node, applied, sent, false),
        move |(node, mut applied, mut sent, done)| async move {
            if done {
                return None;
            }
            loop {
                let (batch, finished) = {
                    let sm = node.state();
                    let task = sm.task(id)?;
                    let first_seq = task.rare.events_dropped + 1;
                    let batch: Vec<Event> = task
                        .events()
                        .enumerate()
                        .map(|(i, e)| (first_seq + i as u64, e))
                        .filter(|(seq, _)| *seq > sent)
                        .map(|(seq, e)| {
                            let view = convert::event(
                                id,
                                &task.queue,
                                task.rare.group.as_deref(),
                                None,
                                &e,
                            );
                            Event::default()
                                .id(seq.to_string())
                                .event(view.event.as_str())
                                .json_data(&view)
                                .expect("serializable")
                        })
                        .collect();
                    sent = sent.max(task.rare.events_dropped + task.events_len() as u64);
                    (batch, task.state.is_finished())
                };
                if !batch.is_empty() || finished {
                    return Some((stream::iter(batch), (node, applied, sent, finished)));
                }
                if applied.changed().await.is_err() {
                    return None;
                }
            }
        },
    )
    .flatten();
    Ok(sse(&stop, events))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AllEventsParams {
    queue: Option<String>,
    group: Option<String>,
}

/// `GET /v1/events?queue=&group=`: every lifecycle event applied from now on.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(AllEventsParams), responses((status = 200, description = "Server-sent events: every lifecycle event this node applies from now on, one EventView (JSON, with `state`) per `data:`; a subscriber that falls behind gets an event named `lagged` whose data is the number of events it missed", content((api::EventView = "text/event-stream")))))]
pub async fn all_events(
    State(node): State<Arc<Node>>,
    params: Result<Query<AllEventsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    let rx = node.subscribe();
    let events = stream::unfold(rx, move |mut rx| {
        let (queue, group) = (p.queue.clone(), p.group.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if queue.as_ref().is_some_and(|q| *q != e.queue)
                            || group.as_ref().is_some_and(|g| Some(g) != e.group.as_ref())
                        {
                            continue;
                        }
                        let view = convert::stream_event(&e);
                        let event = Event::default()
                            .event(view.event.as_str())
                            .json_data(&view)
                            .expect("serializable");
                        return Some((event, rx));
                    }
                    Err(RecvError::Lagged(n)) => {
                        return Some((
                            Event::default()
                                .event("lagged")
                                .data(format!("{{\"missed\":{n}}}")),
                            rx,
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(sse(&node, events))
}

/// `GET /v1/broadcast` with `Accept: text/event-stream`: retained messages after
/// `Last-Event-ID` (or `?after=`), then each new one. Event ids are sequence numbers.
pub fn broadcasts(node: Arc<Node>, after: u64) -> Response {
    let applied = node.applied();
    let stop = Arc::clone(&node);
    let events = stream::unfold(
        (node, applied, after),
        |(node, mut applied, mut after)| async move {
            loop {
                let batch: Vec<Event> = node
                    .state()
                    .broadcasts_after(after)
                    .map(|m| {
                        after = m.seq;
                        let view = convert::broadcast(m);
                        Event::default()
                            .id(m.seq.to_string())
                            .event(m.channel.clone())
                            .json_data(&view)
                            .expect("serializable")
                    })
                    .collect();
                if !batch.is_empty() {
                    return Some((stream::iter(batch), (node, applied, after)));
                }
                if applied.changed().await.is_err() {
                    return None;
                }
            }
        },
    )
    .flatten();
    sse(&stop, events)
}

/// Dispatch helper for `GET /v1/tasks/{id}/events`.
pub async fn task_events_route(
    node: Arc<Node>,
    id: Result<Path<u64>, PathRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    task_events(node, TaskId(path_id(id)?), headers).await
}

pub fn resume_point(headers: &HeaderMap, after: u64) -> u64 {
    last_event_id(headers).unwrap_or(after)
}
