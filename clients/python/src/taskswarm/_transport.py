"""Sending one API request to the cluster: leader tracking, redirects, rotation, retries.

The rules mirror the Rust client (``worker/src/transport.rs``); each follows from what an
answer proves:

- connection refused (or no connection to be had): the node never saw the request → try
  the next node;
- ``307``: a follower refused to act → go where ``Location`` points (at most
  ``REDIRECT_HOPS_MAX`` hops per attempt) and remember that leader; when that address's
  name cannot be resolved ``REDIRECT_UNREACHABLE_MAX`` times in a row and for longer than
  an election takes (``REDIRECT_UNREACHABLE_MIN``: the leader advertises a name this
  client cannot resolve, e.g. one inside a Docker network), give up with an error naming
  it rather than after the whole budget. A refused connection is not that: a leader that
  just died is refused until the followers elect another;
- ``503 no_leader`` / ``no_quorum`` / ``storage_full`` / ``unavailable``: nothing was written → back off,
  try again (on the next node);
- ``503 indeterminate``, a timeout, a dropped connection after sending: the write may
  have happened → retry only idempotent requests, otherwise raise ``IndeterminateError``;
- any other 4xx/5xx: a refusal → ``RejectedError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from typing import Any, Dict, List, Optional, Tuple, Union

import httpx

from .errors import IndeterminateError, ProtocolError, RejectedError, UnavailableError, codes

log = logging.getLogger("taskswarm.transport")

#: Redirects followed within one attempt before giving up on it.
REDIRECT_HOPS_MAX = 5
#: Attempts in a row whose redirect led to a name that could not be resolved, and the
#: least time spent (seconds), before the call fails as unavailable.
REDIRECT_UNREACHABLE_MAX = 3
REDIRECT_UNREACHABLE_MIN = 2.0

#: Sent with every request when the client is made with ``no_forward=True``: nodes running
#: with ``--forward-to-leader`` then answer a 307 (followed here) instead of forwarding.
#: Off by default, like the Rust client: forwarding is what makes a cluster whose
#: advertised addresses are unreachable from here (Docker, NAT) usable at all.
NO_FORWARD_HEADER = "x-taskswarm-no-forward"


class _Done:
    __slots__ = ("status", "body")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class _RetrySafe:
    """Nothing was written; try again (possibly elsewhere)."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class _Unknown:
    """Maybe written."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class _LeaderUnreachable:
    __slots__ = ("leader", "cause")

    def __init__(self, leader: str, cause: str) -> None:
        self.leader = leader
        self.cause = cause


_Attempt = Union[_Done, _RetrySafe, _Unknown, _LeaderUnreachable]


def clean_servers(servers: List[str]) -> List[str]:
    out = []
    for s in servers:
        s = s.strip().rstrip("/")
        if not s:
            continue
        if not (s.startswith("http://") or s.startswith("https://")):
            raise ValueError(f"server {s!r} must start with http:// or https://")
        out.append(s)
    if not out:
        raise ValueError("at least one server URL is needed")
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Transport:
    def __init__(
        self,
        servers: List[str],
        *,
        api_token: Optional[str],
        request_timeout: float,
        connect_timeout: float,
        retry_budget: float,
        backoff_initial: float,
        backoff_max: float,
        no_forward: bool = False,
        http_transport: Optional[httpx.AsyncBaseTransport] = None,
        max_connections: int = 256,
    ) -> None:
        self.servers = clean_servers(servers)
        self.api_token = api_token or None
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.retry_budget = retry_budget
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.no_forward = no_forward
        self._http_transport = http_transport
        self._max_connections = max_connections
        self.leader: Optional[str] = None
        self._next = 0
        self._http: Optional[httpx.AsyncClient] = None
        self._http_loop: Optional[asyncio.AbstractEventLoop] = None

    # ---- the HTTP client, one per event loop --------------------------------------------

    def http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop or self._http.is_closed:
            # httpx connections belong to the loop that opened them: a client used from
            # a second loop (tests, the sync wrapper) gets its own pool.
            self._http = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(self.request_timeout, connect=self.connect_timeout),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=min(64, self._max_connections),
                ),
                transport=self._http_transport,
                trust_env=False,
            )
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and not self._http.is_closed:
            try:
                await self._http.aclose()
            except RuntimeError:  # its loop is gone
                pass
        self._http = None

    def headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        h: Dict[str, str] = {}
        if self.api_token:
            h["authorization"] = f"Bearer {self.api_token}"
        if self.no_forward:
            h[NO_FORWARD_HEADER] = "1"
        if extra:
            h.update(extra)
        return h

    # ---- node choice ---------------------------------------------------------------------

    def pick(self) -> str:
        """The node to try first: the known leader, else the next in rotation."""
        if self.leader is not None:
            return self.leader
        return self.rotate()

    def rotate(self) -> str:
        node = self.servers[self._next % len(self.servers)]
        self._next = (self._next + 1) % len(self.servers)
        return node

    def forget_leader(self) -> None:
        self.leader = None

    def remember_leader(self, addr: str) -> None:
        self.leader = addr.rstrip("/")

    # ---- one call ------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool,
        timeout: Optional[float] = None,
        has_body: bool = False,
    ) -> Any:
        """Sends a JSON request and decodes the JSON answer, retrying by the rules above."""
        data = dumps(body) if (body is not None or has_body) else None
        started = time.monotonic()
        backoff = self.backoff_initial
        maybe_written = False
        unreachable = 0
        last_problem = ""
        while True:
            attempt = await self._attempt(method, path, data, timeout)
            unreachable = unreachable + 1 if isinstance(attempt, _LeaderUnreachable) else 0
            if isinstance(attempt, _Done):
                return decode(attempt.status, attempt.body)
            if isinstance(attempt, _RetrySafe):
                last_problem = attempt.why
            elif isinstance(attempt, _LeaderUnreachable):
                last_problem = (
                    f"the leader's address {attempt.leader}, given in a redirect by a follower, "
                    f"cannot be reached from here ({attempt.cause}); reach the cluster at "
                    "addresses it advertises, or run the nodes with --forward-to-leader"
                )
                if (
                    unreachable >= REDIRECT_UNREACHABLE_MAX
                    and time.monotonic() - started >= REDIRECT_UNREACHABLE_MIN
                    and not maybe_written
                ):
                    raise UnavailableError(last_problem, time.monotonic() - started)
            else:
                if not idempotent:
                    raise IndeterminateError(attempt.why)
                maybe_written = True
                last_problem = attempt.why
            elapsed = time.monotonic() - started
            if elapsed + backoff > self.retry_budget:
                if maybe_written:
                    raise IndeterminateError(f"gave up after {elapsed:.1f}s: {last_problem}")
                raise UnavailableError(last_problem, elapsed)
            log.debug("retrying in %.3fs: %s", backoff, last_problem)
            # A little jitter keeps a fleet of workers from retrying in lockstep.
            await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
            backoff = min(backoff * 2, self.backoff_max)

    async def _attempt(
        self, method: str, path: str, data: Optional[bytes], timeout: Optional[float]
    ) -> _Attempt:
        http = self.http()
        url = self.pick() + path
        headers = self.headers({"content-type": "application/json"} if data is not None else None)
        t = httpx.Timeout(timeout if timeout is not None else self.request_timeout, connect=self.connect_timeout)
        for hop in range(REDIRECT_HOPS_MAX + 1):
            try:
                resp = await http.request(method, url, content=data, headers=headers, timeout=t)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                self.forget_leader()
                if hop > 0 and _name_not_resolved(e):
                    return _LeaderUnreachable(url[: len(url) - len(path)] if url.endswith(path) else url, _cause(e))
                return _RetrySafe(f"{url}: {_cause(e)}")
            except httpx.PoolTimeout as e:
                # Waited for a connection of our own pool: nothing was sent.
                return _RetrySafe(f"{url}: {_cause(e)}")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
                self.forget_leader()
                return _RetrySafe(f"{url}: {_cause(e)}")
            except httpx.TransportError as e:
                # A timeout or a dropped connection once the request may have left.
                self.forget_leader()
                return _Unknown(f"{url}: {_cause(e)}")
            status = resp.status_code
            if status == 307:
                location = resp.headers.get("location")
                leader = _json_or_none(resp.content)
                addr = None
                if isinstance(leader, dict) and isinstance(leader.get("error"), dict):
                    addr = leader["error"].get("leader_addr")
                if not location:
                    return _RetrySafe(f"{url}: redirect without a Location")
                if addr:
                    self.remember_leader(addr)
                url = str(httpx.URL(url).join(location))
                continue
            if status == 503:
                body = _json_or_none(resp.content)
                code = ""
                if isinstance(body, dict) and isinstance(body.get("error"), dict):
                    code = str(body["error"].get("code", ""))
                self.forget_leader()
                if code == codes.INDETERMINATE:
                    return _Unknown(f"{url}: the write's outcome is unknown")
                return _RetrySafe(f"{url}: {code or 'HTTP 503'}")
            return _Done(status, resp.content)
        return _RetrySafe(f"more than {REDIRECT_HOPS_MAX} redirects")


def _name_not_resolved(e: BaseException) -> bool:
    """Whether a connection failed because the host name did not resolve."""
    seen = set()
    cur: Optional[BaseException] = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _cause(e: BaseException) -> str:
    """The innermost cause, which is what tells a user why."""
    parts = [f"{type(e).__name__}: {e}" if str(e) else type(e).__name__]
    seen = {id(e)}
    cur: Optional[BaseException] = e.__cause__ or e.__context__
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if str(cur):
            parts.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    return parts[-1] if len(parts) > 1 else parts[0]


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def decode(status: int, data: bytes) -> Any:
    if 200 <= status < 300:
        try:
            return json.loads(data) if data else None
        except ValueError as e:
            raise ProtocolError(f"undecodable answer: {e}") from None
    body = _json_or_none(data)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        raise RejectedError.from_body(body, status)
    raise RejectedError("http_error", data[:200].decode("utf-8", "replace"), status)


#: The HTTP status the server gives a refusal with this code when it is a whole answer
#: (``coordinator/src/http/error.rs``): used for the refused items of batch answers.
ITEM_STATUS = {
    "invalid_request": 400,
    "batch_too_large": 400,
    "payload_too_large": 413,
    "not_found": 404,
    "lease_lost": 409,
    "task_finished": 409,
    "not_requeueable": 409,
    "queue_full": 507,
    "too_many_queues": 507,
}


def split_error_item(item: Any) -> Tuple[bool, Any]:
    """A batch answer's item: (True, value) or (False, RejectedError)."""
    if isinstance(item, dict) and isinstance(item.get("error"), dict) and len(item) == 1:
        code = str(item["error"].get("code", ""))
        return False, RejectedError.from_body(item, ITEM_STATUS.get(code, 400))
    return True, item
