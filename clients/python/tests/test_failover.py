"""The leader is SIGKILLed while a worker runs 100 tasks: every task still ends succeeded,
exactly once as far as the cluster is concerned, and the event streams carry on from
another node (the resumable ones without losing or repeating anything)."""

from __future__ import annotations

import asyncio
from typing import Any, List

from taskswarm import AsyncClient, BroadcastMessage, Event, Gap, Task, TaskContext, Worker

from .conftest import WAIT, Cluster, eventually

TASKS = 100


async def _collect(stream: Any, into: List[Any], until: Any = None) -> None:
    async for item in stream:
        into.append(item)
        if until is not None and until(item):
            return


async def test_the_leader_is_killed_while_100_tasks_run_and_every_task_succeeds(fresh_cluster: Cluster):
    c = fresh_cluster
    leader = c.wait_leader()
    leader_first = [c.url(leader)] + [c.url(i) for i in c.running() if i != leader]
    queue = "failover"

    def watcher() -> AsyncClient:
        # No leader known yet: its first stream connects to the first server, the leader.
        return AsyncClient(leader_first)

    producer = AsyncClient(c.urls)
    worker_client = AsyncClient(c.urls)
    b_watch, t_watch, e_watch = watcher(), watcher(), watcher()
    clients = [producer, worker_client, b_watch, t_watch, e_watch]

    worker = Worker(worker_client, [queue], slots=8, lease_ms=4000)
    killed = asyncio.Event()
    completed_by_handlers = 0

    @worker.handler("square")
    async def square(n: int, ctx: TaskContext) -> int:
        nonlocal completed_by_handlers
        await asyncio.sleep(0.02)
        if n >= TASKS // 2:
            # The second half cannot finish before the kill: work is in flight when it lands.
            await asyncio.wait_for(killed.wait(), WAIT)
        completed_by_handlers += 1
        return n * n

    @worker.handler("long")
    async def long(payload: Any, ctx: TaskContext) -> str:
        ctx.progress("before")
        await asyncio.wait_for(killed.wait(), WAIT)
        await asyncio.sleep(0.5)
        ctx.progress("after")
        await asyncio.sleep(worker.heartbeat_interval * 2)  # a heartbeat carries it
        return "long done"

    broadcasts: List[BroadcastMessage] = []
    task_events: List[Event] = []
    live: List[Any] = []
    collectors: List["asyncio.Future[None]"] = []
    streams: List[Any] = []
    try:
        bstream = b_watch.broadcasts(channel="failover")
        estream = e_watch.events(queue=queue, gaps=True)
        streams += [bstream, estream]
        await bstream.open()
        await estream.open()
        assert bstream.node == estream.node == c.url(leader)
        collectors.append(asyncio.ensure_future(_collect(bstream, broadcasts, lambda m: m.message == "after")))
        collectors.append(asyncio.ensure_future(_collect(estream, live)))
        await producer.broadcast("before", channel="failover")

        long_task = await producer.submit("long", None, queue=queue, priority=5, max_attempts=10)
        tstream = t_watch.task_events(long_task.id)
        streams.append(tstream)
        await tstream.open()
        assert tstream.node == c.url(leader)
        collectors.append(asyncio.ensure_future(_collect(tstream, task_events)))

        worker.start()
        enqueued = await producer.enqueue_batch([Task("square", n, queue=queue, max_attempts=10) for n in range(TASKS)])
        handles = [producer.handle(e.id) for e in enqueued]  # type: ignore[union-attr]
        await eventually(lambda: _at_least(lambda: completed_by_handlers, 25), "25 tasks done before the kill")
        await eventually(
            lambda: _true(any(e.progress == "before" for e in task_events)), "the long task's first progress"
        )
        done_at_kill = completed_by_handlers
        c.kill(leader)
        killed.set()
        assert done_at_kill < TASKS

        # A write after the kill goes through the new leader (retried through the election).
        await producer.broadcast("after", channel="failover")
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
        assert results == [n * n for n in range(TASKS)]
        assert await long_task.result(timeout=60) == "long done"
        new_leader = c.wait_leader()
        assert new_leader != leader

        # The broadcast stream resumed on another node with Last-Event-ID: both messages,
        # once each, in order.
        await asyncio.wait_for(collectors[0], WAIT)
        assert [m.message for m in broadcasts] == ["before", "after"], broadcasts
        assert broadcasts[0].seq < broadcasts[1].seq
        assert bstream.connections >= 2 and bstream.node != c.url(leader)

        # The long task's stream resumed too: every event once, numbered without a gap,
        # the progress from before and after the kill, ending with its success.
        await asyncio.wait_for(collectors[2], WAIT)
        assert [e.seq for e in task_events] == list(range(1, len(task_events) + 1)), task_events
        assert task_events[-1].event == "succeeded"
        progress = [e.progress for e in task_events if e.event == "progress"]
        assert "before" in progress and "after" in progress, task_events
        assert tstream.connections >= 2

        # The all-tasks stream cannot resume, but it reconnects and says where the gap is.
        gap_at = next(i for i, x in enumerate(live) if isinstance(x, Gap))
        assert live[gap_at].reason == "reconnected"
        await eventually(
            lambda: _true(any(isinstance(x, Event) and x.event == "succeeded" for x in live[gap_at:])),
            "events after the reconnect",
        )
    finally:
        killed.set()
        stats = await worker.shutdown(grace=10)
        for f in collectors:
            f.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)
        for st in streams:
            await st.aclose()
        for cl in clients:
            await cl.aclose()
    # Each task succeeded through exactly one accepted complete of this worker.
    assert stats.completed == TASKS + 1, stats
    assert stats.abandoned == 0, stats


async def _at_least(get: Any, n: int) -> bool:
    return get() >= n


async def _true(value: Any) -> Any:
    return value
