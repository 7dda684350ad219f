"""`Room`: may a new upload of `length` bytes start? Asked by the guard at every creation.

- The public page (anyone may use it once it is on): a browser session, and an address, may have at
  most PUBLIC_PENDING_FILES / PUBLIC_PENDING_BYTES (…_PER_ADDRESS) in uploads not yet complete:
  429 beyond, until some finish or are cancelled. Invites keep their own limits (targets.py).
- Every upload: the staging disk must hold it, with MIN_FREE_SPACE to spare, after what the uploads
  still arriving have announced and not yet written: 507 otherwise, in words a guest understands.
  An upload whose staged file has not grown for RESERVATION_IDLE seconds holds no reservation:
  announced sizes never sent (a phone gone for good, or a guest announcing 50 GiB files to fill
  the disk's promises: an attack run had every other upload refused for the 24 hours until expiry)
  stop counting after ten minutes. Such an upload can still resume: `writable_now` is asked at
  every PATCH, which hears 507 rather than fill the disk past MIN_FREE_SPACE (the page keeps trying).

`check(...)` raises `TargetClosed`. The guard asks it and records the upload under one lock per
process, so a burst of parallel creations cannot all pass on the same count (replicas each count
the database on their own; they can overshoot by what arrives at the same moment).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time

from ..files import private_dir
from ..store import Store
from ..targets import PUBLIC, TargetClosed
from .storage import StagingStorage

RESERVATION_IDLE = 600.0
NO_SPACE = ("The server has no room for this file right now. Your other files are safe; "
            "try this one again later, or ask the person who shared the page.")


class Room:
    def __init__(self, settings, store: Store, storage: StagingStorage):
        self.settings, self.store, self.storage = settings, store, storage
        self.gate = asyncio.Lock()

    async def check(self, kind: str, session: str, address: str | None, length: int) -> None:
        s = self.settings
        by_session, by_address, free = await self.store.room_counts(
            PUBLIC if kind == PUBLIC else None, session, address, then=self._free_after)
        if by_session is not None:
            await self._quota(by_session, length, s.public_pending_files, s.public_pending_bytes)
        if by_address is not None:
            await self._quota(by_address, length, s.public_pending_files_per_address, s.public_pending_bytes_per_address)
        if length + s.min_free_space > free:
            raise TargetClosed(507, NO_SPACE, code="no_space")

    @staticmethod
    async def _quota(unfinished: tuple[int, int], length: int, max_files: int, max_bytes: int) -> None:
        files, size = unfinished
        if files + 1 > max_files or size + length > max_bytes:
            raise TargetClosed(429, "You have many files still on their way. Let them finish (or cancel some), "
                                    "then send more.", code="too_many_unfinished",
                               params={"files": max_files, "bytes": max_bytes})

    def writable_now(self) -> int:
        """Bytes a PATCH may write now: free space on the staging disk above MIN_FREE_SPACE
        (blocking: the guard asks in its lock's thread hop, for an upload whose folder exists)."""
        return shutil.disk_usage(self.storage.directory).free - self.settings.min_free_space

    def _free_after(self, promised: list[tuple[str, int]]) -> int:
        """Free bytes on the staging disk once every upload still arriving has all its bytes (blocking:
        run in the store's thread hop, with the rows that say what is still arriving)."""
        private_dir(self.storage.directory)
        owed, lapsed = 0, time.time() - RESERVATION_IDLE
        for uid, size in promised:
            try:
                staged = os.stat(self.storage.data_path(uid))
            except (FileNotFoundError, ValueError):
                owed += size  # being created: its file is not there yet
                continue
            if staged.st_mtime >= lapsed:  # written to (or made) lately
                owed += max(size - staged.st_size, 0)
        return shutil.disk_usage(self.storage.directory).free - owed
