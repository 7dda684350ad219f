"""The coalescer: the first item goes at once, items arriving meanwhile share the next request."""

import asyncio

import pytest

from immich_drop.batch import Coalescer


class Recorder:
    """A call that records its requests and answers each when the test releases it."""

    def __init__(self):
        self.requests: list[tuple[str, list]] = []
        self.gates: list[asyncio.Future] = []
        self.arrived = asyncio.Event()

    async def __call__(self, key, items):
        self.requests.append((key, list(items)))
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        self.arrived.set()
        outcome = await gate
        if isinstance(outcome, Exception):
            raise outcome
        return {item: f"{key}:{item}" for item in items if item != "left-out"}

    async def next_request(self):
        await self.arrived.wait()
        self.arrived.clear()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_items_arriving_during_a_request_share_the_next():
    async def scenario():
        call = Recorder()
        batch = Coalescer(call)
        first = batch.submit("k", 1)
        await call.next_request()
        later = [batch.submit("k", n) for n in (2, 3, 3)]
        other_key = batch.submit("j", 9)
        await call.next_request()  # "j" does not wait for "k"
        call.gates[0].set_result(None)
        assert await first == "k:1"
        await call.next_request()
        call.gates[1].set_result(None)
        call.gates[2].set_result(None)
        return call.requests, await asyncio.gather(*later), await other_key

    requests, later, other = run(scenario())
    assert requests == [("k", [1]), ("j", [9]), ("k", [2, 3])]  # the same item twice is asked once
    assert later == ["k:2", "k:3", "k:3"] and other == "j:9"


def test_an_error_reaches_every_item_of_that_request_only():
    async def scenario():
        call = Recorder()
        batch = Coalescer(call)
        first = batch.submit("k", 1)
        await call.next_request()
        second = [batch.submit("k", n) for n in (2, 3)]
        call.gates[0].set_result(RuntimeError("Immich is away"))
        with pytest.raises(RuntimeError):
            await first
        await call.next_request()
        call.gates[1].set_result(RuntimeError("still away"))
        errors = await asyncio.gather(*second, return_exceptions=True)
        third = batch("k", "left-out")  # awaited through __call__, as the pipeline does
        third = asyncio.ensure_future(third)
        await call.next_request()
        call.gates[2].set_result(None)
        return errors, await third

    errors, left_out = run(scenario())
    assert [str(e) for e in errors] == ["still away", "still away"]
    assert left_out is None


def test_a_cancelled_waiter_does_not_disturb_the_others():
    async def scenario():
        call = Recorder()
        batch = Coalescer(call)
        first = batch.submit("k", 1)
        await call.next_request()
        quitter, stayer = batch.submit("k", 2), batch.submit("k", 3)
        quitter.cancel()
        call.gates[0].set_result(None)
        await call.next_request()
        call.gates[1].set_result(None)
        return await first, await stayer, quitter.cancelled(), call.requests

    first, stayer, cancelled, requests = run(scenario())
    assert (first, stayer, cancelled) == ("k:1", "k:3", True)
    assert requests == [("k", [1]), ("k", [2, 3])]


def test_a_large_burst_is_split():
    async def scenario():
        call = Recorder()
        batch = Coalescer(call, max_items=2)
        first = batch.submit("k", 0)
        await call.next_request()
        rest = [batch.submit("k", n) for n in range(1, 6)]
        for index in range(4):
            call.gates[index].set_result(None)
            if index < 3:
                await call.next_request()
        return await first, await asyncio.gather(*rest), call.requests

    first, rest, requests = run(scenario())
    assert [items for _, items in requests] == [[0], [1, 2], [3, 4], [5]]
    assert rest == [f"k:{n}" for n in range(1, 6)]
