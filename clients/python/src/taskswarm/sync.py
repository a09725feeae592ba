"""``Client``: a thin blocking wrapper of ``AsyncClient`` for producers and scripts.

It runs an ``AsyncClient`` on a private event loop in a daemon thread, so it works from
any thread (and inside a program that has its own event loop), and each call blocks until
the async call returns. Errors are the same three kinds.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Coroutine, Iterable, Iterator, List, Optional, Sequence, TypeVar, Union

from .client import AsyncClient, EventStream, TaskLike
from .errors import RejectedError
from .types import (
    BroadcastMessage,
    ClusterStatus,
    Enqueued,
    Event,
    EventHistory,
    Gap,
    QueueView,
    StateResult,
    Task,
    TaskPage,
    TaskView,
)

__all__ = ["Client", "SyncTaskHandle"]

T = TypeVar("T")
_END = object()


class Client:
    """Blocking client; takes the same arguments as ``AsyncClient``. Use as a context
    manager or call ``close()``."""

    def __init__(self, servers: Union[None, str, Sequence[str]] = None, api_token: Optional[str] = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="taskswarm-client", daemon=True)
        self._thread.start()
        self.aio = AsyncClient(servers, api_token, **kwargs)
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._run(self.aio.aclose())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def leader(self) -> Optional[str]:
        return self.aio.leader

    def new_key(self) -> str:
        return self.aio.new_key()

    # ---- producers -----------------------------------------------------------------------

    def enqueue(self, task: TaskLike, payload: Any = None, **options: Any) -> Enqueued:
        """See ``AsyncClient.enqueue``."""
        return self._run(self.aio.enqueue(task, payload, **options))

    def enqueue_batch(self, tasks: Iterable[Task]) -> List[Union[Enqueued, RejectedError]]:
        return self._run(self.aio.enqueue_batch(list(tasks)))

    def submit(self, task: TaskLike, payload: Any = None, **options: Any) -> "SyncTaskHandle":
        """Enqueues and returns a handle: ``client.submit("resize", {...}).result()``."""
        r = self.enqueue(task, payload, **options)
        return SyncTaskHandle(self, r.id, r.created, r.coalesced)

    def get(self, task_id: int, *, consistency: Optional[str] = None) -> TaskView:
        return self._run(self.aio.get(task_id, consistency=consistency))

    def wait(self, task_id: int, timeout: Optional[float] = None) -> TaskView:
        return self._run(self.aio.wait(task_id, timeout))

    def result(self, task_id: int, timeout: Optional[float] = None) -> Any:
        return self._run(self.aio.result(task_id, timeout))

    def history(self, task_id: int) -> EventHistory:
        return self._run(self.aio.history(task_id))

    def list(
        self, queue: Optional[str] = None, state: Optional[str] = None, *, limit: int = 100, after: Optional[int] = None
    ) -> TaskPage:
        return self._run(self.aio.list(queue, state, limit=limit, after=after))

    def cancel(self, task_id: int) -> StateResult:
        return self._run(self.aio.cancel(task_id))

    def requeue(self, task_id: int) -> StateResult:
        return self._run(self.aio.requeue(task_id))

    def queues(self) -> List[QueueView]:
        return self._run(self.aio.queues())

    def pause(self, queue: str) -> QueueView:
        return self._run(self.aio.pause(queue))

    def resume(self, queue: str) -> QueueView:
        return self._run(self.aio.resume(queue))

    def broadcast(self, message: Any, channel: str = "all") -> int:
        return self._run(self.aio.broadcast(message, channel))

    def recent_broadcasts(self, after: int = 0) -> List[BroadcastMessage]:
        return self._run(self.aio.recent_broadcasts(after))

    def cluster(self, *, state_hash: bool = False) -> ClusterStatus:
        return self._run(self.aio.cluster(state_hash=state_hash))

    # ---- streams (blocking iterators) ----------------------------------------------------

    def events(self, queue: Optional[str] = None, group: Optional[str] = None, *, gaps: bool = False) -> Iterator[Union[Event, Gap]]:
        stream: "EventStream[Any]" = (
            self.aio.events(queue, group, gaps=True) if gaps else self.aio.events(queue, group)
        )
        return self._iterate(stream)

    def task_events(self, task_id: int) -> Iterator[Event]:
        return self._iterate(self.aio.task_events(task_id))

    def broadcasts(self, channel: Optional[str] = None, *, after: int = 0) -> Iterator[BroadcastMessage]:
        return self._iterate(self.aio.broadcasts(channel, after=after))

    def _iterate(self, stream: "EventStream[T]") -> Iterator[T]:
        """Pumps an async stream on the client's loop into a blocking generator; closing
        the generator closes the stream."""
        items: "queue.Queue[Any]" = queue.Queue()

        async def pump() -> None:
            try:
                async for item in stream:
                    items.put(item)
                items.put(_END)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                items.put(e)
            finally:
                await stream.aclose()

        fut = asyncio.run_coroutine_threadsafe(pump(), self._loop)

        def gen() -> Iterator[T]:
            try:
                while True:
                    item = items.get()
                    if item is _END:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                fut.cancel()

        return gen()


class SyncTaskHandle:
    """A submitted task: ``handle.result()`` blocks until it finishes."""

    def __init__(self, client: Client, id: int, created: bool, coalesced: bool) -> None:
        self.client = client
        self.id = id
        self.created = created
        self.coalesced = coalesced

    def __repr__(self) -> str:
        return f"SyncTaskHandle(id={self.id}, created={self.created}, coalesced={self.coalesced})"

    def result(self, timeout: Optional[float] = None) -> Any:
        """The result once the task succeeded; ``TaskFailedError`` if it ended failed,
        cancelled or expired; ``TimeoutError`` if ``timeout`` seconds pass first."""
        return self.client.result(self.id, timeout)

    def wait(self, timeout: Optional[float] = None) -> TaskView:
        return self.client.wait(self.id, timeout)

    def get(self) -> TaskView:
        return self.client.get(self.id)

    def cancel(self) -> StateResult:
        return self.client.cancel(self.id)
