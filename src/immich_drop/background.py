"""`Background`: worker threads for file work no guest is waiting on, at a lower CPU priority.

A guest waits on their PATCH: receiving and writing their bytes (the event loop and the default
worker threads). Hashing a staged file from disk and reading its capture date can come a moment
later without anyone noticing. On a small server all of it wants the same cores, and the kernel
shares them evenly unless told otherwise, so these threads lower their own priority (nice +10; on
Linux the nice value belongs to the thread): when both are ready, the guest's work runs first, and
the background still gets a share, so it never starves. Reading the bytes Immich is waiting for
(the relay's reads, a delivery's body) is not background work: against a real Immich on the same
cores, that feed is the critical path, and at nice +10 it starved whenever the machine was busy
(bench/README.md: a relayed 1 GiB video 1.62-2.38 x the direct upload, 1.26-1.53 x at normal
priority).

`Background(workers)`; `await run(fn, *args)` runs `fn` in one of the threads and returns its result;
`close()` drops queued work, lets running work finish and stops the threads.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")
NICENESS = 10


def _lower_priority() -> None:
    # Only where the nice value is per thread: elsewhere setpriority would slow the whole process.
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS))
        except OSError:  # a sandbox may forbid it; the work still runs, only without the priority
            pass


class Background:
    def __init__(self, workers: int):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="background", initializer=_lower_priority)

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
