"""Request and response types of the v1 HTTP API (``api/src/*.rs``).

Field names are the JSON names. Answers are parsed leniently: unknown fields a newer
server adds are ignored (kept in ``raw`` where it matters), so an old client keeps working.
Times ending in ``_at_ms`` are wall-clock milliseconds since the Unix epoch as seen by
the leader; durations end in ``_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = [
    "Backoff",
    "Task",
    "Enqueued",
    "LeaseView",
    "TaskErrorView",
    "TaskView",
    "Event",
    "Gap",
    "EventHistory",
    "TaskPage",
    "LeaseGrant",
    "ClaimedTask",
    "StateResult",
    "HeartbeatAck",
    "QueueView",
    "BroadcastMessage",
    "Member",
    "ClusterStatus",
    "FINISHED_STATES",
]

#: States a task never leaves (except ``requeue`` of failed/expired ones).
FINISHED_STATES = frozenset({"succeeded", "failed", "cancelled", "expired"})


def _opt(d: Dict[str, Any], key: str) -> Any:
    return d.get(key)


@dataclass
class Backoff:
    """Retry backoff: ``initial_ms``, multiplied by ``multiplier`` each attempt, capped at
    ``max_ms``."""

    initial_ms: int
    multiplier: float
    max_ms: int

    def to_json(self) -> Dict[str, Any]:
        return {"initial_ms": self.initial_ms, "multiplier": self.multiplier, "max_ms": self.max_ms}


@dataclass
class Task:
    """What to enqueue (``POST /v1/tasks``). Only ``kind`` is required.

    ``priority``: higher runs first (-1000..1000). ``delay_ms``: not before this much
    cluster time from now; ``run_at_ms``: not before this wall time. ``max_attempts``,
    ``backoff``: retries. ``lease_ms``: the default lease of a claim. The three timeouts:
    ``schedule_to_start_ms`` (claimed within), ``start_to_close_ms`` (one attempt within),
    ``schedule_to_close_ms`` (finished within). ``idempotency_key``: a retried enqueue with
    the same key returns the first task (the client makes one up when absent).
    ``coalesce_key``: joins an unfinished task with the same key. ``group``: a work group.
    """

    kind: str
    payload: Any = None
    queue: str = "default"
    priority: int = 0
    delay_ms: Optional[int] = None
    run_at_ms: Optional[int] = None
    max_attempts: Optional[int] = None
    backoff: Optional[Backoff] = None
    lease_ms: Optional[int] = None
    schedule_to_start_ms: Optional[int] = None
    start_to_close_ms: Optional[int] = None
    schedule_to_close_ms: Optional[int] = None
    idempotency_key: Optional[str] = None
    coalesce_key: Optional[str] = None
    group: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "queue": self.queue,
            "kind": self.kind,
            "payload": self.payload,
            "priority": self.priority,
        }
        for name in (
            "idempotency_key",
            "coalesce_key",
            "run_at_ms",
            "delay_ms",
            "max_attempts",
            "lease_ms",
            "schedule_to_start_ms",
            "start_to_close_ms",
            "schedule_to_close_ms",
            "group",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.backoff is not None:
            b = self.backoff
            out["backoff"] = b.to_json() if isinstance(b, Backoff) else dict(b)
        return out


@dataclass
class Enqueued:
    """Answer of an enqueue: ``created`` is false when the idempotency key matched an
    earlier task; ``coalesced`` when it joined a task with the same coalesce key."""

    id: int
    created: bool
    coalesced: bool
    state: str

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Enqueued":
        return cls(int(d["id"]), bool(d["created"]), bool(d.get("coalesced", False)), str(d["state"]))


@dataclass
class LeaseView:
    worker: str
    token: int
    lease_ms: int
    expires_at_ms: int

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "LeaseView":
        return cls(str(d["worker"]), int(d["token"]), int(d["lease_ms"]), int(d["expires_at_ms"]))


@dataclass
class TaskErrorView:
    code: str
    message: str

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "TaskErrorView":
        return cls(str(d.get("code", "")), str(d.get("message", "")))


@dataclass
class TaskView:
    """``GET /v1/tasks/{id}``. ``state``: scheduled, queued, running, succeeded, failed,
    cancelled or expired."""

    id: int
    queue: str
    kind: str
    payload: Any
    priority: int
    state: str
    attempt: int
    max_attempts: int
    lease: Optional[LeaseView]
    cancel_requested: bool
    result: Any
    error: Optional[TaskErrorView]
    progress: Any
    group: Optional[str]
    idempotency_key: Optional[str]
    coalesce_key: Optional[str]
    joined: int
    created_at_ms: int
    run_at_ms: Optional[int]
    finished_at_ms: Optional[int]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "TaskView":
        lease = d.get("lease")
        error = d.get("error")
        return cls(
            id=int(d["id"]),
            queue=str(d["queue"]),
            kind=str(d["kind"]),
            payload=d.get("payload"),
            priority=int(d.get("priority", 0)),
            state=str(d["state"]),
            attempt=int(d.get("attempt", 0)),
            max_attempts=int(d.get("max_attempts", 0)),
            lease=LeaseView.from_json(lease) if lease else None,
            cancel_requested=bool(d.get("cancel_requested", False)),
            result=d.get("result"),
            error=TaskErrorView.from_json(error) if error else None,
            progress=d.get("progress"),
            group=_opt(d, "group"),
            idempotency_key=_opt(d, "idempotency_key"),
            coalesce_key=_opt(d, "coalesce_key"),
            joined=int(d.get("joined", 0)),
            created_at_ms=int(d.get("created_at_ms", 0)),
            run_at_ms=_opt(d, "run_at_ms"),
            finished_at_ms=_opt(d, "finished_at_ms"),
        )


@dataclass
class Event:
    """A lifecycle event: ``event`` is one of enqueued, joined, scheduled, claimed,
    progress, released, attempt_failed, succeeded, failed, cancel_requested, cancelled,
    expired, requeued. ``state`` (the task's state after it) is set on the live
    ``events()`` stream only. ``seq`` is the event's number in its task's history, on
    ``task_events()`` streams."""

    task: int
    queue: str
    event: str
    at_ms: int
    state: Optional[str] = None
    group: Optional[str] = None
    worker: Optional[str] = None
    token: Optional[int] = None
    attempt: Optional[int] = None
    progress: Any = None
    error: Optional[TaskErrorView] = None
    run_at_ms: Optional[int] = None
    seq: Optional[int] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any], seq: Optional[int] = None) -> "Event":
        error = d.get("error")
        return cls(
            task=int(d["task"]),
            queue=str(d["queue"]),
            event=str(d["event"]),
            at_ms=int(d.get("at_ms", 0)),
            state=_opt(d, "state"),
            group=_opt(d, "group"),
            worker=_opt(d, "worker"),
            token=_opt(d, "token"),
            attempt=_opt(d, "attempt"),
            progress=d.get("progress"),
            error=TaskErrorView.from_json(error) if error else None,
            run_at_ms=_opt(d, "run_at_ms"),
            seq=seq,
        )


@dataclass
class Gap:
    """Yielded by ``events(..., gaps=True)`` where events may be missing: ``lagged`` (the
    subscriber was too slow; ``missed`` says how many) or ``reconnected`` (the stream
    moved to another node; the all-tasks stream cannot resume, so events in between are
    lost)."""

    reason: str
    missed: Optional[int] = None


@dataclass
class EventHistory:
    """``GET /v1/tasks/{id}/events``: stored events; ``dropped`` older ones are gone."""

    events: List[Event]
    dropped: int


@dataclass
class TaskPage:
    """A page of ``GET /v1/tasks``; pass ``next`` as ``after`` to continue."""

    tasks: List[TaskView]
    next: Optional[int]


@dataclass
class LeaseGrant:
    """``token`` is the fencing token. Count ``lease_ms`` from when the claim was sent."""

    token: int
    lease_ms: int
    expires_at_ms: int

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "LeaseGrant":
        return cls(int(d["token"]), int(d["lease_ms"]), int(d["expires_at_ms"]))


@dataclass
class ClaimedTask:
    id: int
    queue: str
    kind: str
    payload: Any
    priority: int
    attempt: int
    max_attempts: int
    group: Optional[str]
    lease: LeaseGrant

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ClaimedTask":
        return cls(
            id=int(d["id"]),
            queue=str(d["queue"]),
            kind=str(d["kind"]),
            payload=d.get("payload"),
            priority=int(d.get("priority", 0)),
            attempt=int(d.get("attempt", 1)),
            max_attempts=int(d.get("max_attempts", 1)),
            group=_opt(d, "group"),
            lease=LeaseGrant.from_json(d["lease"]),
        )


@dataclass
class StateResult:
    """Reply of cancel, requeue, complete, fail and release: the state afterwards.
    ``duplicate``: a complete repeated with its token. ``next``: tasks claimed along with
    a complete (``complete_and_claim``)."""

    id: int
    state: str
    duplicate: bool = False
    next: Optional[List[ClaimedTask]] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "StateResult":
        nxt = d.get("next")
        return cls(
            int(d["id"]),
            str(d["state"]),
            bool(d.get("duplicate", False)),
            [ClaimedTask.from_json(t) for t in nxt] if nxt is not None else None,
        )


@dataclass
class HeartbeatAck:
    """``cancel_requested``: the task was cancelled; stop, then release or fail it."""

    task: int
    lease_ms: int
    expires_at_ms: int
    cancel_requested: bool

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "HeartbeatAck":
        return cls(int(d["task"]), int(d["lease_ms"]), int(d["expires_at_ms"]), bool(d["cancel_requested"]))


@dataclass
class QueueView:
    name: str
    paused: bool
    counts: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "QueueView":
        return cls(str(d["name"]), bool(d["paused"]), {str(k): int(v) for k, v in d.get("counts", {}).items()})


@dataclass
class BroadcastMessage:
    seq: int
    channel: str
    message: Any
    at_ms: int

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "BroadcastMessage":
        return cls(int(d["seq"]), str(d["channel"]), d.get("message"), int(d.get("at_ms", 0)))


@dataclass
class Member:
    id: int
    addr: str
    voter: bool


@dataclass
class ClusterStatus:
    """``GET /v1/cluster`` of the node that answered."""

    node_id: int
    leader_id: Optional[int]
    term: int
    last_log_index: int
    applied_index: int
    snapshot_index: int
    purged_index: int
    members: List[Member]
    state_hash: Optional[str] = None
    wall_ms: Optional[int] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ClusterStatus":
        return cls(
            node_id=int(d["node_id"]),
            leader_id=_opt(d, "leader_id"),
            term=int(d.get("term", 0)),
            last_log_index=int(d.get("last_log_index", 0)),
            applied_index=int(d.get("applied_index", 0)),
            snapshot_index=int(d.get("snapshot_index", 0)),
            purged_index=int(d.get("purged_index", 0)),
            members=[Member(int(m["id"]), str(m["addr"]), bool(m["voter"])) for m in d.get("members", [])],
            state_hash=_opt(d, "state_hash"),
            wall_ms=_opt(d, "wall_ms"),
        )
