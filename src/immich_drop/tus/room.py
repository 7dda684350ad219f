"""`Room`: may a new upload of `length` bytes start? Asked by the guard at every creation.

- A browser session, and an address, may have at most PUBLIC_PENDING_FILES / PUBLIC_PENDING_BYTES
  (…_PER_ADDRESS) in uploads not yet complete on the public page, and INVITE_PENDING_… through
  invite links (all links together): 429 beyond, until some finish or are cancelled (an upload idle
  for RESERVATION_IDLE still counts as a file but no longer for its bytes, as on the disk below: a
  reload's abandoned videos do not hold the next files back); a file larger than the bytes allowed
  at once is refused for good (413). A link's own limits (targets.py) count what it took; these
  count what is promised and not yet here: without them a guest with a link of no total limit
  announced files the size of the free disk, kept them alive with a byte every few minutes, and
  every other upload was refused 507 (attack run).
- Every upload: the staging disk must hold it, with MIN_FREE_SPACE to spare, after what the uploads
  still arriving have announced and not yet written: 507 otherwise, in words a guest understands.
  An upload whose staged file has not grown for RESERVATION_IDLE seconds holds no reservation:
  announced sizes never sent (a phone gone for good, or a guest announcing 50 GiB files to fill
  the disk's promises: an attack run had every other upload refused for the 24 hours until expiry)
  stop counting after ten minutes. Such an upload can still resume: `writable_now` is asked at
  every PATCH, which hears 507 rather than fill the disk past MIN_FREE_SPACE (the page keeps trying).
  One address holds at most SHARE (three quarters) of what the disk can still take: its first file
  may be larger (it holds the share; the rest goes in as the disk has room), its next waits (429,
  as for its quotas) until what it still owes leaves room in the share.

`check(...)` raises `TargetClosed`. The guard asks it and records the upload under one lock per
process, so a burst of parallel creations cannot all pass on the same count (replicas each count
the database on their own; they can overshoot by what arrives at the same moment).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time

from ..files import private_dir
from ..i18n import size_text
from ..store import Store
from ..targets import PUBLIC, TargetClosed
from .storage import StagingStorage

RESERVATION_IDLE = 600.0
SHARE = 3 / 4  # of what the staging disk can still take (beyond MIN_FREE_SPACE), one address may hold
NO_SPACE = ("The server has no room for this file right now. Your other files are safe; "
            "try this one again later, or ask the person who shared the page.")


class Room:
    def __init__(self, settings, store: Store, storage: StagingStorage):
        self.settings, self.store, self.storage = settings, store, storage
        self.gate = asyncio.Lock()

    async def check(self, kind: str, session: str, address: str | None, length: int) -> None:
        s = self.settings
        if kind == PUBLIC:
            per_session = s.public_pending_files, s.public_pending_bytes
            per_address = s.public_pending_files_per_address, s.public_pending_bytes_per_address
        else:
            per_session = s.invite_pending_files, s.invite_pending_bytes
            per_address = s.invite_pending_files_per_address, s.invite_pending_bytes_per_address
        largest = min(per_session[1], per_address[1])
        if length > largest:  # could never start, however long it waited: refused for good, not "wait"
            raise TargetClosed(413, f"This file is larger than the {size_text(largest)} allowed.", code="too_large",
                               params={"size": largest})
        tally = await self.store.receiving(lambda rows: self._tally(rows, kind, session, address))
        self._quota(tally.by_session, length, *per_session)
        if address is not None:
            self._quota(tally.by_address, length, *per_address)
        if length + s.min_free_space > tally.free:
            raise TargetClosed(507, NO_SPACE, code="no_space")
        # One address holds at most SHARE of what the disk can still take: one browser announced two
        # files of the free disk's size (or one), sent a byte every few minutes, and every other guest
        # heard 507 (attack run). Its first file may be larger (a guest's one long video): it holds
        # the share, and the rest of its bytes go in as the disk has room (writable_now at every
        # PATCH); its next file waits (429) until what it still owes leaves room in the share.
        if address is not None and tally.address_owed and tally.address_held + length > tally.share:
            raise _unfinished(*per_address)

    @staticmethod
    def _quota(unfinished: list[int], length: int, max_files: int, max_bytes: int) -> None:
        files, size = unfinished
        if files + 1 > max_files or size + length > max_bytes:
            raise _unfinished(max_files, max_bytes)

    def writable_now(self) -> int:
        """Bytes a PATCH may write now: free space on the staging disk above MIN_FREE_SPACE
        (blocking: the guard asks in its lock's thread hop, for an upload whose folder exists)."""
        return shutil.disk_usage(self.storage.directory).free - self.settings.min_free_space

    def _tally(self, rows: list[tuple], kind: str, session: str, address: str | None) -> _Tally:
        """What the uploads still arriving (`Store.receiving`'s rows) hold (blocking: run in the store's
        thread hop): files and announced bytes of `kind` of this session and of this address, and the
        staging disk's free bytes once they all have their bytes. Every unfinished upload counts as a
        file (the rows, and this walk over them, stay bounded), but one idle for RESERVATION_IDLE holds
        no bytes: a guest's large uploads abandoned by a reload do not keep their next files waiting."""
        private_dir(self.storage.directory)
        tally, lapsed = _Tally(), time.time() - RESERVATION_IDLE
        owed_by: dict[str | None, int] = {}
        for uid, size, its_kind, its_session, its_address in rows:
            try:
                staged = os.stat(self.storage.data_path(uid))
            except (FileNotFoundError, ValueError):
                owed, held = size, size  # being created: its file is not there yet
            else:
                live = staged.st_mtime >= lapsed
                owed, held = (max(size - staged.st_size, 0), size) if live else (0, 0)  # idle: no reservation
            owed_by[its_address] = owed_by.get(its_address, 0) + owed
            if its_kind == kind:
                if its_session == session:
                    tally.by_session[0] += 1
                    tally.by_session[1] += held
                if address is not None and its_address == address:
                    tally.by_address[0] += 1
                    tally.by_address[1] += held
        disk = shutil.disk_usage(self.storage.directory).free
        tally.share = max(disk - self.settings.min_free_space, 0) * SHARE
        # what each address holds of the disk: at most the share (rows without one: all they owe)
        tally.owed = sum(min(owed, tally.share) if its is not None else owed for its, owed in owed_by.items())
        tally.address_owed = owed_by.get(address, 0) if address is not None else 0
        tally.address_held = min(tally.address_owed, tally.share)
        tally.free = disk - tally.owed
        return tally


def _unfinished(max_files: int, max_bytes: int) -> TargetClosed:
    return TargetClosed(429, "You have many files still on their way. Let them finish (or cancel some), then send more.",
                        code="too_many_unfinished", params={"files": max_files, "bytes": max_bytes})


@dataclasses.dataclass
class _Tally:
    by_session: list[int] = dataclasses.field(default_factory=lambda: [0, 0])  # [files, announced bytes]
    by_address: list[int] = dataclasses.field(default_factory=lambda: [0, 0])
    owed: int = 0  # bytes announced and not yet written, each address's up to `share`
    address_owed: int = 0  # by this address (public page and links together)
    address_held: int = 0  # of them, what counts: up to `share`
    share: float = 0  # what one address may hold of the disk
    free: int = 0  # the staging disk's free bytes less `owed`
