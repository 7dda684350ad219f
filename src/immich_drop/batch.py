"""`Coalescer`: concurrent calls for the same key share one request to Immich.

The delivery workers each ask Immich about one file at a time (the bulk duplicate check, adding to
the album), while both endpoints take lists. A `Coalescer(call)` sends the first item for a key at
once; items for that key that arrive while the request is in flight go together in the next one.
So a lone file waits for nothing, and a burst (a wedding's photos) costs a request per few files
instead of one per file, for us and for Immich.

`call(key, items)` returns a dict from item to that item's result; an item it leaves out gets None.
If the call raises, every item in that request gets the exception.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I", bound=Hashable)  # noqa: E741 - an item
R = TypeVar("R")


class Coalescer(Generic[K, I, R]):
    def __init__(self, call: Callable[[K, list[I]], Awaitable[dict[I, R]]], max_items: int = 500):
        self._call = call
        self.max_items = max_items
        self._waiting: dict[K, dict[I, list[asyncio.Future]]] = {}
        self._senders: dict[K, asyncio.Task] = {}

    async def __call__(self, key: K, item: I) -> R | None:
        return await self.submit(key, item)

    def submit(self, key: K, item: I) -> asyncio.Future:
        """Queue `item` for `key` at once; the future gets its result."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, {}).setdefault(item, []).append(future)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send(key))
        return future

    async def _send(self, key: K) -> None:
        try:
            while waiting := self._waiting.pop(key, None):
                if len(waiting) > self.max_items:  # the rest waits for the next request
                    items = list(waiting)
                    self._waiting[key] = {i: waiting.pop(i) for i in items[self.max_items:]}
                try:
                    results = await self._call(key, list(waiting))
                except asyncio.CancelledError:
                    _settle(waiting, cancel=True)
                    raise
                except Exception as exc:
                    _settle(waiting, error=exc)
                else:
                    for item, futures in waiting.items():
                        _settle({item: futures}, result=results.get(item))
        finally:
            del self._senders[key]
            _settle(self._waiting.pop(key, {}), cancel=True)  # only left over when cancelled


def _settle(waiting: dict, *, result=None, error: BaseException | None = None, cancel: bool = False) -> None:
    for futures in waiting.values():
        for future in futures:
            if future.done():  # its worker was cancelled meanwhile
                continue
            if cancel:
                future.cancel()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
