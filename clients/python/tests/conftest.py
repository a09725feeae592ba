"""A real cluster of ``taskswarm node`` processes on loopback for the tests.

The binary comes from ``TASKSWARM_BIN`` (default: the release build in the shared cargo
target dir). Ports are free loopback ports picked by the OS, or taken from
``TASKSWARM_TEST_PORTS=LOW-HIGH`` when set. Every node is stopped by its PID at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Dict, List, Optional, Set, TypeVar

import httpx
import pytest

from taskswarm import AsyncClient

BIN = os.environ.get("TASKSWARM_BIN", "/var/tmp/taskswarm-target/release/taskswarm")
#: Fast but stable elections on 2 cores (the Rust integration tests use the same).
NODE_FLAGS = ["--heartbeat-ms", "100", "--election-min-ms", "600", "--election-max-ms", "1200"]
#: Longest a test waits for a leader or a condition.
WAIT = 30.0

logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

_used_ports: Set[int] = set()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    spec = os.environ.get("TASKSWARM_TEST_PORTS")
    if spec:
        low, high = (int(x) for x in spec.split("-"))
        for port in range(low, high + 1):
            if port not in _used_ports and _port_free(port):
                _used_ports.add(port)
                return port
        raise RuntimeError(f"no free port in {spec}")
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port


class Cluster:
    def __init__(self, n: int = 3, extra: Optional[List[str]] = None) -> None:
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"taskswarm binary not found at {BIN} (set TASKSWARM_BIN)")
        self.dir = Path(tempfile.mkdtemp(prefix="taskswarm-py-"))
        self.urls = [f"http://127.0.0.1:{free_port()}" for _ in range(n)]
        self.peers = ",".join(f"{i + 1}={u}" for i, u in enumerate(self.urls))
        self.extra = list(extra or [])
        self.procs: Dict[int, subprocess.Popen] = {}
        for i in range(1, n + 1):
            self.spawn(i)
        self.wait_leader()

    def spawn(self, node_id: int) -> None:
        url = self.urls[node_id - 1]
        log = open(self.dir / f"node-{node_id}.log", "ab")
        self.procs[node_id] = subprocess.Popen(
            [
                BIN,
                "node",
                "--id",
                str(node_id),
                "--listen",
                url[len("http://") :],
                "--data-dir",
                str(self.dir / f"node-{node_id}"),
                "--peers",
                self.peers,
                "--cluster-secret",
                "some-test-secret-xyz",
                *NODE_FLAGS,
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "RUST_LOG": "info,openraft=warn"},
        )
        log.close()

    def url(self, node_id: int) -> str:
        return self.urls[node_id - 1]

    def running(self) -> List[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def kill(self, node_id: int) -> None:
        """SIGKILL: no chance to flush anything."""
        p = self.procs[node_id]
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def stop_all(self) -> None:
        """Stops every node by its PID, then removes the data directories (kept with
        ``TASKSWARM_TEST_KEEP=1``, e.g. to read the nodes' logs)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait(10)
        if os.environ.get("TASKSWARM_TEST_KEEP"):
            print(f"cluster data and logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def status(self, node_id: int) -> Optional[dict]:
        try:
            return httpx.get(self.url(node_id) + "/v1/cluster", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None

    def wait_leader(self) -> int:
        """Waits until the running nodes agree on one running leader; returns its id."""
        deadline = time.monotonic() + WAIT
        while True:
            leaders = [(s or {}).get("leader_id") for s in (self.status(i) for i in self.running())]
            first = leaders[0] if leaders else None
            if first is not None and all(x == first for x in leaders) and first in self.running():
                ready = httpx.get(self.url(first) + "/readyz", timeout=2)
                if ready.status_code == 200:
                    return int(first)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no leader after {WAIT}s: {leaders}\n{self.logs()}")
            time.sleep(0.1)

    def followers(self) -> List[int]:
        leader = self.wait_leader()
        return [i for i in self.running() if i != leader]

    def logs(self, lines: int = 30) -> str:
        out = []
        for i in sorted(self.procs):
            path = self.dir / f"node-{i}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- node {i} ---\n" + "\n".join(tail))
        return "\n".join(out)


@pytest.fixture(scope="session")
def cluster():
    c = Cluster(3)
    yield c
    c.stop_all()


@pytest.fixture
def fresh_cluster():
    """A cluster of its own, for tests that kill nodes."""
    c = Cluster(3)
    yield c
    c.stop_all()


@pytest.fixture
async def client(cluster: Cluster):
    c = AsyncClient(cluster.urls)
    yield c
    await c.aclose()


@pytest.fixture
def queue(request) -> str:
    """A queue of the test's own."""
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return f"{name}-{secrets.token_hex(3)}"


T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[Optional[T]]], what: str, timeout: float = WAIT) -> T:
    """Polls ``check`` until it returns something truthy; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.05)
