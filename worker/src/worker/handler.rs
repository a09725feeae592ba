//! What a handler is (`async fn(ctx, payload) -> Result<Value, TaskError>`) and how its
//! error tells the cluster whether to retry.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::context::TaskContext;

/// What a handler returns: the task's result, or why this attempt failed.
pub type HandlerResult = Result<Value, TaskError>;

/// Why an attempt failed. Becomes `POST /v1/tasks/{id}/fail`: `retryable` and
/// `retry_after_ms` decide whether (and when) the task runs again, `code` is what
/// producers see in the dead-letter set (`handler_error` when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub message: String,
    pub code: Option<String>,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
}

impl TaskError {
    /// A failure worth another attempt (the task's `max_attempts` still bounds it).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            retryable: true,
            retry_after_ms: None,
        }
    }

    /// A failure no retry can fix (bad input): the task goes to the dead-letter set.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            retryable: false,
            retry_after_ms: None,
        }
    }

    /// Sets the snake_case error code producers see.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Retry no sooner than `delay` (overrides the task's backoff).
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after_ms = Some(delay.as_millis().min(u128::from(u64::MAX)) as u64);
        self
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TaskError {}

/// A bare message is retryable: the safe default when the handler did not say.
impl From<String> for TaskError {
    fn from(message: String) -> Self {
        TaskError::retryable(message)
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> Self {
        TaskError::retryable(message)
    }
}

/// I/O fails for reasons that pass (a network blip): retryable.
impl From<std::io::Error> for TaskError {
    fn from(e: std::io::Error) -> Self {
        TaskError::retryable(e.to_string()).with_code("io_error")
    }
}

/// A payload that does not decode will not decode next time either: permanent.
impl From<serde_json::Error> for TaskError {
    fn from(e: serde_json::Error) -> Self {
        TaskError::permanent(e.to_string()).with_code("bad_payload")
    }
}

/// A type-erased handler, cheap to clone (one per registered kind, and per `compose` step).
#[derive(Clone)]
pub struct Handler(
    Arc<dyn Fn(TaskContext, Value) -> BoxFuture<'static, HandlerResult> + Send + Sync>,
);

impl Handler {
    pub fn new<F, Fut>(f: F) -> Handler
    where
        F: Fn(TaskContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler(Arc::new(move |ctx, payload| Box::pin(f(ctx, payload))))
    }

    /// Runs the handler on one payload.
    pub fn call(&self, ctx: TaskContext, payload: Value) -> BoxFuture<'static, HandlerResult> {
        (self.0)(ctx, payload)
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

/// Anything `Worker::handler` and `compose` accept: an `async fn(ctx, payload)`, a closure
/// returning a future, or a `Handler` (e.g. one built by `compose`).
pub trait IntoHandler {
    fn into_handler(self) -> Handler;
}

impl IntoHandler for Handler {
    fn into_handler(self) -> Handler {
        self
    }
}

impl<F, Fut> IntoHandler for F
where
    F: Fn(TaskContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::new(self)
    }
}
