"""`Background` runs file work in threads that yield the cores to the guest's uploads."""

import asyncio
import os
import sys
import threading

import pytest

from immich_drop.background import NICENESS, Background


def nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the nice value is per thread only on Linux")
def test_work_runs_at_a_lower_priority_and_the_caller_keeps_its_own():
    before = nice_of_this_thread()
    background = Background(workers=2)

    async def run():
        return await asyncio.gather(*(background.run(nice_of_this_thread) for _ in range(4)))

    try:
        niceness = asyncio.run(run())
    finally:
        background.close()
    assert niceness == [min(19, before + NICENESS)] * 4
    assert nice_of_this_thread() == before  # the event loop's thread, and the process, are untouched


def test_results_and_errors_come_back_to_the_caller():
    background = Background(workers=1)

    async def run():
        ok = await background.run(sum, [1, 2, 3])
        with pytest.raises(ZeroDivisionError):
            await background.run(lambda: 1 / 0)
        return ok

    try:
        assert asyncio.run(run()) == 6
    finally:
        background.close()
