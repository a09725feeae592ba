"""``AsyncClient``: one method per API call, ``submit`` / ``TaskHandle.result()`` to await a
task's result, and event streams as async iterators that reconnect by themselves."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import time
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)
from urllib.parse import quote

import httpx
from httpx_sse import EventSource, SSEError, ServerSentEvent

from ._transport import Transport, split_error_item
from .errors import RejectedError, TaskFailedError, UnavailableError, codes
from .types import (
    FINISHED_STATES,
    Backoff,
    BroadcastMessage,
    ClaimedTask,
    ClusterStatus,
    Enqueued,
    Event,
    EventHistory,
    Gap,
    HeartbeatAck,
    QueueView,
    StateResult,
    Task,
    TaskPage,
    TaskView,
)

log = logging.getLogger("taskswarm.client")

__all__ = ["AsyncClient", "TaskHandle", "EventStream", "DEFAULT_SERVERS", "SERVERS_ENV"]

#: The servers of a local ``taskswarm dev`` cluster, used when ``TASKSWARM_SERVERS`` is unset.
DEFAULT_SERVERS = "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003"
#: The environment variable naming the servers (comma-separated URLs).
SERVERS_ENV = "TASKSWARM_SERVERS"
#: The environment variable holding the API token, when the cluster requires one.
TOKEN_ENV = "TASKSWARM_API_TOKEN"
#: The server's longest long-poll is 60 s; waits are cut into pieces of at most this.
WAIT_PIECE_MS = 30_000
#: Most tasks in one enqueue request (the server's ``ENQUEUE_BATCH_MAX``); larger batches
#: are sent in several requests.
ENQUEUE_BATCH_MAX = 1024

T = TypeVar("T")
TaskLike = Union[Task, str]


def _servers(servers: Union[None, str, Sequence[str]]) -> List[str]:
    if servers is None:
        servers = os.environ.get(SERVERS_ENV) or DEFAULT_SERVERS
    if isinstance(servers, str):
        servers = servers.split(",")
    return [s for s in (x.strip() for x in servers) if s]


def _q(s: str) -> str:
    return quote(s, safe="-_.~:")


class AsyncClient:
    """A handle to the cluster (asyncio). Any nodes will do; more survive failures.

    ``servers``: a list or comma-separated string of node URLs; default: the
    ``TASKSWARM_SERVERS`` environment variable, else the local dev cluster.
    ``api_token``: sent as ``Authorization: Bearer``; default ``TASKSWARM_API_TOKEN``.
    ``request_timeout``: seconds for one HTTP request (long-polls get their wait on top).
    ``retry_budget``: seconds spent retrying one call through elections and dead nodes.
    ``no_forward``: ask nodes running ``--forward-to-leader`` for the 307 instead.
    ``http_transport``: an ``httpx.AsyncBaseTransport`` to send through (tests, proxies).

    Usable as ``async with AsyncClient(...) as client:``; otherwise call ``aclose()``.
    """

    def __init__(
        self,
        servers: Union[None, str, Sequence[str]] = None,
        api_token: Optional[str] = None,
        *,
        request_timeout: float = 10.0,
        connect_timeout: float = 2.0,
        retry_budget: float = 30.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        stream_read_timeout: float = 45.0,
        no_forward: bool = False,
        http_transport: Optional[httpx.AsyncBaseTransport] = None,
        max_connections: int = 256,
    ) -> None:
        if api_token is None:
            api_token = os.environ.get(TOKEN_ENV) or None
        self._t = Transport(
            _servers(servers),
            api_token=api_token,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            retry_budget=retry_budget,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            no_forward=no_forward,
            http_transport=http_transport,
            max_connections=max_connections,
        )
        self.stream_read_timeout = stream_read_timeout
        self._key_prefix = "py" + secrets.token_hex(8)
        self._keys = itertools.count()

    # ---- plumbing ------------------------------------------------------------------------

    @property
    def servers(self) -> List[str]:
        return list(self._t.servers)

    @property
    def leader(self) -> Optional[str]:
        """The leader's URL as last learned from a redirect, if any."""
        return self._t.leader

    @property
    def request_timeout(self) -> float:
        return self._t.request_timeout

    @property
    def retry_budget(self) -> float:
        return self._t.retry_budget

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._t.aclose()

    def new_key(self) -> str:
        """A fresh idempotency key, unique across processes (random prefix) and calls."""
        return f"{self._key_prefix}-{next(self._keys)}"

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool,
        timeout: Optional[float] = None,
        has_body: bool = False,
    ) -> Any:
        return await self._t.call(method, path, body, idempotent=idempotent, timeout=timeout, has_body=has_body)

    async def _get(self, path: str, timeout: Optional[float] = None) -> Any:
        return await self._call("GET", path, idempotent=True, timeout=timeout)

    # ---- producers -----------------------------------------------------------------------

    @staticmethod
    def _task(task: TaskLike, payload: Any, options: Dict[str, Any]) -> Task:
        if isinstance(task, Task):
            if payload is not None or options:
                raise TypeError("pass either a Task, or a kind with payload and options")
            return task
        backoff = options.pop("backoff", None)
        if isinstance(backoff, dict):
            backoff = Backoff(**backoff)
        return Task(kind=task, payload=payload, backoff=backoff, **options)

    def _with_key(self, task: Task) -> Dict[str, Any]:
        body = task.to_json()
        if not body.get("idempotency_key"):
            body["idempotency_key"] = self.new_key()
        return body

    async def enqueue(self, task: TaskLike, payload: Any = None, **options: Any) -> Enqueued:
        """Enqueues one task: ``enqueue(Task(...))`` or ``enqueue("kind", payload,
        queue=..., priority=..., delay_ms=..., run_at_ms=..., max_attempts=...,
        backoff=Backoff(...), lease_ms=..., schedule_to_start_ms=..., start_to_close_ms=...,
        schedule_to_close_ms=..., idempotency_key=..., coalesce_key=..., group=...)``.

        Without an idempotency key one is generated, so retries through timeouts and
        leader changes never create a second task.
        """
        body = self._with_key(self._task(task, payload, options))
        return Enqueued.from_json(await self._call("POST", "/v1/tasks", body, idempotent=True))

    async def enqueue_batch(self, tasks: Iterable[Task]) -> List[Union[Enqueued, RejectedError]]:
        """Enqueues several tasks; one result per task, in order: an ``Enqueued``, or the
        ``RejectedError`` (not raised) of an item the cluster refused. More than 1024 tasks
        go in several requests (each retried safely: every task carries a key)."""
        bodies = [self._with_key(t) for t in tasks]
        out: List[Union[Enqueued, RejectedError]] = []
        for i in range(0, len(bodies), ENQUEUE_BATCH_MAX):
            chunk = bodies[i : i + ENQUEUE_BATCH_MAX]
            resp = await self._call("POST", "/v1/tasks/batch", {"tasks": chunk}, idempotent=True)
            for item in resp["results"]:
                ok, value = split_error_item(item)
                out.append(Enqueued.from_json(value) if ok else value)
        return out

    async def submit(self, task: TaskLike, payload: Any = None, **options: Any) -> "TaskHandle":
        """Enqueues and returns a handle: ``await (await client.submit(...)).result()``."""
        r = await self.enqueue(task, payload, **options)
        return TaskHandle(self, r.id, r.created, r.coalesced)

    def handle(self, task_id: int) -> "TaskHandle":
        """A handle to an existing task."""
        return TaskHandle(self, task_id, False, False)

    async def get(self, task_id: int, *, consistency: Optional[str] = None) -> TaskView:
        """The task now. ``consistency="local"`` reads the answering node's state as is
        (cheaper, maybe stale); the default is linearizable."""
        path = f"/v1/tasks/{int(task_id)}"
        if consistency:
            path += f"?consistency={_q(consistency)}"
        return TaskView.from_json(await self._get(path))

    task = get

    async def wait(self, task_id: int, timeout: Optional[float] = None) -> TaskView:
        """Waits until the task is finished, or ``timeout`` seconds pass (``None``: no
        limit), and returns it (finished or not)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left_ms = WAIT_PIECE_MS if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            piece = min(left_ms, WAIT_PIECE_MS)
            view = TaskView.from_json(
                await self._get(
                    f"/v1/tasks/{int(task_id)}?wait_ms={piece}",
                    timeout=self._t.request_timeout + piece / 1000.0,
                )
            )
            if view.finished or piece == 0:
                return view

    async def result(self, task_id: int, timeout: Optional[float] = None) -> Any:
        """The task's result once it succeeded. Raises ``TaskFailedError`` if it ended
        failed, cancelled or expired, and ``TimeoutError`` if ``timeout`` passes first."""
        view = await self.wait(task_id, timeout)
        if view.state == "succeeded":
            return view.result
        if view.finished:
            raise TaskFailedError(view)
        raise TimeoutError(f"task {task_id} is still {view.state} after {timeout}s")

    async def history(self, task_id: int) -> EventHistory:
        """The task's stored events (``GET /v1/tasks/{id}/events``)."""
        d = await self._get(f"/v1/tasks/{int(task_id)}/events")
        return EventHistory([Event.from_json(e) for e in d["events"]], int(d.get("dropped", 0)))

    async def list(
        self,
        queue: Optional[str] = None,
        state: Optional[str] = None,
        *,
        limit: int = 100,
        after: Optional[int] = None,
    ) -> TaskPage:
        """One page of tasks (by id), optionally of one queue and state."""
        q = f"/v1/tasks?limit={int(limit)}"
        if queue is not None:
            q += f"&queue={_q(queue)}"
        if state is not None:
            q += f"&state={_q(state)}"
        if after is not None:
            q += f"&after={int(after)}"
        d = await self._get(q)
        return TaskPage([TaskView.from_json(t) for t in d["tasks"]], d.get("next"))

    async def iter_tasks(
        self, queue: Optional[str] = None, state: Optional[str] = None, *, page_size: int = 500
    ) -> AsyncIterator[TaskView]:
        """Every matching task, page after page."""
        after: Optional[int] = None
        while True:
            page = await self.list(queue, state, limit=page_size, after=after)
            for t in page.tasks:
                yield t
            if page.next is None:
                return
            after = page.next

    async def cancel(self, task_id: int) -> StateResult:
        """Cancels a task; a running one is told on its worker's next heartbeat (the state
        answered is then still ``running``). Sent at most once: a repeat after an unknown
        outcome would answer ``task_finished`` for a cancel that worked."""
        d = await self._call("POST", f"/v1/tasks/{int(task_id)}/cancel", idempotent=False)
        return StateResult.from_json(d)

    async def requeue(self, task_id: int) -> StateResult:
        """Queues a failed or expired task again with fresh attempts."""
        d = await self._call("POST", f"/v1/tasks/{int(task_id)}/requeue", idempotent=False)
        return StateResult.from_json(d)

    async def queues(self) -> List[QueueView]:
        """Every queue with its task counts by state."""
        d = await self._get("/v1/queues")
        return [QueueView.from_json(q) for q in d["queues"]]

    async def pause(self, queue: str) -> QueueView:
        """Stops handing out the queue's tasks (enqueue still works)."""
        return QueueView.from_json(await self._call("POST", f"/v1/queues/{_q(queue)}/pause", idempotent=True))

    async def resume(self, queue: str) -> QueueView:
        return QueueView.from_json(await self._call("POST", f"/v1/queues/{_q(queue)}/resume", idempotent=True))

    async def broadcast(self, message: Any, channel: str = "all") -> int:
        """Sends a message to every broadcast subscriber; returns its sequence number.
        Sent at most once (a repeat would send it twice)."""
        d = await self._call("POST", "/v1/broadcast", {"channel": channel, "message": message}, idempotent=False)
        return int(d["seq"])

    async def recent_broadcasts(self, after: int = 0) -> List[BroadcastMessage]:
        """Retained broadcast messages after a sequence number."""
        d = await self._get(f"/v1/broadcast?after={int(after)}")
        return [BroadcastMessage.from_json(m) for m in d]

    async def cluster(self, *, state_hash: bool = False) -> ClusterStatus:
        """The status of whichever node answers (the leader when known)."""
        path = "/v1/cluster?state_hash=true" if state_hash else "/v1/cluster"
        return ClusterStatus.from_json(await self._get(path))

    async def add_learner(self, node_id: int, addr: str) -> ClusterStatus:
        d = await self._call("POST", "/v1/cluster/learners", {"id": node_id, "addr": addr}, idempotent=True)
        return ClusterStatus.from_json(d)

    async def change_membership(self, voters: Sequence[int]) -> ClusterStatus:
        d = await self._call("POST", "/v1/cluster/membership", {"voters": list(voters)}, idempotent=True)
        return ClusterStatus.from_json(d)

    # ---- workers (the Worker runtime uses these; raw access for custom loops) ------------

    async def claim(
        self,
        worker: str,
        queues: Sequence[str] = ("default",),
        *,
        kinds: Optional[Sequence[str]] = None,
        max: int = 1,
        lease_ms: Optional[int] = None,
        wait_ms: int = 0,
        min_priority: Optional[int] = None,
    ) -> List[ClaimedTask]:
        """Claims up to ``max`` tasks, long-polling up to ``wait_ms``. Sent at most once:
        a repeated claim after an unknown outcome could lease tasks nobody works on until
        their leases expire."""
        body = _claim_body(worker, queues, kinds, max, lease_ms, wait_ms, min_priority)
        d = await self._call(
            "POST", "/v1/claim", body, idempotent=False, timeout=self._t.request_timeout + wait_ms / 1000.0
        )
        return [ClaimedTask.from_json(t) for t in d["tasks"]]

    async def heartbeat(
        self, task_id: int, token: int, *, progress: Any = None, lease_ms: Optional[int] = None
    ) -> HeartbeatAck:
        body: Dict[str, Any] = {"token": token}
        if progress is not None:
            body["progress"] = progress
        if lease_ms is not None:
            body["lease_ms"] = lease_ms
        d = await self._call("POST", f"/v1/tasks/{int(task_id)}/heartbeat", body, idempotent=True)
        return HeartbeatAck.from_json(d)

    async def heartbeat_batch(
        self, worker: str, leases: Sequence[Dict[str, Any]]
    ) -> List[Union[HeartbeatAck, RejectedError]]:
        """Renews every lease of a worker in one request. ``leases``: dicts of ``task``,
        ``token`` and optionally ``progress``, ``lease_ms``. One result per lease."""
        d = await self._call("POST", "/v1/heartbeat", {"worker": worker, "leases": list(leases)}, idempotent=True)
        out: List[Union[HeartbeatAck, RejectedError]] = []
        for item in d["results"]:
            ok, value = split_error_item(item)
            out.append(HeartbeatAck.from_json(value) if ok else value)
        return out

    async def complete(self, task_id: int, token: int, result: Any = None) -> StateResult:
        """Completes with the fencing token. Completing twice with the same token is
        acknowledged twice (``duplicate``), so this is retried through unknown outcomes."""
        d = await self._call(
            "POST", f"/v1/tasks/{int(task_id)}/complete", {"token": token, "result": result}, idempotent=True
        )
        return StateResult.from_json(d)

    async def complete_batch(self, items: Sequence[Tuple[int, int, Any]]) -> List[Union[StateResult, RejectedError]]:
        """Completes several ``(task, token, result)`` in one request; one result per item."""
        body = {"items": [{"task": t, "token": tok, "result": r} for t, tok, r in items]}
        d = await self._call("POST", "/v1/complete", body, idempotent=True)
        out: List[Union[StateResult, RejectedError]] = []
        for item in d["results"]:
            ok, value = split_error_item(item)
            out.append(StateResult.from_json(value) if ok else value)
        return out

    async def complete_and_claim(
        self, task_id: int, token: int, result: Any, next: Dict[str, Any]
    ) -> StateResult:
        """Completes and, only if the completion holds, claims ``next`` (a claim body) in
        the same Raft command; the tasks are in the answer's ``next``. Sent at most once:
        retry with ``complete``, which is idempotent."""
        wait_ms = int(next.get("wait_ms", 0))
        d = await self._call(
            "POST",
            f"/v1/tasks/{int(task_id)}/complete",
            {"token": token, "result": result, "next": next},
            idempotent=False,
            timeout=self._t.request_timeout + wait_ms / 1000.0,
        )
        return StateResult.from_json(d)

    async def fail(
        self,
        task_id: int,
        token: int,
        error: str,
        *,
        code: Optional[str] = None,
        retryable: bool = True,
        retry_after_ms: Optional[int] = None,
    ) -> StateResult:
        """Reports a failed attempt (``retryable=False``: dead-letter it now)."""
        body: Dict[str, Any] = {"token": token, "error": error, "retryable": retryable}
        if code is not None:
            body["code"] = code
        if retry_after_ms is not None:
            body["retry_after_ms"] = retry_after_ms
        d = await self._call("POST", f"/v1/tasks/{int(task_id)}/fail", body, idempotent=False)
        return StateResult.from_json(d)

    async def release(self, task_id: int, token: int, delay_ms: int = 0) -> StateResult:
        """Gives the task back without using an attempt (with a cancel pending, this ends
        it ``cancelled``)."""
        d = await self._call(
            "POST", f"/v1/tasks/{int(task_id)}/release", {"token": token, "delay_ms": delay_ms}, idempotent=False
        )
        return StateResult.from_json(d)

    # ---- streams -------------------------------------------------------------------------

    @overload
    def events(
        self, queue: Optional[str] = None, group: Optional[str] = None, *, gaps: Literal[False] = False
    ) -> "EventStream[Event]": ...

    @overload
    def events(
        self, queue: Optional[str] = None, group: Optional[str] = None, *, gaps: Literal[True]
    ) -> "EventStream[Union[Event, Gap]]": ...

    def events(
        self, queue: Optional[str] = None, group: Optional[str] = None, *, gaps: bool = False
    ) -> "EventStream[Any]":
        """Every lifecycle event from now on (optionally of one queue and/or group), as an
        async iterator that never ends by itself. The server cannot resume this stream: after
        a reconnect (another node) events in between are lost; with ``gaps=True`` a ``Gap``
        marks each place where events may be missing (a reconnect, or ``lagged``)."""
        params = []
        if queue is not None:
            params.append(f"queue={_q(queue)}")
        if group is not None:
            params.append(f"group={_q(group)}")
        path = "/v1/events" + ("?" + "&".join(params) if params else "")

        def parse(sse: ServerSentEvent) -> Optional[Union[Event, Gap]]:
            if sse.event == "lagged":
                if not gaps:
                    return None
                try:
                    missed = int(json.loads(sse.data).get("missed"))
                except (ValueError, AttributeError, TypeError):
                    missed = None
                return Gap("lagged", missed)
            return Event.from_json(json.loads(sse.data))

        return EventStream(self, path, parse, resume=False, gap=Gap("reconnected") if gaps else None)

    def task_events(self, task_id: int) -> "EventStream[Event]":
        """A task's stored history, then each new event, until the task is finished. Resumes
        after a reconnect (another node, a leader change) where it left off
        (``Last-Event-ID``): no event is lost or repeated."""
        task_id = int(task_id)

        def parse(sse: ServerSentEvent) -> Optional[Event]:
            seq = int(sse.id) if sse.id.isdigit() else None
            return Event.from_json(json.loads(sse.data), seq)

        return EventStream(self, f"/v1/tasks/{task_id}/events", parse, resume=True, task_id=task_id)

    def broadcasts(self, channel: Optional[str] = None, *, after: int = 0) -> "EventStream[BroadcastMessage]":
        """Broadcast messages after sequence number ``after`` (retained ones first), then
        each new one; optionally only one channel's. Resumes after a reconnect with
        ``Last-Event-ID``: no message is lost (while retained) or repeated."""

        def parse(sse: ServerSentEvent) -> Optional[BroadcastMessage]:
            m = BroadcastMessage.from_json(json.loads(sse.data))
            if channel is not None and m.channel != channel:
                return None
            return m

        stream: EventStream[BroadcastMessage] = EventStream(
            self, f"/v1/broadcast?after={int(after)}", parse, resume=True
        )
        if after:
            stream._last_id = str(int(after))
        return stream


