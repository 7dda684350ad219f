"""The attempt limiter: sliding windows, counted at once, and memory bounded whatever is sent."""

import sys

from immich_drop.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_attempts_are_counted_when_checked():
    limiter = RateLimiter({"ip": 3}, seconds=60, clock=Clock())
    assert [limiter.attempt(("ip", "a")) for _ in range(4)] == [0, 0, 0, 60]
    assert limiter.attempt(("ip", "b")) == 0


def test_a_right_password_costs_nothing_and_clears_the_strict_key():
    limiter = RateLimiter({"pair": 2, "ip": 3}, seconds=60, clock=Clock())
    keys = [("pair", "ada", "a"), ("ip", "a")]
    assert limiter.attempt(*keys) == 0
    limiter.succeeded(*keys)
    assert len(limiter) == 0
    limiter.attempt(*keys)
    limiter.undo(*keys)
    assert len(limiter) == 0


def test_huge_keys_cost_what_small_ones_do():
    limiter = RateLimiter({"account": 5}, seconds=60, clock=Clock())
    limiter.attempt(("account", "x" * 10_000_000))
    limiter.attempt(("account", "a\udcff lone surrogate"))
    [key, _] = list(limiter._hits)
    assert sys.getsizeof(key[1]) < 100 and len(limiter) == 2
    assert limiter.attempt(("account", "x" * 10_000_000)) == 0  # the same key, counted twice
    assert len(limiter._hits[key]) == 2


def test_expired_keys_are_swept_and_the_size_is_capped():
    clock = Clock()
    limiter = RateLimiter({"account": 5}, seconds=60, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.attempt(("account", f"user{i}@example.org"))
    assert len(limiter) == 100  # the least recently used went first
    clock.now += 61
    limiter.attempt(("account", "late@example.org"))
    assert len(limiter) == 1  # nobody asked for the others again, and still they are gone
