"""The client against a live cluster: redirects, idempotency, the error model, the
producer and operator endpoints, the sync wrapper."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from taskswarm import (
    AsyncClient,
    Backoff,
    Client,
    Enqueued,
    IndeterminateError,
    RejectedError,
    Task,
    TaskFailedError,
    UnavailableError,
    codes,
)

from .conftest import Cluster, free_port


async def test_enqueue_through_a_follower_follows_the_redirect_and_remembers_the_leader(cluster: Cluster, queue: str):
    leader = cluster.wait_leader()
    follower = cluster.followers()[0]
    # The follower is the only server this client knows: a write can only succeed by
    # following its 307 to the leader.
    async with AsyncClient([cluster.url(follower)]) as c:
        assert c.leader is None
        r = await c.enqueue("echo", {"n": 1}, queue=queue)
        assert isinstance(r, Enqueued) and r.created and r.state == "queued"
        assert c.leader == cluster.url(leader)
        view = await c.get(r.id)
        assert (view.queue, view.kind, view.payload, view.state) == (queue, "echo", {"n": 1}, "queued")
        # The generated idempotency key went along.
        assert view.idempotency_key and view.idempotency_key.startswith("py")


async def test_a_forwarding_follower_answers_writes_itself():
    c = Cluster(3, extra=["--forward-to-leader"])
    try:
        follower = c.followers()[0]
        async with AsyncClient([c.url(follower)]) as client:
            r = await client.enqueue("echo", 1, queue="fwd")
            assert r.created
            assert client.leader is None  # no redirect: the follower forwarded it
            assert (await client.get(r.id)).state == "queued"
        # A client that asks for the redirect gets one and learns the leader.
        async with AsyncClient([c.url(follower)], no_forward=True) as client:
            await client.enqueue("echo", 2, queue="fwd")
            assert client.leader == c.url(c.wait_leader())
    finally:
        c.stop_all()


async def test_an_idempotent_retry_returns_the_same_task(client: AsyncClient, queue: str):
    first = await client.enqueue("echo", {"x": 1}, queue=queue, idempotency_key=f"{queue}-k1")
    again = await client.enqueue("echo", {"x": 1}, queue=queue, idempotency_key=f"{queue}-k1")
    assert first.created and not again.created
    assert again.id == first.id
    page = await client.list(queue)
    assert [t.id for t in page.tasks] == [first.id]


class DropFirstAnswer(httpx.AsyncHTTPTransport):
    """Sends every request, but loses the answer of the first one whose path matches: the
    server acted, the client cannot know."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.dropped = 0
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await super().handle_async_request(request)
        if request.url.path == self.path and resp.status_code != 307:
            self.sent += 1
            if self.dropped == 0:
                await resp.aread()
                await resp.aclose()
                self.dropped += 1
                raise httpx.ReadError("connection lost after the request was sent (test)")
        return resp


async def test_an_enqueue_whose_answer_was_lost_is_retried_without_a_second_task(cluster: Cluster, queue: str):
    transport = DropFirstAnswer("/v1/tasks")
    async with AsyncClient(cluster.urls, http_transport=transport) as c:
        r = await c.enqueue("echo", {"once": True}, queue=queue)
        assert (transport.sent, transport.dropped) == (2, 1)
        # The first try created the task; the retry (same generated key) found it.
        assert not r.created
        page = await c.list(queue)
        assert [t.id for t in page.tasks] == [r.id]


async def test_a_claim_whose_answer_was_lost_is_indeterminate_not_retried(cluster: Cluster, queue: str):
    transport = DropFirstAnswer("/v1/claim")
    async with AsyncClient(cluster.urls, http_transport=transport) as c:
        await c.enqueue("echo", 1, queue=queue)
        with pytest.raises(IndeterminateError):
            await c.claim("w1", [queue], max=1)
        assert transport.sent == 1
        # The lost claim did lease the task: the outcome really was "maybe".
        page = await c.list(queue)
        assert page.tasks[0].state == "running"


