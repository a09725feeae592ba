//! `compose`: forerunner's composite jobs. Several handlers run in series on one worker,
//! under the one lease (one fencing token, one attempt) of the task that started them.

use std::sync::Arc;

use serde_json::{json, Value};

use super::context::TaskContext;
use super::handler::{Handler, IntoHandler, TaskError};

/// A handler that runs `steps` in order, each getting the previous step's result as its
/// payload (the first gets the task's payload); the last result is the task's. The first
/// error ends the chain and fails the attempt, so a retry runs every step again: steps
/// should be idempotent, or use `ctx.token()` to fence their writes.
///
/// Between steps it stops if the cancellation token fired, and reports
/// `{"step": k, "of": n}` as progress (sent on the next heartbeat).
pub fn compose<I>(steps: I) -> Handler
where
    I: IntoIterator,
    I::Item: IntoHandler,
{
    let steps: Arc<Vec<Handler>> =
        Arc::new(steps.into_iter().map(IntoHandler::into_handler).collect());
    Handler::new(move |ctx: TaskContext, payload: Value| {
        let steps = steps.clone();
        async move {
            let n = steps.len();
            let mut value = payload;
            for (i, step) in steps.iter().enumerate() {
                if ctx.is_cancelled() {
                    return Err(TaskError::retryable(format!(
                        "cancelled before step {} of {n}",
                        i + 1
                    ))
                    .with_code("cancelled"));
                }
                value = step.call(ctx.clone(), value).await.map_err(|mut e| {
                    e.message = format!("step {} of {n}: {}", i + 1, e.message);
                    e
                })?;
                // Cannot be too large: it is a tiny object.
                let _ = ctx.progress(json!({"step": i + 1, "of": n}));
            }
            Ok(value)
        }
    })
}
