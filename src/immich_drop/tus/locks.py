"""One writer per upload, refused at once rather than queued.

`UploadLocks.try_acquire(uid)` returns a held lock or None when another request (in this process
or another one sharing DATA_DIR) is writing that upload. The lock is an in-process set plus an
`flock` on `.locks/<uid>.lock`, so replicas on one shared staging folder exclude each other too.
Refusing instead of waiting keeps a stuck client from pinning a worker (tuspyserver's own
lock waits up to 30 s). `try_acquire(uid, then=fn)` also runs `fn` in the same thread hop once the
lock is taken (the storage reads what is on disk there), and `on_release` callbacks run as a lock
goes, so what was read under it is not trusted after.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import Any, Callable


class HeldLock:
    def __init__(self, owner: "UploadLocks", uid: str, fd: int, value: Any = None):
        self._owner, self.uid, self._fd = owner, uid, fd
        self.value = value  # what `then` returned

    async def release(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        for callback in self._owner.on_release:
            callback(self.uid)
        await asyncio.to_thread(_unlock, fd)
        self._owner._held.discard(self.uid)


class UploadLocks:
    def __init__(self, directory: Path):
        self.directory = directory
        self._held: set[str] = set()
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
        self._held.add(uid)  # claimed before the thread hop, so a second request sees it at once
        try:
            fd, value = await asyncio.to_thread(_lock, self.path(uid), then)
        except BaseException:
            self._held.discard(uid)
            raise
        if fd < 0:
            self._held.discard(uid)
            return None
        return HeldLock(self, uid, fd, value)


def _lock(path: Path, then: Callable[[], Any] | None = None) -> tuple[int, Any]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:  # the first lock in a fresh folder
        path.parent.mkdir(parents=True, exist_ok=True)
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