async def test_bad_input_is_rejected_with_the_servers_code(client: AsyncClient, queue: str):
    with pytest.raises(RejectedError) as bad_queue:
        await client.enqueue("echo", 1, queue="bad queue!")
    assert (bad_queue.value.code, bad_queue.value.status) == (codes.INVALID_REQUEST, 400)
    assert "queue" in bad_queue.value.message

    with pytest.raises(RejectedError) as too_big:
        await client.enqueue("echo", "x" * (256 * 1024 + 1), queue=queue)
    assert (too_big.value.code, too_big.value.status) == (codes.PAYLOAD_TOO_LARGE, 413)

    with pytest.raises(RejectedError) as bad_priority:
        await client.enqueue("echo", 1, queue=queue, priority=5000)
    assert bad_priority.value.code == codes.INVALID_REQUEST

    with pytest.raises(RejectedError) as bad_backoff:
        await client.enqueue("echo", 1, queue=queue, backoff=Backoff(10, 0.5, 100))
    assert bad_backoff.value.code == codes.INVALID_REQUEST

    with pytest.raises(RejectedError) as missing:
        await client.get(999_999_999)
    assert (missing.value.code, missing.value.status) == (codes.NOT_FOUND, 404)

    # In a batch, each refused item is that item's answer; the others are enqueued.
    results = await client.enqueue_batch(
        [Task("echo", 1, queue=queue), Task("echo", 2, queue="no spaces"), Task("echo", "y" * 300_000, queue=queue)]
    )
    assert isinstance(results[0], Enqueued)
    assert isinstance(results[1], RejectedError) and results[1].code == codes.INVALID_REQUEST
    assert isinstance(results[2], RejectedError) and results[2].code == codes.PAYLOAD_TOO_LARGE
    assert [t.id for t in (await client.list(queue)).tasks] == [results[0].id]


async def test_nothing_listening_is_unavailable():
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with AsyncClient(dead, retry_budget=1.0) as c:
        with pytest.raises(UnavailableError):
            await c.enqueue("echo", 1)


async def test_every_enqueue_option_reaches_the_server(client: AsyncClient, queue: str):
    r = await client.enqueue(
        "echo",
        {"a": [1, 2]},
        queue=queue,
        priority=7,
        delay_ms=60_000,
        max_attempts=5,
        backoff={"initial_ms": 100, "multiplier": 3.0, "max_ms": 1000},
        lease_ms=1234,
        schedule_to_start_ms=3_600_000,
        start_to_close_ms=600_000,
        schedule_to_close_ms=7_200_000,
        idempotency_key=f"{queue}-key",
        coalesce_key=f"{queue}-co",
        group="g1",
    )
    t = await client.get(r.id)
    assert (t.priority, t.max_attempts, t.group, t.coalesce_key, t.idempotency_key) == (
        7,
        5,
        "g1",
        f"{queue}-co",
        f"{queue}-key",
    )
    assert t.state == "scheduled" and t.run_at_ms is not None
    # The coalesce key joins the unfinished task.
    joined = await client.enqueue("echo", {}, queue=queue, coalesce_key=f"{queue}-co")
    assert joined.id == r.id and joined.coalesced
    # run_at in the past: ready now.
    now = await client.enqueue("echo", 1, queue=queue, run_at_ms=1)
    assert (await client.get(now.id)).state == "queued"