def _claim_body(
    worker: str,
    queues: Sequence[str],
    kinds: Optional[Sequence[str]],
    max: int,
    lease_ms: Optional[int],
    wait_ms: int,
    min_priority: Optional[int],
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"worker": worker, "queues": list(queues), "max": int(max), "wait_ms": int(wait_ms)}
    if kinds is not None:
        body["kinds"] = list(kinds)
    if lease_ms is not None:
        body["lease_ms"] = int(lease_ms)
    if min_priority is not None:
        body["min_priority"] = int(min_priority)
    return body


class TaskHandle:
    """A submitted task: ``await handle.result()``."""

    def __init__(self, client: AsyncClient, id: int, created: bool, coalesced: bool) -> None:
        self.client = client
        self.id = id
        #: False when the idempotency key matched an earlier task.
        self.created = created
        #: True when it joined an unfinished task with the same coalesce key.
        self.coalesced = coalesced

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.id}, created={self.created}, coalesced={self.coalesced})"

    async def result(self, timeout: Optional[float] = None) -> Any:
        """The result once the task succeeded; ``TaskFailedError`` if it ended failed,
        cancelled or expired; ``TimeoutError`` if ``timeout`` seconds pass first."""
        return await self.client.result(self.id, timeout)

    async def wait(self, timeout: Optional[float] = None) -> TaskView:
        """The task once finished (or as it is when ``timeout`` passes)."""
        return await self.client.wait(self.id, timeout)

    async def get(self) -> TaskView:
        return await self.client.get(self.id)

    async def cancel(self) -> StateResult:
        return await self.client.cancel(self.id)

    def events(self) -> "EventStream[Event]":
        return self.client.task_events(self.id)


