"""One writer per upload, refused at once rather than queued.

`UploadLocks.try_acquire(uid)` returns a held lock or None when another request (in this process
or another one sharing DATA_DIR) is writing that upload. The lock is an in-process set plus an
`flock` on `.locks/<uid>.lock`, so replicas on one shared staging folder exclude each other too.
Refusing instead of waiting keeps a stuck client from pinning a worker (tuspyserver's own
lock waits up to 30 s).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path


class HeldLock:
    def __init__(self, owner: "UploadLocks", uid: str, fd: int):
        self._owner, self.uid, self._fd = owner, uid, fd

    async def release(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        await asyncio.to_thread(_unlock, fd)
        self._owner._held.discard(self.uid)


class UploadLocks:
    def __init__(self, directory: Path):
        self.directory = directory
        self._held: set[str] = set()

    def held(self, uid: str) -> bool:
        return uid in self._held

    def path(self, uid: str) -> Path:
        return self.directory / f"{uid}.lock"

    async def try_acquire(self, uid: str) -> HeldLock | None:
        if uid in self._held:
            return None
        self._held.add(uid)  # claimed before the thread hop, so a second request sees it at once
        try:
            fd = await asyncio.to_thread(_lock, self.path(uid))
        except BaseException:
            self._held.discard(uid)
            raise
        if fd < 0:
            self._held.discard(uid)
            return None
        return HeldLock(self, uid, fd)


def _lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    return fd


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
