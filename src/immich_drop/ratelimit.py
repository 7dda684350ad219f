"""Attempt limits for passwords (admin login, invite links): a sliding window per key.

`RateLimiter({"ip": 20, "account": 5}, seconds).check(*keys)` returns 0 when every key may try again,
else the seconds until all of them allow it; `hit(*keys)` records a failed attempt against each key;
`clear(key)` forgets one after a success. A key is a tuple whose first item is its kind, which picks its
limit: ("ip", "203.0.113.9"), ("account", "a@b.c"). So one address cannot try many accounts and many
addresses cannot try one account.

In memory, per process: behind several replicas each one limits on its own.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque


class RateLimiter:
    def __init__(self, attempts: dict[str, int], seconds: float, clock=time.monotonic):
        self.attempts, self.seconds, self.clock = attempts, seconds, clock
        self._hits: dict[tuple, deque] = defaultdict(deque)

    def _window(self, key: tuple) -> deque:
        hits, cutoff = self._hits[key], self.clock() - self.seconds
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            self._hits.pop(key, None)
        return hits

    def check(self, *keys: tuple) -> int:
        wait = 0.0
        for key in keys:
            hits = self._window(key)
            if len(hits) >= self.attempts[key[0]]:
                wait = max(wait, hits[0] + self.seconds - self.clock())
        return math.ceil(wait) if wait > 0 else 0

    def hit(self, *keys: tuple) -> None:
        now = self.clock()
        for key in keys:
            self._hits[key].append(now)

    def clear(self, key: tuple) -> None:
        self._hits.pop(key, None)
