"""The worker runtime: handlers by kind, slots (with reserved priority bands), long-poll
claims, one batched heartbeat for every lease, cancellation, graceful shutdown.

It mirrors the Rust runtime (``worker/src/worker/``):

- Each slot band (the general slots, and each ``reserve=(min_priority, n)`` band) has its
  own claim loop. A loop takes all free slots of its band *before* it sends a long-poll
  claim for that many tasks, and gives back those the claim did not fill: a claim in
  flight is never dropped (the cluster may lease tasks to an answer nobody reads).
- A lease's local deadline is counted from when the claim (or the renewing heartbeat)
  was *sent*: the cluster started it later, so the local deadline always passes first.
- One ``POST /v1/heartbeat`` every ``lease / 3`` renews every lease the worker holds,
  carries each handler's latest progress, and brings back cancels and lost leases.
- ``ctx.cancelled`` (an ``asyncio.Event``) is set when the task is cancelled, its lease is
  lost (the cluster refused a heartbeat) or ran out locally, or the shutdown grace ends.
  A handler that does not return within ``handler_stop_wait`` of it is cancelled
  (``CancelledError`` at its next ``await``).
- The attempt ends with exactly one call: complete (with the fencing token; retried
  through unknown outcomes, which is safe), fail (an exception: retryable unless it is a
  ``PermanentError``), or release (``ctx.release()``, a cancel, shutdown). A result whose
  lease is gone is dropped: completing could race a second attempt, and the fencing token
  would refuse it anyway.

Delivery is at least once: a handler may run again after its lease was lost. Pass
``ctx.token`` to downstream stores so they refuse a stale run's writes.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import json
import logging
import os
import secrets
import signal
import socket
from dataclasses import asdict, dataclass
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from .client import AsyncClient, _claim_body
from .errors import (
    IndeterminateError,
    ProtocolError,
    RejectedError,
    TaskswarmError,
    UnavailableError,
    codes,
)
from .types import ClaimedTask, HeartbeatAck, StateResult

log = logging.getLogger("taskswarm.worker")

__all__ = [
    "Worker",
    "TaskContext",
    "PermanentError",
    "RetryableError",
    "ReleaseTask",
    "CancelReason",
    "WorkerStats",
    "limits",
]


class limits:
    """Every limit and default of the worker runtime (several mirror a server limit)."""

    SLOTS_DEFAULT = 4
    #: Most slots (reserved included): one heartbeat request always renews every lease.
    SLOTS_MAX = 1024
    HEARTBEAT_BATCH_MAX = 1024
    KINDS_MAX = 64
    QUEUES_MAX = 32
    #: Most tasks one claim asks for (the server's ``CLAIM_MAX``).
    CLAIM_MAX = 64
    NAME_BYTES_MAX = 128
    PRIORITY_MIN = -1000
    PRIORITY_MAX = 1000
    #: Largest progress value in bytes of JSON text (the server's ``PAYLOAD_BYTES_MAX``).
    PROGRESS_BYTES_MAX = 256 * 1024
    #: Longest error message sent with a fail (longer ones are cut).
    ERROR_MESSAGE_MAX = 8 * 1024
    LEASE_MS_DEFAULT = 30_000
    LEASE_MS_MIN = 100
    LEASE_MS_MAX = 60 * 60 * 1000
    #: Heartbeats go out every ``lease / HEARTBEAT_DIVISOR``: two may be lost.
    HEARTBEAT_DIVISOR = 3
    HEARTBEAT_INTERVAL_MIN = 0.03
    HEARTBEAT_INTERVAL_MAX = 10.0
    #: Longest claim long-poll (also capped at a third of the lease), seconds.
    CLAIM_WAIT_MAX = 5.0
    CLAIM_BACKOFF_INITIAL = 0.05
    CLAIM_BACKOFF_MAX = 2.0
    #: Time spent retrying a complete, fail or release whose outcome stays unknown
    #: before the worker gives up and lets the lease expire, seconds.
    END_CALL_BUDGET = 120.0
    END_BACKOFF_INITIAL = 0.05
    END_BACKOFF_MAX = 2.0
    SHUTDOWN_GRACE_DEFAULT = 30.0
    HANDLER_STOP_WAIT_DEFAULT = 5.0
    #: A claimed task whose local lease has less than ``lease / STALE_CLAIM_DIVISOR`` left
    #: when the claim's answer arrives is released unstarted.
    STALE_CLAIM_DIVISOR = 6
    #: Delay before a task of a kind this worker has no handler for runs again, ms.
    UNKNOWN_KIND_RELEASE_DELAY_MS = 1000


class CancelReason(str, enum.Enum):
    """Why ``ctx.cancelled`` was set. The first reason wins."""

    #: Someone cancelled the task (a heartbeat answer said so). The task is released
    #: when the handler returns, which ends it ``cancelled``.
    CANCEL_REQUESTED = "cancel_requested"
    #: The cluster refused a heartbeat for this lease (``lease_lost``, ``task_finished``):
    #: another attempt may run. The handler's result is dropped.
    LEASE_LOST = "lease_lost"
    #: No renewing heartbeat arrived before the local deadline. The result is dropped.
    LEASE_EXPIRED = "lease_expired"
    #: The worker's shutdown grace ended: the task is released (or completed, if the
    #: handler still returns a result).
    SHUTDOWN = "shutdown"

    @property
    def lease_gone(self) -> bool:
        return self in (CancelReason.LEASE_LOST, CancelReason.LEASE_EXPIRED)


class PermanentError(Exception):
    """Raise from a handler for a failure no retry can fix (bad input): the task goes to
    the dead-letter set (state ``failed``) now. ``code`` is what producers see
    (snake_case; ``handler_error`` when absent)."""

    def __init__(self, message: str = "", *, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RetryableError(Exception):
    """Raise from a handler for a failure worth another attempt, with an error ``code``
    and optionally ``retry_after_ms`` (overrides the task's backoff). Any other exception
    is retryable too (``max_attempts`` bounds it)."""

    def __init__(self, message: str = "", *, code: Optional[str] = None, retry_after_ms: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after_ms = retry_after_ms


class ReleaseTask(Exception):
    """Gives the task back without using an attempt, to run again after ``delay_ms`` (here
    or elsewhere). Made by ``ctx.release()``: ``raise ctx.release(5000)``."""

    def __init__(self, delay_ms: int = 0) -> None:
        super().__init__(f"released by the handler (delay {delay_ms} ms)")
        self.delay_ms = delay_ms


@dataclass
class WorkerStats:
    """A worker's counters. Every claimed task ends in exactly one of ``completed``,
    ``failed``, ``released``, ``cancelled``, ``lease_lost`` or ``abandoned``."""

    #: Tasks the cluster leased to this worker.
    claimed: int = 0
    #: Completes the cluster accepted.
    completed: int = 0
    #: Attempts reported failed (handler exceptions).
    failed: int = 0
    #: Tasks given back without using an attempt (``ctx.release``, shutdown, a claim
    #: answer that arrived too late).
    released: int = 0
    #: Tasks ended ``cancelled`` after a cancel reached their handler.
    cancelled: int = 0
    #: Attempts whose lease was lost or ran out locally: results dropped (or a complete
    #: refused with ``lease_lost``). Each may mean the task runs twice.
    lease_lost: int = 0
    #: Attempts whose end (complete, fail, release) stayed unknown past the retry budget.
    abandoned: int = 0
    heartbeats: int = 0
    heartbeat_errors: int = 0
    claim_errors: int = 0
    #: Handlers running right now.
    running: int = 0
    #: Claim requests waiting for their answer right now.
    claims_in_flight: int = 0


_NO_PROGRESS = object()


class _Lease:
    """The worker's view of one lease: local deadline, pending progress, cancellation."""

    def __init__(self, task: int, token: int, deadline: float) -> None:
        self.task = task
        self.token = token
        self.deadline = deadline
        self.cancelled = asyncio.Event()
        self.reason: Optional[CancelReason] = None
        self.progress: Any = _NO_PROGRESS
        self.release_delay_ms: Optional[int] = None
        #: The handler is done and the attempt is being ended: a heartbeat refusal is
        #: then expected news.
        self.ending = False

    def renew(self, sent_at: float, lease_s: float) -> None:
        # Never backwards: an old answer arriving late must not shorten it.
        self.deadline = max(self.deadline, sent_at + lease_s)

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def cancel(self, reason: CancelReason) -> None:
        if self.reason is None:
            self.reason = reason
        self.cancelled.set()

    @property
    def lease_gone(self) -> bool:
        return self.reason is not None and self.reason.lease_gone

    def take_progress(self) -> Any:
        p, self.progress = self.progress, _NO_PROGRESS
        return p

    def restore_progress(self, value: Any) -> None:
        if self.progress is _NO_PROGRESS:
            self.progress = value


class TaskContext:
    """One attempt of one task, as its handler sees it."""

    def __init__(self, worker: "Worker", task: ClaimedTask, lease: _Lease) -> None:
        self._worker = worker
        self._lease = lease
        self.id: int = task.id
        self.queue: str = task.queue
        self.kind: str = task.kind
        self.priority: int = task.priority
        #: This attempt's number, from 1.
        self.attempt: int = task.attempt
        self.max_attempts: int = task.max_attempts
        self.group: Optional[str] = task.group
        self.task = task

    def __repr__(self) -> str:
        return f"TaskContext(id={self.id}, kind={self.kind!r}, attempt={self.attempt}, token={self.token})"

    @property
    def worker_id(self) -> str:
        return self._worker.worker_id

    @property
    def client(self) -> AsyncClient:
        """The worker's client, e.g. to enqueue follow-up tasks."""
        return self._worker.client

    @property
    def token(self) -> int:
        """The fencing token of this attempt's lease. Pass it to any downstream store that
        should refuse a stale writer: a later attempt always holds a larger token."""
        return self._lease.token

    @property
    def cancelled(self) -> asyncio.Event:
        """Set when the task is cancelled, its lease is lost or runs out, or the worker's
        shutdown grace ends. The handler should then stop and return."""
        return self._lease.cancelled

    @property
    def cancel_reason(self) -> Optional[CancelReason]:
        return self._lease.reason

    def is_cancelled(self) -> bool:
        return self._lease.cancelled.is_set()

    @property
    def lease_deadline(self) -> float:
        """When the worker gives up on the lease unless a heartbeat renews it
        (``loop.time()`` clock)."""
        return self._lease.deadline

    def progress(self, value: Any) -> None:
        """Records progress; it is sent on the next heartbeat (a later call before then
        replaces it). ``ValueError`` if it is not JSON or larger than the server takes."""
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError) as e:
            raise ValueError(f"progress must be JSON: {e}") from None
        if size > limits.PROGRESS_BYTES_MAX:
            raise ValueError(f"progress of {size} bytes exceeds {limits.PROGRESS_BYTES_MAX}")
        self._lease.progress = value

    def release(self, delay_ms: int = 0) -> ReleaseTask:
        """Gives the task back without using an attempt, to run again after ``delay_ms``.
        Whatever the handler then returns or raises, the task is released; for clarity,
        ``raise ctx.release(...)``."""
        self._lease.release_delay_ms = max(0, int(delay_ms))
        return ReleaseTask(self._lease.release_delay_ms)

    async def sleep(self, seconds: float) -> bool:
        """Sleeps up to ``seconds``, or less if cancelled; returns whether cancelled."""
        try:
            await asyncio.wait_for(self._lease.cancelled.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        return self._lease.cancelled.is_set()


class _Handler:
    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a handler must be callable, not {fn!r}")
        self.fn = fn
        call = getattr(fn, "__call__", None)
        self.is_async = inspect.iscoroutinefunction(fn) or (
            call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)
        )
        self.wants_ctx = _positional_params(fn) >= 2

    async def call(self, payload: Any, ctx: TaskContext) -> Any:
        args = (payload, ctx) if self.wants_ctx else (payload,)
        if self.is_async:
            return await self.fn(*args)
        # A plain function may block: it runs in the loop's default thread pool. Its
        # ctx.cancelled can be polled with ctx.is_cancelled().
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(None, functools.partial(self.fn, *args))
        if inspect.isawaitable(out):
            out = await out
        return out


