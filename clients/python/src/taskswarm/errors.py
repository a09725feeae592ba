"""The client's error model.

Every call either returns, or raises exactly one of three kinds of failure, chosen by
what the answer (or its absence) proves about the cluster's state:

- :class:`RejectedError`: the cluster refused the request; nothing changed. Carries the
  server's ``code`` (``invalid_request``, ``payload_too_large``, ``lease_lost``, ...),
  its ``message`` and the HTTP ``status``.
- :class:`IndeterminateError`: the request may or may not have taken effect (a timeout
  or a dropped connection after sending, ``503 indeterminate``). Retry an idempotent
  request, or read the task, to find out.
- :class:`UnavailableError`: no node could take the request within the retry budget;
  nothing was written.

A finished task that did not succeed is not a transport failure: ``TaskHandle.result()``
raises :class:`TaskFailedError` for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .types import TaskView

__all__ = [
    "TaskswarmError",
    "RejectedError",
    "IndeterminateError",
    "UnavailableError",
    "ProtocolError",
    "TaskFailedError",
    "codes",
]


class codes:
    """Error codes clients branch on (``api/src/error.rs`` and the state machine's)."""

    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    LEASE_LOST = "lease_lost"
    TASK_FINISHED = "task_finished"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    NOT_REQUEUEABLE = "not_requeueable"
    QUEUE_FULL = "queue_full"
    TOO_MANY_QUEUES = "too_many_queues"
    NOT_LEADER = "not_leader"
    NO_LEADER = "no_leader"
    NO_QUORUM = "no_quorum"
    STORAGE_FULL = "storage_full"
    INDETERMINATE = "indeterminate"
    UNAVAILABLE = "unavailable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"


class TaskswarmError(Exception):
    """Base class of every error this library raises."""


class RejectedError(TaskswarmError):
    """The cluster refused the request; nothing changed."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        *,
        leader_id: Optional[int] = None,
        leader_addr: Optional[str] = None,
    ) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.code = code
        self.message = message
        self.status = status
        self.leader_id = leader_id
        self.leader_addr = leader_addr

    @property
    def is_lease_lost(self) -> bool:
        """The cluster says this lease is gone: stop working on the task."""
        return self.code == codes.LEASE_LOST

    @classmethod
    def from_body(cls, body: Any, status: int) -> "RejectedError":
        """From an ``{"error": {...}}`` body (or an item of a batch answer)."""
        detail = body.get("error") if isinstance(body, dict) else None
        if not isinstance(detail, dict):
            return cls("http_error", str(body)[:200], status)
        return cls(
            str(detail.get("code", "unknown")),
            str(detail.get("message", "")),
            status,
            leader_id=detail.get("leader_id"),
            leader_addr=detail.get("leader_addr"),
        )


class IndeterminateError(TaskswarmError):
    """The request may or may not have taken effect."""


class UnavailableError(TaskswarmError):
    """No node could take the request within the retry budget; nothing was written."""

    def __init__(self, message: str, elapsed: float = 0.0) -> None:
        super().__init__(f"unavailable after {elapsed:.1f}s: {message}")
        self.message = message
        self.elapsed = elapsed


class ProtocolError(TaskswarmError):
    """The server answered something this client does not understand."""


class TaskFailedError(TaskswarmError):
    """A task finished without succeeding: ``failed`` (dead-lettered), ``cancelled`` or
    ``expired``. ``task`` is its final view."""

    def __init__(self, task: "TaskView") -> None:
        err = task.error
        detail = f"{err.code}: {err.message}" if err is not None else task.state
        super().__init__(f"task {task.id} ended {task.state} ({detail})")
        self.task = task
        self.state = task.state
        self.code: Optional[str] = err.code if err is not None else None
        self.message: str = err.message if err is not None else ""
