"""Attempt limits for passwords (admin sign-in, invite links): a sliding window per key.

`RateLimiter({"ip": 20, "account": 5}, seconds).attempt(*keys)` counts one attempt against every key
and returns 0, or, when any key has used up its attempts, counts nothing and returns the seconds
until all of them allow one again. It is synchronous, so a handler calls it before its first
`await`: a burst of parallel requests cannot all pass the check before any of them is counted.
`succeeded(*keys)` takes back the attempt just counted (a right password costs nothing) and
forgets the first key's failures; `undo(*keys)` only takes it back. A key is a tuple whose first item is its kind, which picks its
limit: ("ip", "203.0.113.9"), ("account", "a@b.c").

Memory stays bounded whatever is sent: key values are stored as a 16-byte digest (a 10 MB e-mail
costs what a short one does), a key holds at most its limit of timestamps, keys whose window has
passed are swept, and beyond `max_keys` the least recently used keys are dropped.

In memory, per process: behind several replicas each one limits on its own.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque


def _compact(key: tuple) -> tuple:
    kind, *values = key
    digest = hashlib.blake2b("\x00".join(str(v) for v in values).encode("utf-8", "surrogatepass"), digest_size=16)
    return kind, digest.digest()


class RateLimiter:
    def __init__(self, attempts: dict[str, int], seconds: float, clock=time.monotonic, max_keys: int = 50_000):
        self.attempts, self.seconds, self.clock, self.max_keys = attempts, seconds, clock, max_keys
        self._hits: OrderedDict[tuple, deque] = OrderedDict()
        self._good: OrderedDict[tuple, float] = OrderedDict()
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._hits)

    def _window(self, key: tuple, now: float) -> deque | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def attempt(self, *keys: tuple) -> int:
        now = self.clock()
        self._sweep(now)
        compact = [_compact(k) for k in keys]
        wait = 0.0
        for key in compact:
            hits = self._window(key, now)
            if hits is not None and len(hits) >= self.attempts[key[0]]:
                wait = max(wait, hits[0] + self.seconds - now)
        if wait > 0:
            return max(1, math.ceil(wait))
        for key in compact:
            self._hits.setdefault(key, deque()).append(now)
            self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)  # the least recently used key
        return 0

    def left(self, key: tuple) -> tuple[int, int]:
        """(attempts `key` has left in its window, seconds until its oldest one lapses)."""
        now = self.clock()
        hits = self._window(_compact(key), now)
        if hits is None:
            return self.attempts[key[0]], 0
        return max(self.attempts[key[0]] - len(hits), 0), max(1, math.ceil(hits[0] + self.seconds - now))

    def undo(self, *keys: tuple) -> None:
        """Take back the attempt just counted (the question could not be asked, e.g. Immich was down)."""
        for key in map(_compact, keys):
            hits = self._hits.get(key)
            if hits:
                hits.pop()
                if not hits:
                    del self._hits[key]

    def succeeded(self, *keys: tuple) -> None:
        """A right password: the attempt costs nothing, and the first key's failures are forgotten."""
        self.undo(*keys[1:])
        self._hits.pop(_compact(keys[0]), None)

    # --- addresses known to be right: the owner's own address is never held by an outsider's failures
    def vouch(self, key: tuple) -> None:
        """Remember that `key` (e.g. ("good", account, address)) got in, for `vouched`; bounded like the rest."""
        self._good[_compact(key)] = self.clock()
        self._good.move_to_end(_compact(key))
        while len(self._good) > self.max_keys:
            self._good.popitem(last=False)

    def vouched(self, key: tuple) -> bool:
        return _compact(key) in self._good

    def _sweep(self, now: float) -> None:
        """Drop every key whose window has passed, at most once per window (amortised O(1) per call)."""
        if now - self._swept < self.seconds:
            return
        self._swept = now
        for key in [k for k, hits in self._hits.items() if hits[-1] <= now - self.seconds]:
            del self._hits[key]