class EventStream(Generic[T]):
    """A server-sent-events stream as an async iterator that reconnects by itself
    (rotating nodes, backing off; ``UnavailableError`` once no node answers for the
    client's retry budget). ``async with stream:`` connects eagerly (the subscription
    exists when the block starts); ``async for`` alone connects on first use."""

    def __init__(
        self,
        client: AsyncClient,
        path: str,
        parse: Callable[[ServerSentEvent], Optional[T]],
        *,
        resume: bool,
        task_id: Optional[int] = None,
        gap: Any = None,
    ) -> None:
        self._client = client
        self._path = path
        self._parse = parse
        self._resume = resume
        self._task_id = task_id
        self._gap = gap
        self._last_id: Optional[str] = None
        self._resp: Optional[httpx.Response] = None
        self._sse: Optional[AsyncIterator[ServerSentEvent]] = None
        self._node: Optional[str] = None
        self._failed_node: Optional[str] = None
        self._connections = 0
        self._closed = False
        self._pending_gap = False
        self._last_event: Optional[str] = None
        self._new_since_connect = 0

    @property
    def node(self) -> Optional[str]:
        """The node currently streaming."""
        return self._node

    @property
    def connections(self) -> int:
        """How many times the stream connected (1 + reconnects)."""
        return self._connections

    async def __aenter__(self) -> "EventStream[T]":
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __aiter__(self) -> "EventStream[T]":
        return self

    async def open(self) -> None:
        """Connects now (when not connected)."""
        if self._sse is None and not self._closed:
            await self._connect()

    async def aclose(self) -> None:
        self._closed = True
        await self._disconnect()

    async def _disconnect(self) -> None:
        sse, resp = self._sse, self._resp
        self._sse = self._resp = None
        if sse is not None:
            try:
                await sse.aclose()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass
        if resp is not None:
            try:
                await resp.aclose()
            except Exception:  # noqa: BLE001
                pass

    def _choose_node(self) -> str:
        t = self._client._t
        if self._failed_node is None:
            return t.pick()
        if t.leader == self._failed_node:
            t.forget_leader()
        node = t.rotate()
        if node == self._failed_node and len(t.servers) > 1:
            node = t.rotate()
        return node

    async def _connect(self) -> None:
        t = self._client._t
        started = time.monotonic()
        backoff = t.backoff_initial
        while True:
            if self._closed:
                raise StopAsyncIteration
            node = self._choose_node()
            headers = t.headers({"accept": "text/event-stream", "cache-control": "no-store"})
            if self._resume and self._last_id:
                headers["last-event-id"] = self._last_id
            http = t.http()
            timeout = httpx.Timeout(
                connect=t.connect_timeout,
                read=self._client.stream_read_timeout,
                write=t.request_timeout,
                pool=t.request_timeout,
            )
            problem: str
            try:
                req = http.build_request("GET", node + self._path, headers=headers, timeout=timeout)
                resp = await http.send(req, stream=True)
            except httpx.TransportError as e:
                problem = f"{node}: {type(e).__name__}: {e}"
            else:
                if resp.status_code == 200:
                    self._resp = resp
                    self._sse = EventSource(resp).aiter_sse()
                    self._node = node
                    self._failed_node = None
                    self._connections += 1
                    self._new_since_connect = 0
                    if self._connections > 1 and self._gap is not None:
                        self._pending_gap = True
                    return
                body = await resp.aread()
                await resp.aclose()
                err = _rejected(resp.status_code, body)
                if resp.status_code == 503:
                    problem = f"{node}: {err.code}"
                elif resp.status_code == 404 and self._task_id is not None and err.code == codes.NOT_FOUND:
                    # This node may not have applied the task yet: ask the leader.
                    await self._client.get(self._task_id)  # raises not_found if it is gone
                    problem = f"{node}: task {self._task_id} not applied here yet"
                else:
                    raise err
            self._failed_node = node
            elapsed = time.monotonic() - started
            if elapsed + backoff > t.retry_budget:
                raise UnavailableError(f"event stream {self._path}: {problem}", elapsed)
            log.debug("event stream: reconnecting in %.3fs: %s", backoff, problem)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, t.backoff_max)

    async def _ended(self) -> bool:
        """After a clean end of a task's stream: is the task finished (stop) or did the
        node stop (reconnect)?"""
        if self._task_id is None:
            return False
        if self._last_event in FINISHED_STATES:
            return True
        if self._new_since_connect == 0:
            view = await self._client.get(self._task_id)
            return view.finished
        return False

    async def __anext__(self) -> T:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._sse is None:
                await self._connect()
            if self._pending_gap:
                self._pending_gap = False
                return self._gap  # type: ignore[no-any-return]
            assert self._sse is not None
            try:
                sse = await self._sse.__anext__()
            except StopAsyncIteration:
                node = self._node
                await self._disconnect()
                if await self._ended():
                    self._closed = True
                    raise
                # The node stopped (it ends its streams when it does): go elsewhere.
                self._failed_node = node
                continue
            except (httpx.TransportError, SSEError) as e:
                log.debug("event stream from %s broke: %s", self._node, e)
                self._failed_node = self._node
                await self._disconnect()
                continue
            if sse.id:
                self._last_id = sse.id
            if not sse.data:
                continue  # a keep-alive
            self._new_since_connect += 1
            item = self._parse(sse)
            if isinstance(item, Event):
                self._last_event = item.event
            if item is not None:
                return item


def _rejected(status: int, body: bytes) -> RejectedError:
    try:
        d = json.loads(body)
    except ValueError:
        return RejectedError("http_error", body[:200].decode("utf-8", "replace"), status)
    return RejectedError.from_body(d, status)