async def test_operator_endpoints(client: AsyncClient, queue: str):
    ids = [r.id for r in await client.enqueue_batch([Task("echo", i, queue=queue) for i in range(5)])]  # type: ignore[union-attr]
    paused = await client.pause(queue)
    assert paused.paused and paused.counts["queued"] == 5
    assert await client.claim("w", [queue], max=5) == []
    resumed = await client.resume(queue)
    assert not resumed.paused
    assert any(q.name == queue and q.counts["queued"] == 5 for q in await client.queues())

    page = await client.list(queue, "queued", limit=2)
    assert [t.id for t in page.tasks] == ids[:2] and page.next is not None
    seen = [t.id async for t in client.iter_tasks(queue, page_size=2)]
    assert seen == ids

    # Cancel a queued task: it ends at once; its result says so.
    assert (await client.cancel(ids[0])).state == "cancelled"
    with pytest.raises(TaskFailedError) as ended:
        await client.handle(ids[0]).result(timeout=5)
    assert ended.value.state == "cancelled"
    # Cancelling again is a refusal, not a silent success.
    with pytest.raises(RejectedError) as again:
        await client.cancel(ids[0])
    assert again.value.code == codes.TASK_FINISHED

    # Fail one for good through the raw worker endpoints, then requeue it.
    [claimed] = await client.claim("w", [queue], max=1)
    failed = await client.fail(claimed.id, claimed.lease.token, "nope", retryable=False, code="bad_input")
    assert failed.state == "failed"
    view = await client.get(claimed.id)
    assert view.error is not None and view.error.code == "bad_input"
    assert (await client.requeue(claimed.id)).state == "queued"

    seq = await client.broadcast({"hello": queue}, channel="ops")
    assert any(m.seq == seq and m.message == {"hello": queue} for m in await client.recent_broadcasts(seq - 1))

    status = await client.cluster()
    assert status.leader_id is not None and len(status.members) == 3
    history = await client.history(ids[0])
    assert [e.event for e in history.events] == ["enqueued", "cancelled"]


async def test_result_times_out_while_nobody_works(client: AsyncClient, queue: str):
    h = await client.submit("echo", 1, queue=queue)
    with pytest.raises(TimeoutError):
        await h.result(timeout=0.3)
    assert (await h.get()).state == "queued"


def test_the_sync_client_for_producers(cluster: Cluster, queue: str):
    with Client(cluster.urls) as c:
        h = c.submit("echo", {"sync": True}, queue=queue)
        assert h.created and c.get(h.id).state == "queued"
        again = c.enqueue(Task("echo", 1, queue=queue, idempotency_key=f"{queue}-s"))
        assert c.enqueue(Task("echo", 1, queue=queue, idempotency_key=f"{queue}-s")).id == again.id
        with pytest.raises(RejectedError) as bad:
            c.enqueue("echo", 1, queue="bad/queue")
        assert bad.value.code == codes.INVALID_REQUEST
        with pytest.raises(TimeoutError):
            h.result(timeout=0.2)
        # A raw claim and complete, then the handle's result arrives.
        aio_claim = c._run(c.aio.claim("w", [queue], max=1))
        assert aio_claim[0].id == h.id
        c._run(c.aio.complete(h.id, aio_claim[0].lease.token, {"done": 1}))
        assert h.result(timeout=10) == {"done": 1}
        stream = c.task_events(h.id)
        assert [e.event for e in stream] == ["enqueued", "claimed", "succeeded"]


async def test_completing_twice_with_the_token_is_a_duplicate(client: AsyncClient, queue: str):
    await client.enqueue("echo", 1, queue=queue)
    [t] = await client.claim("w", [queue], max=1, lease_ms=5000)
    first = await client.complete(t.id, t.lease.token, "r")
    again = await client.complete(t.id, t.lease.token, "r")
    assert (first.state, first.duplicate, again.duplicate) == ("succeeded", False, True)
    with pytest.raises(RejectedError) as stale:
        await client.complete(t.id, t.lease.token + 1, "other")
    assert stale.value.code in (codes.LEASE_LOST, codes.TASK_FINISHED)


async def test_task_event_stream_waits_for_a_task_enqueued_just_now(client: AsyncClient, queue: str):
    h = await client.submit("echo", 1, queue=queue)
    got = []

    async def consume():
        async for e in client.task_events(h.id):
            got.append(e)

    consumer = asyncio.ensure_future(consume())
    [t] = await client.claim("w", [queue], max=1, wait_ms=2000)
    await client.complete(t.id, t.lease.token, 2)
    await asyncio.wait_for(consumer, 10)
    assert [e.event for e in got] == ["enqueued", "claimed", "succeeded"]
    assert [e.seq for e in got] == [1, 2, 3]
