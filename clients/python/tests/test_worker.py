"""The worker runtime against a live cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List

import pytest

from taskswarm import (
    AsyncClient,
    Backoff,
    CancelReason,
    PermanentError,
    RejectedError,
    Task,
    TaskContext,
    TaskFailedError,
    Worker,
    codes,
)

from .conftest import WAIT, Cluster, eventually


@pytest.mark.parametrize("mode", ["batch", "fused", "single"])
async def test_a_worker_runs_two_kinds_in_several_slots_and_every_result_arrives(
    client: AsyncClient, queue: str, mode: str
):
    slots = 4
    worker = Worker(
        client,
        [queue],
        slots=slots,
        lease_ms=5000,
        batch_completes=mode == "batch",
        claim_on_complete=mode == "fused",
    )
    lock = threading.Lock()
    running = {"now": 0, "max": 0}

    def enter() -> None:
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])

    def leave() -> None:
        with lock:
            running["now"] -= 1

    @worker.handler("add")
    async def add(payload: Dict[str, int], ctx: TaskContext) -> int:
        enter()
        try:
            await asyncio.sleep(0.15)
            return payload["a"] + payload["b"]
        finally:
            leave()

    @worker.handler("upper")
    def upper(payload: str) -> str:  # a plain function: runs in a thread
        enter()
        try:
            time.sleep(0.15)
            return payload.upper()
        finally:
            leave()

    worker.start()
    try:
        tasks = [Task("add", {"a": i, "b": 100}, queue=queue) for i in range(12)]
        tasks += [Task("upper", f"word{i}", queue=queue) for i in range(12)]
        enqueued = await client.enqueue_batch(tasks)
        handles = [client.handle(e.id) for e in enqueued]  # type: ignore[union-attr]
        results = await asyncio.gather(*(h.result(timeout=WAIT) for h in handles))
        assert results == [i + 100 for i in range(12)] + [f"WORD{i}" for i in range(12)]
        # Several ran at once, never more than the slots.
        assert 2 <= running["max"] <= slots, running
    finally:
        stats = await worker.shutdown(grace=5)
    assert (stats.claimed, stats.completed, stats.failed, stats.lease_lost) == (24, 24, 0, 0), stats


async def test_reserved_slots_take_urgent_work_while_the_general_slot_is_busy(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=1, reserve=[(10, 1)], lease_ms=5000)
    started = asyncio.Event()
    unblock = asyncio.Event()

    @worker.handler("block")
    async def block(payload: Any, ctx: TaskContext) -> str:
        started.set()
        await asyncio.wait_for(unblock.wait(), WAIT)
        return "unblocked"

    @worker.handler("urgent")
    async def urgent(payload: Any) -> str:
        return "urgent done"

    worker.start()
    try:
        first = await client.submit("block", None, queue=queue)
        await asyncio.wait_for(started.wait(), WAIT)
        second = await client.submit("block", None, queue=queue)
        hot = await client.submit("urgent", None, queue=queue, priority=10)
        # The urgent task runs in the reserved slot while the general one is still busy...
        assert await hot.result(timeout=WAIT) == "urgent done"
        assert (await first.get()).state == "running"
        # ...and the reserved slot never took low-priority work.
        assert (await second.get()).state == "queued"
        unblock.set()
        assert await first.result(timeout=WAIT) == "unblocked"
        assert await second.result(timeout=WAIT) == "unblocked"
    finally:
        unblock.set()
        await worker.shutdown(grace=5)


async def test_progress_reaches_an_event_stream_subscriber(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=2, lease_ms=900)  # heartbeats every 0.3 s
    seen = asyncio.Event()

    @worker.handler("report")
    async def report(payload: Any, ctx: TaskContext) -> str:
        ctx.progress({"pct": 50, "token": ctx.token})
        # Keep running until the subscriber saw it (it rides the next heartbeat).
        await asyncio.wait_for(seen.wait(), WAIT)
        return "ok"

    async with client.events(queue=queue) as stream:  # subscribed before anything happens
        worker.start()
        try:
            h = await client.submit("report", None, queue=queue)
            events: List[Any] = []
            async for ev in stream:
                events.append(ev)
                if ev.event == "progress":
                    seen.set()
                if ev.event == "succeeded":
                    break
            assert await h.result(timeout=WAIT) == "ok"
        finally:
            seen.set()
            await worker.shutdown(grace=5)
    kinds = [e.event for e in events]
    assert kinds == ["enqueued", "claimed", "progress", "succeeded"], kinds
    progress = events[2]
    assert progress.task == h.id and progress.progress["pct"] == 50
    assert progress.progress["token"] == events[1].token == progress.token
    assert progress.state == "running"
    # The task's own stream replays it too.
    history = [e async for e in client.task_events(h.id)]
    assert [e.event for e in history] == kinds
    assert history[2].progress == progress.progress


async def test_a_cancel_reaches_the_running_handler(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=1, lease_ms=900)
    started = asyncio.Event()
    reasons: List[Any] = []

    @worker.handler("long")
    async def long(payload: Any, ctx: TaskContext) -> str:
        started.set()
        await asyncio.wait_for(ctx.cancelled.wait(), WAIT)
        reasons.append(ctx.cancel_reason)
        return "stopped early"

    worker.start()
    try:
        h = await client.submit("long", None, queue=queue)
        await asyncio.wait_for(started.wait(), WAIT)
        answer = await h.cancel()
        assert answer.state == "running"  # told on the next heartbeat
        with pytest.raises(TaskFailedError) as ended:
            await h.result(timeout=WAIT)
        assert ended.value.state == "cancelled"
    finally:
        stats = await worker.shutdown(grace=5)
    assert reasons == [CancelReason.CANCEL_REQUESTED]
    assert (stats.cancelled, stats.completed) == (1, 0), stats
    events = [e.event for e in (await client.history(h.id)).events]
    assert events == ["enqueued", "claimed", "cancel_requested", "released", "cancelled"], events


async def test_a_raising_handler_is_retried_then_dead_lettered(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=2, lease_ms=5000)
    attempts: List[int] = []

    @worker.handler("flaky")
    async def flaky(payload: Any, ctx: TaskContext) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError(f"boom on attempt {ctx.attempt}")

    @worker.handler("bad")
    async def bad(payload: Any, ctx: TaskContext) -> None:
        attempts.append(-ctx.attempt)
        raise PermanentError("cannot parse", code="bad_input")

    worker.start()
    try:
        fast = Backoff(initial_ms=20, multiplier=1.0, max_ms=20)
        h = await client.submit("flaky", None, queue=queue, max_attempts=3, backoff=fast)
        with pytest.raises(TaskFailedError) as dead:
            await h.result(timeout=WAIT)
        assert dead.value.state == "failed"
        assert dead.value.code == "handler_error"
        assert "RuntimeError: boom on attempt 3" in dead.value.message
        assert sorted(a for a in attempts if a > 0) == [1, 2, 3]

        p = await client.submit("bad", None, queue=queue, max_attempts=5, backoff=fast)
        with pytest.raises(TaskFailedError) as permanent:
            await p.result(timeout=WAIT)
        assert (permanent.value.code, permanent.value.message) == ("bad_input", "cannot parse")
        assert [a for a in attempts if a < 0] == [-1]  # not retried
    finally:
        stats = await worker.shutdown(grace=5)
    assert stats.failed == 4, stats
    events = [e.event for e in (await client.history(h.id)).events]
    assert (events.count("claimed"), events.count("attempt_failed"), events[-1]) == (3, 3, "failed"), events
    # A dead-lettered task can be requeued with fresh attempts.
    assert (await client.requeue(h.id)).state == "queued"


async def test_ctx_release_gives_the_task_back_without_using_an_attempt(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=1, lease_ms=5000)
    calls: List[int] = []

    @worker.handler("picky")
    async def picky(payload: Any, ctx: TaskContext) -> str:
        calls.append(ctx.attempt)
        if len(calls) == 1:
            raise ctx.release(delay_ms=50)
        return "second time"

    worker.start()
    try:
        h = await client.submit("picky", None, queue=queue, max_attempts=1)
        assert await h.result(timeout=WAIT) == "second time"
    finally:
        stats = await worker.shutdown(grace=5)
    assert (stats.released, stats.completed, stats.failed) == (1, 1, 0), stats
    assert "released" in [e.event for e in (await client.history(h.id)).events]


async def test_a_stale_token_after_lease_loss_is_refused_and_ctx_cancelled_fires(cluster: Cluster, queue: str):
    """Worker A never heartbeats in time, so its lease runs out; its handler sees
    ctx.cancelled, waits until B finished the task, then tries its stale token."""
    a_client, b_client = AsyncClient(cluster.urls), AsyncClient(cluster.urls)
    lease_ms = 1000
    a = Worker(a_client, [queue], slots=1, lease_ms=lease_ms, heartbeat_interval=3600, handler_stop_wait=WAIT, worker_id="slow")
    b = Worker(b_client, [queue], slots=1, lease_ms=lease_ms, worker_id="fast")
    seen: Dict[str, Any] = {}
    done = asyncio.Event()

    @a.handler("job")
    async def slow(payload: Any, ctx: TaskContext) -> str:
        claimed = time.monotonic()
        await asyncio.wait_for(ctx.cancelled.wait(), WAIT)
        seen["fired_after"] = time.monotonic() - claimed
        seen["reason"] = ctx.cancel_reason
        seen["token"] = ctx.token
        await eventually(lambda: _state_is(a_client, ctx.id, "succeeded"), "B to finish the task")
        try:
            await a_client.complete(ctx.id, ctx.token, "late")
        except RejectedError as e:
            seen["late"] = e
        done.set()
        return "late"

    @b.handler("job")
    async def fast(payload: Any) -> str:
        return "fast"

    a.start()
    try:
        h = await a_client.submit("job", None, queue=queue, max_attempts=3)
        await eventually(lambda: _state_is(a_client, h.id, "running"), "A to claim the task")
        b.start()
        await asyncio.wait_for(done.wait(), WAIT)
        assert seen["reason"] == CancelReason.LEASE_EXPIRED
        # Counted from when A sent its claim, so it fires within one lease.
        assert seen["fired_after"] <= lease_ms / 1000 + 0.5, seen
        assert isinstance(seen.get("late"), RejectedError) and seen["late"].code == codes.LEASE_LOST, seen
        assert await h.result(timeout=WAIT) == "fast"
        claims = [e for e in (await a_client.history(h.id)).events if e.event == "claimed"]
        assert [(c.worker, c.token) for c in claims][0] == ("slow", seen["token"])
        assert claims[1].worker == "fast" and claims[1].token > seen["token"]
    finally:
        done.set()
        sa = await a.shutdown(grace=5)
        sb = await b.shutdown(grace=5)
        await a_client.aclose()
        await b_client.aclose()
    # A dropped its result instead of completing: its complete would race B's attempt.
    assert (sa.completed, sa.lease_lost, sa.heartbeats) == (0, 1, 0), sa
    assert (sb.completed, sb.lease_lost) == (1, 0), sb


async def test_a_heartbeat_refused_by_the_cluster_sets_ctx_cancelled(client: AsyncClient, queue: str):
    """The cluster ends the attempt itself (start_to_close_ms): the next heartbeat is
    refused with lease_lost, the handler's ctx.cancelled fires, its stale token is refused,
    and the next attempt completes."""
    worker = Worker(client, [queue], slots=1, lease_ms=3000)  # heartbeats every second
    first: Dict[str, Any] = {}

    @worker.handler("job")
    async def job(payload: Any, ctx: TaskContext) -> str:
        if ctx.attempt > 1:
            return f"attempt {ctx.attempt}"
        await asyncio.wait_for(ctx.cancelled.wait(), WAIT)
        first["reason"] = ctx.cancel_reason
        try:
            await client.complete(ctx.id, ctx.token, "stale")
        except RejectedError as e:
            first["late"] = e
        return "dropped"

    worker.start()
    try:
        h = await client.submit(
            "job", None, queue=queue, start_to_close_ms=500, max_attempts=2, backoff=Backoff(10, 1.0, 10)
        )
        assert await h.result(timeout=WAIT) == "attempt 2"
    finally:
        stats = await worker.shutdown(grace=5)
    assert first["reason"] == CancelReason.LEASE_LOST
    assert first["late"].code == codes.LEASE_LOST
    assert (stats.lease_lost, stats.completed) == (1, 1), stats
    failed = [e for e in (await client.history(h.id)).events if e.event == "attempt_failed"]
    assert failed[0].error is not None and failed[0].error.code == "run_timeout"


async def test_graceful_shutdown_finishes_running_work_and_releases_unstarted_work(client: AsyncClient, queue: str):
    worker = Worker(client, [queue], slots=2, lease_ms=15000, claim_wait=5.0)
    ran: List[int] = []

    @worker.handler("job")
    async def job(payload: Any, ctx: TaskContext) -> str:
        ran.append(ctx.id)
        await asyncio.sleep(0.5)
        return "finished"

    worker.start()
    running = await client.submit("job", None, queue=queue)
    await eventually(lambda: _true(ran), "the first task to start")
    # The free slot's long-poll claim is in flight now.
    await eventually(lambda: _true(worker.stats.claims_in_flight), "a claim in flight")
    stopping = asyncio.ensure_future(worker.shutdown(grace=10))
    await eventually(lambda: _true(worker.stopping), "the shutdown to begin")
    late = await client.submit("job", None, queue=queue)
    stats = await asyncio.wait_for(stopping, WAIT)
    # The running handler finished within the grace period...
    assert await running.result(timeout=1) == "finished"
    # ...and the task that the claim in flight brought back was given back unstarted.
    assert ran == [running.id]
    view = await late.get()
    assert view.state == "queued", view
    events = [e.event for e in (await client.history(late.id)).events]
    assert events == ["enqueued", "claimed", "released"], events
    assert (stats.completed, stats.released, stats.running) == (1, 1, 0), stats


async def test_sigterm_stops_a_worker_process_gracefully(client: AsyncClient, queue: str, tmp_path):
    """A worker process on SIGTERM: stops claiming, lets a handler that finishes within
    the grace period complete, releases the one still running at its end, and never
    starts the third task."""
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            from taskswarm import AsyncClient, Worker

            async def main():
                client = AsyncClient({client.servers!r})
                worker = Worker(client, [{queue!r}], slots=2, lease_ms=6000, grace=3.0)

                @worker.handler("finish")
                async def finish(payload, ctx):
                    print("started", ctx.id, flush=True)
                    await asyncio.sleep(1.5)
                    return "finished"

                @worker.handler("hold")
                async def hold(payload, ctx):
                    print("started", ctx.id, flush=True)
                    if await ctx.sleep(60):
                        raise RuntimeError("interrupted by " + ctx.cancel_reason.value)
                    return "held"

                stats = await worker.run()
                print("stats", stats.completed, stats.released, stats.failed, flush=True)
                await client.aclose()

            asyncio.run(main())
            """
        )
    )
    a = await client.submit("finish", None, queue=queue)
    b = await client.submit("hold", None, queue=queue)
    c = await client.submit("hold", None, queue=queue)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None
        started: List[int] = []
        loop = asyncio.get_running_loop()
        while len(started) < 2:
            line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), WAIT)
            assert line, proc.stderr.read() if proc.stderr else "worker exited"
            if line.startswith("started"):
                started.append(int(line.split()[1]))
        assert sorted(started) == [a.id, b.id]
        proc.send_signal(signal.SIGTERM)
        out, err = await loop.run_in_executor(None, lambda: proc.communicate(timeout=WAIT))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stats 1 1 0" in out, (out, err)
    assert await a.result(timeout=1) == "finished"
    held = await b.get()
    assert held.state == "queued", held
    events = [e.event for e in (await client.history(b.id)).events]
    assert events == ["enqueued", "claimed", "released"], events  # no attempt used up
    assert [e.event for e in (await client.history(c.id)).events] == ["enqueued"]


async def _state_is(client: AsyncClient, task_id: int, state: str) -> bool:
    return (await client.get(task_id)).state == state


async def _true(value: Any) -> Any:
    return value
