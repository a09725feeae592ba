"""Python client and worker library for taskswarm, a Raft-replicated task coordinator.

Producers::

    async with AsyncClient() as client:
        handle = await client.submit("resize", {"url": "..."}, queue="images")
        print(await handle.result())

Workers::

    worker = Worker(AsyncClient(), queues=["images"], slots=8)

    @worker.handler("resize")
    async def resize(payload, ctx):
        ctx.progress({"pct": 50})
        return {"ok": True}

    asyncio.run(worker.run())
"""

from .client import DEFAULT_SERVERS, SERVERS_ENV, AsyncClient, EventStream, TaskHandle
from .errors import (
    IndeterminateError,
    ProtocolError,
    RejectedError,
    TaskFailedError,
    TaskswarmError,
    UnavailableError,
    codes,
)
from .sync import Client, SyncTaskHandle
from .types import (
    Backoff,
    BroadcastMessage,
    ClaimedTask,
    ClusterStatus,
    Enqueued,
    Event,
    EventHistory,
    Gap,
    HeartbeatAck,
    LeaseGrant,
    LeaseView,
    Member,
    QueueView,
    StateResult,
    Task,
    TaskErrorView,
    TaskPage,
    TaskView,
)
from .worker import (
    CancelReason,
    PermanentError,
    ReleaseTask,
    RetryableError,
    TaskContext,
    Worker,
    WorkerStats,
    limits,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "TaskHandle",
    "SyncTaskHandle",
    "EventStream",
    "DEFAULT_SERVERS",
    "SERVERS_ENV",
    "TaskswarmError",
    "RejectedError",
    "IndeterminateError",
    "UnavailableError",
    "ProtocolError",
    "TaskFailedError",
    "codes",
    "Backoff",
    "BroadcastMessage",
    "ClaimedTask",
    "ClusterStatus",
    "Enqueued",
    "Event",
    "EventHistory",
    "Gap",
    "HeartbeatAck",
    "LeaseGrant",
    "LeaseView",
    "Member",
    "QueueView",
    "StateResult",
    "Task",
    "TaskErrorView",
    "TaskPage",
    "TaskView",
    "Worker",
    "TaskContext",
    "PermanentError",
    "RetryableError",
    "ReleaseTask",
    "CancelReason",
    "WorkerStats",
    "limits",
]
