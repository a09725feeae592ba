"""The retry and redirect rules, against scripted answers (no cluster): what each answer
proves decides whether a request is sent again."""

from __future__ import annotations

import json
import socket
import time
from typing import Callable, List

import httpx
import pytest

from taskswarm import AsyncClient, IndeterminateError, RejectedError, UnavailableError

A, B, C = "http://n1:1", "http://n2:1", "http://n3:1"


def scripted(answer: Callable[[httpx.Request, int], httpx.Response]) -> "tuple[httpx.MockTransport, List[httpx.Request]]":
    seen: List[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request, len(seen))

    return httpx.MockTransport(handler), seen


def error(status: int, code: str, **extra: object) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code, **extra}})


def redirect(to: str, path: str) -> httpx.Response:
    return httpx.Response(
        307,
        headers={"location": to + path},
        json={"error": {"code": "not_leader", "message": "x", "leader_id": 1, "leader_addr": to}},
    )


def enqueued(task_id: int = 1) -> httpx.Response:
    return httpx.Response(201, json={"id": task_id, "created": True, "coalesced": False, "state": "queued"})


def client(transport: httpx.MockTransport, servers: List[str], **kw: object) -> AsyncClient:
    return AsyncClient(servers, http_transport=transport, backoff_initial=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


async def test_a_redirect_is_followed_and_the_leader_remembered():
    def answer(req: httpx.Request, n: int) -> httpx.Response:
        if req.url.host == "n2":
            return redirect(A, req.url.raw_path.decode())
        return enqueued()

    transport, seen = scripted(answer)
    async with client(transport, [B], api_token="secret") as c:
        await c.enqueue("k", 1)
        assert c.leader == A
        await c.enqueue("k", 2)
    assert [r.url.host for r in seen] == ["n2", "n1", "n1"]
    assert all(r.headers["authorization"] == "Bearer secret" for r in seen)
    bodies = [json.loads(r.content) for r in seen]
    # The redirected request is the same request: same idempotency key.
    assert bodies[0]["idempotency_key"] == bodies[1]["idempotency_key"] != bodies[2]["idempotency_key"]


async def test_no_leader_is_retried_on_the_next_node():
    def answer(req: httpx.Request, n: int) -> httpx.Response:
        return error(503, "no_leader") if n < 3 else enqueued()

    transport, seen = scripted(answer)
    async with client(transport, [A, B, C]) as c:
        await c.enqueue("k", 1)
    assert [r.url.host for r in seen] == ["n1", "n2", "n3"]


async def test_an_unknown_outcome_is_retried_only_when_idempotent():
    def answer(req: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return error(503, "indeterminate")
        if req.url.path == "/v1/claim":
            return httpx.Response(200, json={"tasks": []})
        return enqueued()

    transport, seen = scripted(answer)
    async with client(transport, [A]) as c:
        await c.enqueue("k", 1)  # retried: the key makes it safe
        assert len(seen) == 2
    transport, seen = scripted(answer)
    async with client(transport, [A]) as c:
        with pytest.raises(IndeterminateError):
            await c.claim("w", ["q"])
        assert len(seen) == 1


async def test_an_idempotent_request_that_stays_unknown_is_indeterminate_not_unavailable():
    transport, seen = scripted(lambda req, n: error(503, "indeterminate"))
    async with client(transport, [A], retry_budget=0.3) as c:
        with pytest.raises(IndeterminateError):
            await c.enqueue("k", 1)
    assert len(seen) > 1


async def test_a_refusal_is_not_retried():
    transport, seen = scripted(lambda req, n: error(409, "lease_lost"))
    async with client(transport, [A, B]) as c:
        with pytest.raises(RejectedError) as e:
            await c.complete(1, 2, None)
    assert (e.value.code, e.value.status, len(seen)) == ("lease_lost", 409, 1)


async def test_a_leader_whose_name_does_not_resolve_fails_fast_naming_it():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "leader.inside.docker":
            raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(-2, "nope")
        return redirect("http://leader.inside.docker:7001", request.url.raw_path.decode())

    started = time.monotonic()
    async with client(httpx.MockTransport(handler), [A, B], retry_budget=30) as c:
        with pytest.raises(UnavailableError) as e:
            await c.enqueue("k", 1)
    took = time.monotonic() - started
    assert "leader.inside.docker" in str(e.value) and "--forward-to-leader" in str(e.value)
    # Not before an election could have moved the leader, and well before the budget.
    assert 2.0 <= took < 10, took


async def test_a_dead_leader_refusing_connections_is_waited_out():
    """A follower that has not noticed yet redirects to the dead leader: that is retried
    (until a new leader answers), not taken as an unreachable address."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "n1":
            raise httpx.ConnectError("[Errno 111] Connection refused")
        if handler.calls < 8:  # type: ignore[attr-defined]
            handler.calls += 1  # type: ignore[attr-defined]
            return redirect(A, request.url.raw_path.decode())
        return enqueued(7)

    handler.calls = 0  # type: ignore[attr-defined]
    async with client(httpx.MockTransport(handler), [B, C]) as c:
        r = await c.enqueue("k", 1)
    assert r.id == 7


async def test_too_many_redirects_are_retried_then_unavailable():
    transport, seen = scripted(lambda req, n: redirect(A if n % 2 else B, req.url.raw_path.decode()))
    async with client(transport, [A], retry_budget=0.3) as c:
        with pytest.raises(UnavailableError) as e:
            await c.enqueue("k", 1)
    assert "redirects" in str(e.value)
    assert len(seen) >= 12  # at least two attempts of 1 + 5 hops
