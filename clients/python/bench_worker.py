#!/usr/bin/env python3
"""How many task lifecycles (enqueue → claim → complete) one Python worker sustains.

Against a running cluster (servers from TASKSWARM_SERVERS, e.g. ``./x dev``): a producer
enqueues N tasks in batches while one worker (one process, one event loop) runs them with
a trivial handler; prints lifecycles/s from the first enqueue to the last completion.
A number printed, not asserted.

    TASKSWARM_SERVERS=http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003 \\
        python bench_worker.py --tasks 5000 --batch 200 --slots 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

from taskswarm import AsyncClient, Task, Worker


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=5000)
    p.add_argument("--batch", type=int, default=200, help="tasks per enqueue request")
    p.add_argument("--slots", type=int, default=64)
    p.add_argument("--payload-bytes", type=int, default=128)
    p.add_argument("--queue", default=f"pybench-{secrets.token_hex(3)}")
    p.add_argument(
        "--mode",
        choices=["batch", "fused", "single"],
        default="batch",
        help="batch: completions of all slots in shared requests (the default); fused: each "
        "completion claims the slot's next task (claim_on_complete); single: one complete per task",
    )
    args = p.parse_args()

    servers = os.environ.get("TASKSWARM_SERVERS")
    producer = AsyncClient(servers)
    worker_client = AsyncClient(servers)
    worker = Worker(
        worker_client,
        [args.queue],
        slots=args.slots,
        batch_completes=args.mode == "batch",
        claim_on_complete=args.mode == "fused",
    )

    @worker.handler("noop")
    async def noop(payload: str) -> int:
        return len(payload)

    payload = "x" * args.payload_bytes
    worker.start()
    started = time.perf_counter()
    enqueued = 0
    for i in range(0, args.tasks, args.batch):
        n = min(args.batch, args.tasks - i)
        results = await producer.enqueue_batch([Task("noop", payload, queue=args.queue) for _ in range(n)])
        enqueued += sum(1 for r in results if not isinstance(r, Exception))
    enqueue_s = time.perf_counter() - started
    while worker.stats.completed < enqueued:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stats = await worker.shutdown(grace=5)
    await producer.aclose()
    await worker_client.aclose()
    print(f"servers: {', '.join(producer.servers)}")
    print(f"queue {args.queue}: {enqueued} tasks, batches of {args.batch}, {args.slots} slots, mode {args.mode}")
    print(f"enqueued in {enqueue_s:.2f}s ({enqueued / enqueue_s:.0f} tasks/s)")
    print(f"lifecycles/s sustained by one Python worker: {enqueued / elapsed:.0f} "
          f"({enqueued} in {elapsed:.2f}s)")
    print(f"worker stats: {stats}")


if __name__ == "__main__":
    asyncio.run(main())