def _positional_params(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    n = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return 2
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


class _Watch:
    """Wakes waiters whenever something they watch may have changed."""

    def __init__(self) -> None:
        self._ev = asyncio.Event()

    def notify(self) -> None:
        self._ev.set()
        self._ev = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._ev.wait()


class _Band:
    def __init__(self, min_priority: Optional[int], capacity: int) -> None:
        self.min_priority = min_priority
        self.capacity = capacity
        self.used = 0


class _Slots:
    """Band 0: general slots; then one band per reserved ``min_priority`` (ascending)."""

    def __init__(self, general: int, reserved: Sequence[Tuple[int, int]]) -> None:
        self.bands = [_Band(None, general)]
        for min_p, n in sorted(reserved):
            last = self.bands[-1]
            if last.min_priority == min_p:
                last.capacity += n
            else:
                self.bands.append(_Band(min_p, n))
        self.watch = _Watch()

    def take_free(self, band: int) -> int:
        b = self.bands[band]
        got = min(b.capacity - min(b.used, b.capacity), limits.CLAIM_MAX)
        b.used += got
        if got:
            self.watch.notify()
        return got

    def has_free(self, band: int) -> bool:
        b = self.bands[band]
        return b.used < b.capacity

    def give_back(self, band: int, n: int) -> None:
        if n <= 0:
            return
        b = self.bands[band]
        assert b.used >= n, "slots given back were held"
        b.used -= n
        self.watch.notify()

    def idle(self) -> bool:
        return all(b.used == 0 for b in self.bands)


class _Ran:
    RETURNED = "returned"
    RAISED = "raised"
    ABORTED = "aborted"
    NO_HANDLER = "no_handler"

    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind = kind
        self.value = value


class _Ended:
    DONE = "done"
    LEASE_GONE = "lease_gone"
    REFUSED = "refused"
    GAVE_UP = "gave_up"

    def __init__(self, kind: str, value: Any = None, after_unknown: bool = False) -> None:
        self.kind = kind
        self.value = value
        self.after_unknown = after_unknown


class _CompleteBatcher:
    """Gathers the completions of all runners into ``POST /v1/complete`` requests, one in
    flight at a time: while one is out, the next fill up. Each item is idempotent with its
    token, so a whole batch whose outcome is unknown is retried by each runner as usual.

    For a Python worker the cost of a task is mostly the cost of its HTTP requests, so one
    request for many completions (and one claim for many slots) beats one fused
    complete-and-claim per task as soon as several tasks finish at once."""

    #: Most completions in one request (the server's ``COMPLETE_BATCH_MAX``).
    ITEMS_MAX = 1024
    #: Most result bytes in one request (the server takes 16 MiB bodies).
    BYTES_MAX = 8 * 1024 * 1024

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._pending: List[Tuple[int, int, Any, int, "asyncio.Future[StateResult]"]] = []
        self._wake = asyncio.Event()
        self._task: Optional["asyncio.Task[None]"] = None

    async def complete(self, tid: int, token: int, result: Any, size: int) -> StateResult:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        fut: "asyncio.Future[StateResult]" = asyncio.get_running_loop().create_future()
        self._pending.append((tid, token, result, size, fut))
        self._wake.set()
        return await fut

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _take(self) -> List[Tuple[int, int, Any, int, "asyncio.Future[StateResult]"]]:
        batch: List[Tuple[int, int, Any, int, "asyncio.Future[StateResult]"]] = []
        size = 0
        while self._pending and len(batch) < self.ITEMS_MAX:
            item = self._pending[0]
            if batch and size + item[3] > self.BYTES_MAX:
                break
            batch.append(self._pending.pop(0))
            size += item[3]
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [b for b in self._take() if not b[4].done()]
                if batch:
                    await self._send(batch)

    async def _send(self, batch: List[Tuple[int, int, Any, int, "asyncio.Future[StateResult]"]]) -> None:
        c = self._client
        try:
            answers = await c.complete_batch([(tid, token, result) for tid, token, result, _, _ in batch])
            if len(answers) != len(batch):
                raise ProtocolError(f"complete answered {len(answers)} results for {len(batch)} items")
        except RejectedError:
            # The request as a whole was refused (a server without the batch endpoint?):
            # give each item its own answer.
            await asyncio.gather(*(self._single(*b) for b in batch))
            return
        except asyncio.CancelledError:
            for *_, fut in batch:
                if not fut.done():
                    fut.cancel()
            raise
        except Exception as e:  # noqa: BLE001 - each runner decides what to do with it
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        for (*_, fut), answer in zip(batch, answers):
            if fut.done():
                continue
            if isinstance(answer, RejectedError):
                fut.set_exception(answer)
            else:
                fut.set_result(answer)

    async def _single(self, tid: int, token: int, result: Any, size: int, fut: "asyncio.Future[StateResult]") -> None:
        try:
            answer = await self._client.complete(tid, token, result)
        except Exception as e:  # noqa: BLE001
            if not fut.done():
                fut.set_exception(e)
        else:
            if not fut.done():
                fut.set_result(answer)


F = TypeVar("F", bound=Callable[..., Any])
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


def _check_name(what: str, name: str, charset: bool) -> None:
    if not name or len(name.encode()) > limits.NAME_BYTES_MAX:
        raise ValueError(f"{what} {name!r}: names are 1 to {limits.NAME_BYTES_MAX} bytes")
    if charset and not set(name) <= _NAME_CHARS:
        raise ValueError(f"{what} {name!r}: use only A-Z a-z 0-9 _ . : -")


def _default_worker_id() -> str:
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.")[:40] or "host"
    return f"py-{host}-{os.getpid()}-{secrets.token_hex(4)}"


class Worker:
    """Runs tasks of the registered kinds from ``queues``.

    ``slots``: general slots (tasks of any priority run at once up to this many).
    ``reserve``: extra slots only for tasks with ``priority >= min_priority``, as
    ``(min_priority, n)`` pairs (or a dict): a busy worker still takes urgent work.
    ``lease_ms``: the lease asked for on each claim; heartbeats go out every third of it
    (``heartbeat_interval`` seconds overrides: an interval longer than the lease lets every
    lease run out, only for tests of that path). ``claim_wait``: longest claim long-poll,
    seconds (capped at 5 s and a third of the lease). ``grace``: how long running handlers
    may finish after a shutdown starts, seconds. ``handler_stop_wait``: how long a handler
    may take to return once ``ctx.cancelled`` is set before it is cancelled, seconds.
    ``batch_completes`` (default): the completions of all slots go out together in
    ``POST /v1/complete`` requests, and freed slots are refilled by the (batched, long-poll)
    claims. ``claim_on_complete`` instead: each completion also claims its slot's next
    task in the same request and Raft command (the Rust runtime's default; one round trip
    per task, but one request per task too, which costs a Python process more CPU than the
    batches once several tasks finish at once).

    Handlers: ``@worker.handler("kind")`` on ``async def h(payload, ctx)`` (or
    ``(payload)``); a plain function runs in a thread. ``@worker.fallback`` takes every
    other kind. The handler's return value (JSON) is the task's result.
    """

    def __init__(
        self,
        client: AsyncClient,
        queues: Union[None, str, Sequence[str]] = None,
        *,
        slots: int = limits.SLOTS_DEFAULT,
        reserve: Union[None, Dict[int, int], Sequence[Tuple[int, int]]] = None,
        lease_ms: int = limits.LEASE_MS_DEFAULT,
        heartbeat_interval: Optional[float] = None,
        claim_wait: float = limits.CLAIM_WAIT_MAX,
        grace: float = limits.SHUTDOWN_GRACE_DEFAULT,
        handler_stop_wait: float = limits.HANDLER_STOP_WAIT_DEFAULT,
        batch_completes: bool = True,
        claim_on_complete: bool = False,
        worker_id: Optional[str] = None,
    ) -> None:
        if isinstance(queues, str):
            queues = [queues]
        qs = sorted(set(queues or ["default"]))
        if len(qs) > limits.QUEUES_MAX:
            raise ValueError(f"at most {limits.QUEUES_MAX} queues, not {len(qs)}")
        for q in qs:
            _check_name("queue", q, charset=True)
        reserved: List[Tuple[int, int]] = list(reserve.items()) if isinstance(reserve, dict) else list(reserve or [])
        for min_p, n in reserved:
            if not (limits.PRIORITY_MIN <= min_p <= limits.PRIORITY_MAX) or n < 1:
                raise ValueError(
                    f"reserve ({min_p}, {n}): min_priority must be "
                    f"{limits.PRIORITY_MIN}..={limits.PRIORITY_MAX} and n at least 1"
                )
        total = slots + sum(n for _, n in reserved)
        if slots < 0 or not (1 <= total <= limits.SLOTS_MAX):
            raise ValueError(f"slots (reserved included) must be 1..={limits.SLOTS_MAX}, not {total}")
        if not (limits.LEASE_MS_MIN <= lease_ms <= limits.LEASE_MS_MAX):
            raise ValueError(f"lease_ms must be {limits.LEASE_MS_MIN}..={limits.LEASE_MS_MAX}, not {lease_ms}")
        lease_s = lease_ms / 1000.0
        if heartbeat_interval is None:
            heartbeat_interval = min(
                max(lease_s / limits.HEARTBEAT_DIVISOR, limits.HEARTBEAT_INTERVAL_MIN), limits.HEARTBEAT_INTERVAL_MAX
            )
        elif heartbeat_interval < limits.HEARTBEAT_INTERVAL_MIN:
            raise ValueError(f"heartbeat_interval must be at least {limits.HEARTBEAT_INTERVAL_MIN}s")
        self.worker_id = worker_id or _default_worker_id()
        _check_name("worker_id", self.worker_id, charset=False)
        self.client = client
        self.queues = qs
        self.lease_ms = int(lease_ms)
        self.heartbeat_interval = float(heartbeat_interval)
        self.claim_wait = max(0.0, min(claim_wait, limits.CLAIM_WAIT_MAX, lease_s / limits.HEARTBEAT_DIVISOR))
        self.grace = grace
        self.handler_stop_wait = handler_stop_wait
        self.claim_on_complete = claim_on_complete
        self.batch_completes = batch_completes and not claim_on_complete
        self._slot_config = (slots, reserved)
        self._handlers: Dict[str, _Handler] = {}
        self._fallback: Optional[_Handler] = None
        self._stats = WorkerStats()
        self._leases: Dict[int, _Lease] = {}
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._started = False
        self._supervisor: Optional["asyncio.Task[WorkerStats]"] = None

    # ---- registration --------------------------------------------------------------------

    def handler(self, kind: str, fn: Optional[F] = None) -> Any:
        """Registers the handler of a kind: ``@worker.handler("resize")`` or
        ``worker.handler("resize", fn)``. A second one for a kind replaces the first."""
        _check_name("kind", kind, charset=True)

        def register(f: F) -> F:
            if self._started:
                raise RuntimeError("register handlers before the worker starts")
            self._handlers[kind] = _Handler(f)
            if len(self._handlers) > limits.KINDS_MAX:
                del self._handlers[kind]
                raise ValueError(f"at most {limits.KINDS_MAX} kinds")
            return f

        return register(fn) if fn is not None else register

    def fallback(self, fn: Optional[F] = None) -> Any:
        """Registers the handler of every kind without one of its own (claims then take
        any kind): ``@worker.fallback``."""

        def register(f: F) -> F:
            if self._started:
                raise RuntimeError("register handlers before the worker starts")
            self._fallback = _Handler(f)
            return f

        return register(fn) if fn is not None else register

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def stats(self) -> WorkerStats:
        """A snapshot of the counters."""
        s = WorkerStats(**asdict(self._stats))
        return s

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._started and self._supervisor is not None and not self._supervisor.done()

    @property
    def stopping(self) -> bool:
        """A shutdown has begun: no new claims, unstarted tasks are released."""
        return self._started and self._stop_claiming

    def start(self) -> None:
        """Starts claiming in the running event loop; returns at once."""
        if self._started:
            raise RuntimeError("a worker starts once")
        if not self._handlers and self._fallback is None:
            raise ValueError("register at least one handler")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._slots = _Slots(*self._slot_config)
        self._stop_claiming = False
        self._stop_requested = asyncio.Event()
        self._force = asyncio.Event()
        self._grace_requested = self.grace
        self._hb_stop = asyncio.Event()
        self._batcher = _CompleteBatcher(self.client) if self.batch_completes else None
        self._heartbeat_task = self._spawn(self._heartbeat_loop())
        self._claimers = [
            self._spawn(self._claim_loop(i, b.min_priority))
            for i, b in enumerate(self._slots.bands)
            if b.capacity > 0
        ]
        self._supervisor = self._loop.create_task(self._supervise())
        log.info("worker %s started (queues %s)", self.worker_id, ",".join(self.queues))

    def stop(self, grace: Optional[float] = None) -> None:
        """Asks for a graceful shutdown (returns at once; ``await shutdown()`` to wait). A
        second call cuts the grace short: running handlers are cancelled now."""
        if not self._started:
            return
        if self._stop_requested.is_set():
            if grace is None or grace <= 0:
                self._force.set()
            return
        if grace is not None:
            self._grace_requested = grace
        self._stop_requested.set()

    async def shutdown(self, grace: Optional[float] = None) -> WorkerStats:
        """Stops claiming, lets running handlers finish for up to ``grace`` seconds (the
        worker's ``grace`` by default), then cancels the rest (``CancelReason.SHUTDOWN``)
        and releases their tasks without using an attempt. Claims in flight are waited
        for and what they bring is released unstarted. Returns the final counters."""
        if not self._started:
            return self.stats
        self.stop(grace)
        assert self._supervisor is not None
        return await asyncio.shield(self._supervisor)

    async def wait(self) -> WorkerStats:
        """Waits until the worker has stopped (after ``stop()``)."""
        assert self._supervisor is not None, "the worker was not started"
        return await asyncio.shield(self._supervisor)

    async def run(self, *, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> WorkerStats:
        """Starts the worker and runs it until SIGINT or SIGTERM (a second signal cuts
        the grace short), then shuts down gracefully. ``asyncio.run(worker.run())``."""
        self.start()
        loop = asyncio.get_running_loop()
        installed: List[int] = []
        for sig in signals:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
                pass
        try:
            return await self.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        log.info("worker %s: signal %s, shutting down", self.worker_id, sig)
        if self._stop_requested.is_set():
            self._force.set()
        else:
            self.stop()

    async def __aenter__(self) -> "Worker":
        self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    def _spawn(self, coro: Awaitable[Any]) -> "asyncio.Task[Any]":
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def _supervise(self) -> WorkerStats:
        await self._stop_requested.wait()
        grace = self._grace_requested
        log.info("worker %s shutting down (grace %.1fs)", self.worker_id, grace)
        self._stop_claiming = True
        self._slots.watch.notify()
        # Claims in flight hold slots too, so idle means: no claim out, no handler
        # running. Heartbeats go on meanwhile: running handlers' leases must stay alive.
        idle = asyncio.ensure_future(self._slots.watch.wait_for(self._slots.idle))
        force = asyncio.ensure_future(self._force.wait())
        try:
            await asyncio.wait({idle, force}, timeout=max(0.0, grace), return_when=asyncio.FIRST_COMPLETED)
            if not idle.done():
                left = list(self._leases.values())
                if left:
                    log.info("shutdown grace over: cancelling and releasing %d running task(s)", len(left))
                for lease in left:
                    lease.cancel(CancelReason.SHUTDOWN)
                await idle
        finally:
            force.cancel()
        await asyncio.gather(*self._claimers, return_exceptions=True)
        self._hb_stop.set()
        await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        if self._batcher is not None:
            await self._batcher.aclose()
        stats = self.stats
        log.info("worker %s stopped: %s", self.worker_id, stats)
        return stats

    # ---- claiming ------------------------------------------------------------------------

    def _claim_body(self, max: int, wait_ms: int, min_priority: Optional[int]) -> Dict[str, Any]:
        kinds = None if self._fallback is not None else sorted(self._handlers)
        return _claim_body(self.worker_id, self.queues, kinds, max, self.lease_ms, wait_ms, min_priority)

    async def _claim_loop(self, band: int, min_priority: Optional[int]) -> None:
        backoff = limits.CLAIM_BACKOFF_INITIAL
        slots = self._slots
        while True:
            await slots.watch.wait_for(lambda: self._stop_claiming or slots.has_free(band))
            if self._stop_claiming:
                return
            held = slots.take_free(band)
            if held == 0:
                continue
            body = self._claim_body(held, int(self.claim_wait * 1000), min_priority)
            # The lease is counted from here, before the request leaves: the cluster starts
            # it later, so the local deadline always passes first.
            sent_at = self._loop.time()
            self._stats.claims_in_flight += 1
            try:
                tasks = await self._claim(body)
            except asyncio.CancelledError:
                slots.give_back(band, held)
                raise
            except Exception as e:  # noqa: BLE001 - a claim loop must survive anything
                slots.give_back(band, held)
                self._stats.claim_errors += 1
                # An unknown outcome may have leased tasks to nobody; they come back when
                # their leases expire.
                log.warning("claim failed (retrying in %.2fs): %s", backoff, e)
                try:
                    await asyncio.wait_for(slots.watch.wait_for(lambda: self._stop_claiming), backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, limits.CLAIM_BACKOFF_MAX)
                continue
            finally:
                self._stats.claims_in_flight -= 1
            backoff = limits.CLAIM_BACKOFF_INITIAL
            got = min(len(tasks), held)
            slots.give_back(band, held - got)
            if len(tasks) > held:
                log.error("the cluster sent %d tasks for a claim of %d", len(tasks), held)
            for i, task in enumerate(tasks):
                self._stats.claimed += 1
                lease = self._admit(band, task, sent_at, i < held)
                if lease is not None:
                    self._spawn(self._run_task(band, min_priority, task, lease))

    async def _claim(self, body: Dict[str, Any]) -> List[ClaimedTask]:
        c = self.client
        d = await c._call(
            "POST", "/v1/claim", body, idempotent=False, timeout=c.request_timeout + body["wait_ms"] / 1000.0
        )
        return [ClaimedTask.from_json(t) for t in d["tasks"]]

    def _admit(self, band: int, task: ClaimedTask, sent_at: float, has_slot: bool) -> Optional[_Lease]:
        """Takes a claimed task into a slot it holds and returns its lease, or releases it
        (giving the slot back) when it should not run here."""
        lease_s = task.lease.lease_ms / 1000.0
        deadline = sent_at + lease_s
        left = deadline - self._loop.time()
        if not has_slot or self._stop_claiming or left < lease_s / limits.STALE_CLAIM_DIVISOR:
            log.info(
                "releasing task %d unstarted (%.3fs of its lease left, stopping: %s)",
                task.id,
                left,
                self._stop_claiming,
            )
            self._spawn(self._release_unstarted(band if has_slot else None, task))
            return None
        lease = _Lease(task.id, task.lease.token, deadline)
        self._leases[lease.token] = lease
        self._stats.running += 1
        return lease

    async def _release_unstarted(self, band: Optional[int], task: ClaimedTask) -> None:
        try:
            await self._release(task.id, task.lease.token, 0)
        finally:
            if band is not None:
                self._slots.give_back(band, 1)

    # ---- running one task ----------------------------------------------------------------

    async def _run_task(self, band: int, min_priority: Optional[int], task: ClaimedTask, lease: _Lease) -> None:
        give_back = True
        try:
            while True:
                try:
                    handler = self._handlers.get(task.kind) or self._fallback
                    if handler is None:
                        ran = _Ran(_Ran.NO_HANDLER)
                    else:
                        ran = await self._execute(handler, task, lease)
                    lease.ending = True
                    nxt = await self._end(task, lease, ran, min_priority)
                finally:
                    self._leases.pop(lease.token, None)
                    self._stats.running -= 1
                if nxt is None:
                    return
                tasks, sent_at = nxt
                self._stats.claimed += len(tasks)
                first = tasks[0]
                for extra in tasks[1:]:
                    log.error("the cluster sent more tasks than asked for (task %d)", extra.id)
                    self._admit(band, extra, sent_at, False)
                new_lease = self._admit(band, first, sent_at, True)
                if new_lease is None:
                    give_back = False  # _admit releases it and gives the slot back
                    return
                task, lease = first, new_lease
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never lose a slot to a bug
            log.exception("task runner failed")
        finally:
            if give_back:
                self._slots.give_back(band, 1)

    async def _execute(self, handler: _Handler, task: ClaimedTask, lease: _Lease) -> _Ran:
        loop = self._loop
        ctx = TaskContext(self, task, lease)
        job = asyncio.ensure_future(handler.call(task.payload, ctx))
        stop_by: Optional[float] = None
        aborted_at: Optional[float] = None
        cancel_wait: Optional["asyncio.Future[Any]"] = None
        try:
            while not job.done():
                now = loop.time()
                waiters: Set["asyncio.Future[Any]"] = {job}
                if lease.cancelled.is_set():
                    if stop_by is None:
                        stop_by = now + self.handler_stop_wait
                    if aborted_at is None and now >= stop_by:
                        log.warning("task %d: handler ignored its cancellation: cancelling it", task.id)
                        job.cancel()
                        aborted_at = now
                    if aborted_at is not None:
                        if now >= aborted_at + self.handler_stop_wait:
                            log.error("task %d: handler does not stop; leaving it behind", task.id)
                            return _Ran(_Ran.ABORTED)
                        timeout = aborted_at + self.handler_stop_wait - now
                    else:
                        timeout = stop_by - now
                else:
                    timeout = lease.deadline - now
                    if timeout <= 0:
                        # The local deadline: no renewing heartbeat arrived in time.
                        log.warning("task %d: local lease deadline passed: cancelling the handler", task.id)
                        lease.cancel(CancelReason.LEASE_EXPIRED)
                        continue
                    if cancel_wait is None:
                        cancel_wait = asyncio.ensure_future(lease.cancelled.wait())
                    waiters.add(cancel_wait)
                await asyncio.wait(waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            job.cancel()
            raise
        finally:
            if cancel_wait is not None and not cancel_wait.done():
                cancel_wait.cancel()
        if job.cancelled():
            return _Ran(_Ran.ABORTED)
        exc = job.exception()
        if exc is not None:
            return _Ran(_Ran.RAISED, exc)
        return _Ran(_Ran.RETURNED, job.result())

    async def _end(
        self, task: ClaimedTask, lease: _Lease, ran: _Ran, min_priority: Optional[int]
    ) -> Optional[Tuple[List[ClaimedTask], float]]:
        """Decides and makes the call that ends the attempt; returns the next tasks a
        completion claimed, if any."""
        tid, token = task.id, lease.token
        # A handler that returns right at its local deadline is treated as past it.
        if lease.reason is None and lease.expired(self._loop.time()):
            lease.cancel(CancelReason.LEASE_EXPIRED)
        reason = lease.reason
        if reason is not None and reason.lease_gone:
            self._stats.lease_lost += 1
            log.warning("task %d (token %d): lease %s: result dropped, the task may run again", tid, token, reason.value)
            return None
        if lease.release_delay_ms is not None:
            await self._release(tid, token, lease.release_delay_ms)
            return None
        if reason == CancelReason.CANCEL_REQUESTED:
            # Releasing with a cancel pending ends the task cancelled.
            await self._release(tid, token, 0)
        elif ran.kind == _Ran.RETURNED:
            return await self._complete(tid, token, ran.value, min_priority)
        elif reason == CancelReason.SHUTDOWN or ran.kind == _Ran.ABORTED:
            await self._release(tid, token, 0)
        elif ran.kind == _Ran.RAISED:
            exc = ran.value
            if isinstance(exc, ReleaseTask):
                await self._release(tid, token, exc.delay_ms)
            else:
                await self._fail_exc(tid, token, exc)
        else:  # no handler
            log.error("task %d: no handler for kind %r: releasing", tid, task.kind)
            await self._release(tid, token, limits.UNKNOWN_KIND_RELEASE_DELAY_MS)
        return None

    async def _end_call(self, call: Callable[[], Awaitable[StateResult]]) -> _Ended:
        """Retries ``call`` through unknown outcomes and unavailability, up to
        ``END_CALL_BUDGET``."""
        loop = self._loop
        started = loop.time()
        backoff = limits.END_BACKOFF_INITIAL
        after_unknown = False
        while True:
            try:
                return _Ended(_Ended.DONE, await call())
            except RejectedError as e:
                if e.code in (codes.LEASE_LOST, codes.TASK_FINISHED):
                    return _Ended(_Ended.LEASE_GONE, e, after_unknown)
                return _Ended(_Ended.REFUSED, e)
            except (IndeterminateError, UnavailableError, ProtocolError) as e:
                after_unknown = after_unknown or isinstance(e, (IndeterminateError, ProtocolError))
                if loop.time() - started + backoff > limits.END_CALL_BUDGET:
                    return _Ended(_Ended.GAVE_UP, e)
                log.debug("ending call: retrying: %s", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, limits.END_BACKOFF_MAX)
            except (ValueError, TypeError) as e:  # a result that is not JSON
                return _Ended(_Ended.REFUSED, e)

    async def _complete(
        self, tid: int, token: int, result: Any, min_priority: Optional[int]
    ) -> Optional[Tuple[List[ClaimedTask], float]]:
        """Completing with the same token twice is acknowledged twice, so a complete is
        retried until it has an answer. With ``claim_on_complete`` the first try also
        claims the slot's next task; retries are plain completes (a fused try whose outcome
        is unknown may have leased a task, which comes back when its lease expires)."""
        try:
            size = len(json.dumps(result, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError) as e:
            await self._fail(tid, token, f"the result is not JSON: {e}", "bad_result", False, None)
            return None
        c = self.client
        batcher = self._batcher
        fused = self.claim_on_complete and not self._stop_claiming
        next_body = self._claim_body(1, 0, min_priority) if fused else None
        first = [next_body]
        sent_at = [self._loop.time()]

        async def call() -> StateResult:
            sent_at[0] = self._loop.time()
            nb, first[0] = first[0], None
            if nb is not None:
                return await c.complete_and_claim(tid, token, result, nb)
            if batcher is not None:
                return await batcher.complete(tid, token, result, size)
            return await c.complete(tid, token, result)

        ended = await self._end_call(call)
        if ended.kind == _Ended.REFUSED and next_body is not None:
            log.debug("task %d: complete with a claim refused (%s): completing alone", tid, ended.value)
            ended = await self._end_call(lambda: c.complete(tid, token, result))
        if ended.kind == _Ended.DONE:
            self._stats.completed += 1
            resp: StateResult = ended.value
            if resp.next:
                return resp.next, sent_at[0]
            return None
        if ended.kind == _Ended.LEASE_GONE:
            self._stats.lease_lost += 1
            log.warning("task %d: complete refused, the lease was lost: %s", tid, ended.value)
            return None
        if ended.kind == _Ended.REFUSED:
            # The result itself was refused (too large): the attempt fails for good.
            log.error("task %d: complete refused: %s: failing the task", tid, ended.value)
            await self._fail(tid, token, f"the result was refused: {ended.value}", "result_refused", False, None)
            return None
        self._abandon(tid, "complete", ended.value)
        return None

    async def _fail_exc(self, tid: int, token: int, exc: BaseException) -> None:
        if isinstance(exc, PermanentError):
            await self._fail(tid, token, exc.message or type(exc).__name__, exc.code, False, None)
        elif isinstance(exc, RetryableError):
            await self._fail(tid, token, exc.message or type(exc).__name__, exc.code, True, exc.retry_after_ms)
        else:
            text = str(exc)
            message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            log.info("task %d: handler raised %s", tid, message)
            await self._fail(tid, token, message, None, True, None)

    async def _fail(
        self,
        tid: int,
        token: int,
        message: str,
        code: Optional[str],
        retryable: bool,
        retry_after_ms: Optional[int],
    ) -> None:
        message = _cut(message, limits.ERROR_MESSAGE_MAX)
        c = self.client
        ended = await self._end_call(
            lambda: c.fail(tid, token, message, code=code, retryable=retryable, retry_after_ms=retry_after_ms)
        )
        if ended.kind == _Ended.REFUSED and code is not None:
            # Most likely a code the server does not take as a name: keep it in the message.
            log.warning("task %d: fail refused (%s): retrying without the error code", tid, ended.value)
            msg2 = f"{code}: {message}"
            ended = await self._end_call(
                lambda: c.fail(tid, token, msg2, retryable=retryable, retry_after_ms=retry_after_ms)
            )
        self._settle(tid, "fail", ended, "failed")

    async def _release(self, tid: int, token: int, delay_ms: int) -> None:
        c = self.client
        ended = await self._end_call(lambda: c.release(tid, token, delay_ms))
        self._settle(tid, "release", ended, "released")

    def _settle(self, tid: int, what: str, ended: _Ended, counter: str) -> None:
        """Counts the end of a fail or release. Neither may be blindly repeated: after an
        unknown outcome, a ``lease_lost`` most likely means the first try landed."""
        if ended.kind == _Ended.DONE and ended.value.state == "cancelled":
            self._stats.cancelled += 1
        elif ended.kind == _Ended.DONE or (ended.kind == _Ended.LEASE_GONE and ended.after_unknown):
            setattr(self._stats, counter, getattr(self._stats, counter) + 1)
        elif ended.kind == _Ended.LEASE_GONE:
            self._stats.lease_lost += 1
            log.warning("task %d: %s refused, the lease was lost: %s", tid, what, ended.value)
        else:
            self._abandon(tid, what, ended.value)

    def _abandon(self, tid: int, what: str, error: Any) -> None:
        self._stats.abandoned += 1
        log.error("task %d: %s did not go through (%s): the lease will expire", tid, what, error)

    # ---- heartbeats ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Beats every interval until stopped. A beat still waiting for its answer when the
        next is due delays it: a slow answer still renews, a second request would not help."""
        interval = self.heartbeat_interval
        while True:
            try:
                await asyncio.wait_for(self._hb_stop.wait(), interval)
                return
            except asyncio.TimeoutError:
                pass
            leases = [lease for lease in self._leases.values() if not lease.lease_gone]
            for i in range(0, len(leases), limits.HEARTBEAT_BATCH_MAX):
                try:
                    await self._beat(leases[i : i + limits.HEARTBEAT_BATCH_MAX], interval)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the heartbeat loop must survive
                    log.exception("heartbeat failed unexpectedly")

    async def _beat(self, leases: List[_Lease], interval: float) -> None:
        beats: List[Dict[str, Any]] = []
        sent_progress: List[Any] = []
        for lease in leases:
            b: Dict[str, Any] = {"task": lease.task, "token": lease.token}
            p = lease.take_progress()
            if p is not _NO_PROGRESS:
                b["progress"] = p
            sent_progress.append(p)
            beats.append(b)
        sent_at = self._loop.time()
        # Keep waiting for an answer while it can still save a lease: until the earliest
        # local deadline (and at least one interval).
        earliest = min(lease.deadline for lease in leases)
        patience = max(earliest - sent_at, interval)
        try:
            results = await asyncio.wait_for(self.client.heartbeat_batch(self.worker_id, beats), patience)
            if len(results) != len(leases):
                raise ProtocolError(f"heartbeat answered {len(results)} results for {len(leases)} leases")
        except (asyncio.TimeoutError, TaskswarmError) as e:
            self._stats.heartbeat_errors += 1
            log.warning("heartbeat of %d lease(s) failed: %s", len(leases), e or type(e).__name__)
            # The progress did not arrive: send it next time.
            for lease, p in zip(leases, sent_progress):
                if p is not _NO_PROGRESS:
                    lease.restore_progress(p)
            return
        self._stats.heartbeats += 1
        for lease, item in zip(leases, results):
            if isinstance(item, HeartbeatAck):
                lease.renew(sent_at, item.lease_ms / 1000.0)
                if item.cancel_requested:
                    lease.cancel(CancelReason.CANCEL_REQUESTED)
                continue
            if lease.ending:
                log.debug("task %d: heartbeat refused for a lease being ended: %s", lease.task, item.code)
            elif item.code in (codes.LEASE_LOST, codes.TASK_FINISHED, codes.NOT_FOUND):
                log.warning("task %d (token %d): lease lost (%s): cancelling the handler", lease.task, lease.token, item.code)
                lease.cancel(CancelReason.LEASE_LOST)
            else:
                log.warning("task %d: heartbeat refused: %s", lease.task, item)


def _cut(text: str, max_bytes: int) -> str:
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", "ignore") + "..."
