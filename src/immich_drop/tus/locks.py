"""One writer per upload; a newer request of the upload's own session takes over from the older one.

`UploadLocks.try_acquire(uid)` returns a held lock or None when another request (in this process
or another one sharing DATA_DIR) is writing that upload. The lock is an in-process table plus an
`flock` on `.locks/<uid>.lock`, so replicas on one shared staging folder exclude each other too.
`try_acquire(uid, then=fn)` also runs `fn` in the same thread hop once the lock is taken (the
storage reads what is on disk there), and `on_release` callbacks run as a lock goes, so what was
read under it is not trusted after.

`take_over(uid, wait)` is tusd v2's lock release: a phone whose connection died mid-PATCH leaves a
request that holds the lock and may never end, while the same phone, back online, asks again. So
a new request asks the holder in this process to stop (`HeldLock.stop`, which the guard points at
the holder's body reader) and waits at most `wait` seconds for it to let go; the holder keeps the
bytes it wrote. A holder in another replica cannot be asked: that one ends on its own when its body
stalls (UPLOAD_STALL_SECONDS), and until then the answer is None (423).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import Any, Callable

from ..files import private_dir


class HeldLock:
    def __init__(self, owner: "UploadLocks", uid: str, fd: int, value: Any = None):
        self._owner, self.uid, self._fd = owner, uid, fd
        self.value = value  # what `then` returned
        self.released = asyncio.Event()
        self.stop = lambda: None  # asks the request holding the lock to end soon (set by the holder)

    async def release(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        for callback in self._owner.on_release:
            callback(self.uid)
        try:
            await asyncio.to_thread(_unlock, fd)
        finally:
            self._owner._held.pop(self.uid, None)
            self.released.set()


class UploadLocks:
    def __init__(self, directory: Path):
        self.directory = directory
        self._held: dict[str, HeldLock | None] = {}  # None while the flock is being taken
        self.on_release: list[Callable[[str], None]] = []

    def held(self, uid: str) -> bool:
        return uid in self._held

    def path(self, uid: str) -> Path:
        return self.directory / f"{uid}.lock"

    async def try_acquire(self, uid: str, then: Callable[[], Any] | None = None) -> HeldLock | None:
        """The upload's lock, or None at once if someone holds it; `then()` runs under it, in the
        same thread hop, and its result is the lock's `value` (if it raises, the lock is let go)."""
        if uid in self._held:
            return None
        self._held[uid] = None  # claimed before the thread hop, so a second request sees it at once
        try:
            fd, value = await asyncio.to_thread(_lock, self.path(uid), then)
        except BaseException:
            self._held.pop(uid, None)
            raise
        if fd < 0:
            self._held.pop(uid, None)
            return None
        held = self._held[uid] = HeldLock(self, uid, fd, value)
        return held

    async def let_go(self, uid: str, wait: float) -> bool:
        """Ask this process's holder of `uid` to stop and wait up to `wait` s; False if it still holds it."""
        holder = self._held.get(uid)
        if holder is None:
            return uid not in self._held
        holder.stop()
        try:
            async with asyncio.timeout(wait):
                await holder.released.wait()
        except TimeoutError:
            return False
        return True

    async def take_over(self, uid: str, wait: float, then: Callable[[], Any] | None = None) -> HeldLock | None:
        """The lock, after asking a holder in this process to stop; None if it is still held.
        `then` as for `try_acquire`."""
        for _ in range(3):  # another newcomer may win the race for it: ask that one too
            if not await self.let_go(uid, wait):
                return None
            held = await self.try_acquire(uid, then)
            if held is not None:
                return held
            if uid not in self._held:
                return None  # another replica holds the flock
        return None


def _lock(path: Path, then: Callable[[], Any] | None = None) -> tuple[int, Any]:
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1, None
    try:
        return fd, then() if then is not None else None
    except BaseException:
        _unlock(fd)
        raise


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
