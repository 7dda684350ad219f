"""`StagingStorage`: tuspyserver's `TusStorage` backend for the staging folder.

It closes tuspyserver's measured defects that live in storage:
- *Offset truth*: `read_info` reports the bytes in the data file as the offset, whatever the sidecar
  says, so a server killed mid-PATCH resumes after exactly the bytes it kept (tusd does the same).
- *Bounded memory*: a PATCH body is written in pieces of at most `WRITE_PIECE` bytes, not held whole,
  and all uploads together hold at most `BUFFER_BUDGET` unwritten: beyond it a piece is written as it
  comes (an attack run's 300 PATCHes that each sent 1 MiB less a byte and stalled held 300 MB).
- *Nothing on the event loop*: every read, write, fsync and hash runs in a worker thread.
- *Durable where it pays*: an upload of at least `DURABLE_FROM` bytes (or of a length not yet known)
  is fsynced as it is made (its sidecar, then the folder that names it and its data file) and when
  its last byte lands, so a power cut does not cost its guest a long upload. A smaller one (a photo)
  is not: it goes on to Immich within seconds and is deleted, and the kernel writes what stays longer
  back within about 35 s; a file whose delivery waits for a retry is fsynced then, with the folder
  (`keeper`). Both fsyncs cost 2 ms of CPU a photo, 8 % of the server's
  CPU against a real Immich, and they wrote to the disk photos that lived a few seconds (bench/).
- *Expiry*: `expires` is the data file's last write plus UPLOAD_EXPIRY_HOURS (a sliding window), in
  the RFC 7231 form tuspyserver parses; the janitor in `pipeline` applies the same rule.
- *No download*: `read` returns nothing.
It also hashes while receiving: when bytes arrive in order from offset 0 in this process, the SHA-1
is ready the moment the upload completes and the delivery worker skips a pass over the file.
`watch(uid)` gives an event set whenever bytes of that upload land on disk or it is deleted, so a
reader can follow a file while it arrives (`relay`).
*One look at the disk per PATCH*: tuspyserver asks for the size, the sidecar and whether the file
exists eight times in one PATCH (a thread hop each). `snapshot(uid)` reads them once, under the
upload's lock (the guard passes it to `UploadLocks.try_acquire`, so it costs no hop of its own), and
while this process holds that lock nobody else can change them: those questions are answered from
it, and this process's own writes keep it up to date. It is dropped when the lock goes.

Layout: `<dir>/<uid>` data, `<uid>.info` sidecar, `.locks/<uid>.lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from email.utils import formatdate
from pathlib import Path
from typing import Callable, Dict, List, Optional

from tuspyserver.storage import TusStorage

from ..files import private_dir, private_file
from .locks import UploadLocks

WRITE_PIECE = 1024 * 1024
DURABLE_FROM = 64 * 1024 * 1024  # uploads this large (or of unknown length) are fsynced as they arrive
BUFFER_BUDGET = 16 * WRITE_PIECE  # unwritten bytes of all uploads together: 6-8 active uploads hold 8 MiB
_BOOKKEEPING = {"offset", "expires", "upload_part", "upload_chunk_size"}
log = logging.getLogger(__name__)
UID = re.compile(r"^[0-9a-f]{32}$")


class UploadGone(Exception):
    """An upload's staged data file went while a PATCH was writing it (its link was deleted, and
    `pipeline.drop` removed it): the write is not made. Made again, the file (and its sidecar) would
    have lain in staging until the 24-hour sweep, and the PATCH been answered 204."""


class StagingStorage(TusStorage):
    def __init__(self, directory: Path, locks: UploadLocks, expiry_seconds: float):
        self.directory = directory
        self.locks = locks
        self.expiry_seconds = expiry_seconds
        self._pending: Dict[str, list] = {}  # chunks not yet written, at most WRITE_PIECE bytes
        self._pending_size: Dict[str, int] = {}
        self.buffered = 0  # the sum of _pending_size
        self._lengths: Dict[str, int] = {}  # Upload-Length by uid, to know the last PATCH
        # uid -> (sha1 of the bytes so far, how many bytes it covers)
        self._hashers: Dict[str, tuple] = {}
        self._info_written: Dict[str, str] = {}  # uid -> the sidecar's lasting fields as last written
        self._watchers: Dict[str, asyncio.Event] = {}  # uid -> set when bytes land or the upload goes
        # uid -> [bytes on disk or None if no file, sidecar dict or None, mtime], while its lock is held
        self._snapshots: Dict[str, list] = {}
        self._fresh: set = set()  # ids the guard just made (a new row): tuspyserver's "exists?" needs no disk look
        self._creating: set = set()  # created, the empty data file not made yet (write_info makes it)
        self._just_created: set = set()  # made empty by write_info, its size not asked yet
        locks.on_release.append(lambda uid: self._snapshots.pop(uid, None))
        self.on_written = lambda n: None  # e.g. a metrics counter

    def data_path(self, uid: str) -> Path:
        if not UID.match(uid):
            raise ValueError("invalid upload id")
        return self.directory / uid

    def info_path(self, uid: str) -> Path:
        return self.directory / f"{uid}.info"

    def location(self, uid: str) -> str:
        return str(self.data_path(uid))

    # --- data -------------------------------------------------------------------
    async def create(self, uid: str) -> None:
        # tuspyserver writes the sidecar right after creating (StorageUploadFile.open), then asks for
        # the size: the empty data file is made in write_info's thread hop, and that size is known.
        self._fresh.discard(uid)
        self._creating.add(uid)
        self._hashers[uid] = (hashlib.sha1(), 0)

    def _create_now(self, uid: str) -> None:
        private_dir(self.directory)
        os.close(private_file(self.data_path(uid), os.O_WRONLY | os.O_APPEND))

    def snapshot(self, uid: str) -> int:
        """Read the upload's size and sidecar now (blocking: call it in a thread, under its lock);
        returns the size. Until the lock goes, `exists`, `size` and `read_info` answer from it."""
        data_path = self.data_path(uid)
        try:
            stat = data_path.stat()
            size, mtime = stat.st_size, stat.st_mtime
        except FileNotFoundError:
            size, mtime = None, time.time()
        try:
            info = json.loads(self.info_path(uid).read_text())
        except (OSError, ValueError):
            info = None
        if not isinstance(info, dict):
            info = None
        elif isinstance(info.get("size"), int):
            self._lengths[uid] = info["size"]
        self._snapshots[uid] = [size, info, mtime]
        return size or 0

    def prefix(self, uid: str, size: int) -> bytes:
        """The data file's first `size` bytes (blocking: a thread, under the upload's lock)."""
        if size <= 0:
            return b""
        with open(self.data_path(uid), "rb") as data:
            return data.read(size)

    def _snapshot(self, uid: str) -> Optional[list]:
        return self._snapshots.get(uid) if self.locks.held(uid) else None

    def fresh(self, uid: str) -> None:
        """`uid` was made just now for a creation (a random id whose database row was just inserted):
        tuspyserver's first question, whether it exists, is answered "no" without a look at the disk."""
        self._fresh.add(uid)

    async def exists(self, uid: str) -> bool:
        if uid in self._creating:
            return True
        if uid in self._fresh:
            self._fresh.discard(uid)
            return False
        known = self._snapshot(uid)
        if known is not None:
            return known[0] is not None
        return await asyncio.to_thread(self.data_path(uid).exists)

    async def made(self, uid: str) -> bool:
        """Both staged files (data and sidecar) are on disk: tuspyserver's creation of `uid` went far
        enough for a PATCH, whichever process made it (replicas share this folder)."""
        return await asyncio.to_thread(lambda: self.data_path(uid).exists() and self.info_path(uid).exists())

    async def size(self, uid: str) -> int:
        if uid in self._creating or uid in self._just_created:
            self._just_created.discard(uid)  # once: nobody knew the upload before it was made
            return 0
        known = self._snapshot(uid)
        if known is not None:
            return known[0] or 0
        return await asyncio.to_thread(_size, self.data_path(uid))

    async def append(self, uid: str, chunk: bytes) -> None:
        # Chunks are kept as they came and written with writelines: no copy into a buffer and out again.
        self._pending.setdefault(uid, []).append(chunk)
        self._pending_size[uid] = self._pending_size.get(uid, 0) + len(chunk)
        self.buffered += len(chunk)
        if self._pending_size[uid] >= WRITE_PIECE or self.buffered > BUFFER_BUDGET:
            await self._write(uid, final=False)

    async def flush(self, uid: str) -> None:
        await self._write(uid, final=True)

    async def _write(self, uid: str, final: bool) -> None:
        chunks = self._pending.pop(uid, [])
        size = self._pending_size.pop(uid, 0)
        self.buffered -= size
        hasher = self._hashers.get(uid)
        path = self.data_path(uid)
        length = self._lengths.get(uid)

        def do() -> int:
            try:  # appended to, never made here: tuspyserver's creation made it (write_info)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                raise UploadGone(uid) from None
            with os.fdopen(fd, "ab") as fh:
                start = fh.seek(0, os.SEEK_END)
                fh.writelines(chunks)
                fh.flush()
                # fsync a long upload when it is complete: "received" means on disk. Earlier PATCHes
                # need none, because the offset is what the file holds: after a power cut HEAD tells
                # the truth. A short one is not (the module's docstring).
                if final and (length is None or start + size >= length) and durable(length):
                    os.fsync(fh.fileno())
            if hasher is not None and self._hashers.get(uid) is hasher:  # (not forgotten meanwhile)
                digest, covered = hasher
                if covered == start:
                    for chunk in chunks:
                        digest.update(chunk)
                    self._hashers[uid] = (digest, covered + size)
                else:  # bytes arrived that this process did not see: hash from disk later
                    self._hashers.pop(uid, None)
            return start + size

        end = await asyncio.to_thread(do)
        known = self._snapshots.get(uid)
        if known is not None:
            known[0], known[2] = end, time.time()
        self.on_written(size)
        watcher = self._watchers.get(uid)
        if watcher is not None:
            watcher.set()

    def watch(self, uid: str) -> asyncio.Event:
        """An event set each time bytes of `uid` land on disk, and when it is deleted (then `watching`
        no longer returns it). The reader clears it before it reads, so no write goes unnoticed."""
        return self._watchers.setdefault(uid, asyncio.Event())

    def watching(self, uid: str) -> Optional[asyncio.Event]:
        return self._watchers.get(uid)

    def unwatch(self, uid: str) -> None:
        self._watchers.pop(uid, None)

    def skip_hashing(self, uid: str) -> None:
        """Someone else hashes this upload (the relay): no SHA-1 while writing it."""
        self._hashers.pop(uid, None)

    def take_digest(self, uid: str, size: int) -> Optional[str]:
        """The SHA-1 computed while receiving, if it covers exactly `size` bytes; forgets it."""
        entry = self._hashers.pop(uid, None)
        if entry and entry[1] == size:
            return entry[0].hexdigest()
        return None

    async def finalize(self, uid: str) -> None:
        return None

    async def read(self, uid: str) -> Optional[bytes]:
        return None  # uploads are never served back

    async def delete(self, *uids: str) -> None:
        """Remove the staged files of `uids` (one thread hop for them all: a deleted link's thousand)."""
        removers = [self.remover(uid) for uid in uids]
        for uid in uids:
            self.forget(uid)
        await asyncio.to_thread(lambda: [remove() for remove in removers])

    def remover(self, uid: str) -> Callable[[], None]:
        """A blocking function that removes `uid`'s data, info and lock files, for a thread hop the
        caller makes anyway (the delivery's last state change, bench/README.md); `forget(uid)` then."""
        paths = (self.data_path(uid), self.info_path(uid), self.locks.path(uid))

        def remove() -> None:
            for p in paths:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

        return remove

    def keeper(self, uid: str) -> Callable[[], None]:
        """A blocking function that fsyncs `uid`'s data file and sidecar (if they are there) and the
        folder, for a thread hop the caller makes anyway: a short upload about to wait for a retry is
        made durable then, not as it arrived (the module's docstring)."""
        # the folder last: the files' names, made when nothing was fsynced yet
        paths = (self.data_path(uid), self.info_path(uid), self.directory)

        def keep() -> None:
            for p in paths:
                try:
                    fsync_path(p)
                except FileNotFoundError:
                    pass  # removed meanwhile (its link deleted): nothing to keep
                except OSError as exc:  # the disk's own error: a failed fsync leaves the page cache
                    # readable, so the retry would not notice; the owner's log must
                    log.warning("could not make staged upload %s durable: %s", uid, exc)

        return keep

    def forget(self, uid: str) -> None:
        """Drop what this process knows of `uid` (its files are gone, or go now); a reader following it learns so."""
        self._pending.pop(uid, None)
        self.buffered -= self._pending_size.pop(uid, 0)
        self._lengths.pop(uid, None)
        self._hashers.pop(uid, None)
        self._info_written.pop(uid, None)
        self._snapshots.pop(uid, None)
        self._creating.discard(uid)
        self._just_created.discard(uid)
        self._fresh.discard(uid)
        watcher = self._watchers.pop(uid, None)
        if watcher is not None:
            watcher.set()  # a reader following the file learns it is gone

    # --- info sidecar -------------------------------------------------------------
    async def read_info(self, uid: str) -> Optional[Dict]:
        known = self._snapshot(uid)
        if known is not None:
            size, info, mtime = known
            if info is None or size is None:
                return None
            return {**info, "offset": size, "expires": formatdate(mtime + self.expiry_seconds, usegmt=True)}
        data_path, info_path = self.data_path(uid), self.info_path(uid)

        def do() -> Optional[Dict]:
            try:
                info = json.loads(info_path.read_text())
                stat = data_path.stat()
            except (OSError, ValueError):
                return None
            if not isinstance(info, dict):
                return None
            info["offset"] = stat.st_size  # the bytes on disk are the truth
            if isinstance(info.get("size"), int):
                self._lengths[uid] = info["size"]
            info["expires"] = formatdate(stat.st_mtime + self.expiry_seconds, usegmt=True)
            return info

        return await asyncio.to_thread(do)

    async def write_info(self, uid: str, data: Dict) -> None:
        # tuspyserver rewrites the sidecar after every PATCH, but what changes then is bookkeeping that
        # read_info replaces (offset, expires) or nobody reads (part counter, last chunk size): skip
        # those rewrites, a file write per PATCH (bench/).
        lasting = json.dumps({k: v for k, v in data.items() if k not in _BOOKKEEPING}, default=str, sort_keys=True)
        if self._info_written.get(uid) == lasting:
            return
        path = self.info_path(uid)
        text = json.dumps(data, default=str)
        first = uid not in self._lengths
        length = data.get("size") if isinstance(data.get("size"), int) else None
        # a long upload's metadata must survive; later rewrites only repeat it (offsets come from
        # disk). A short one's sidecar lost to a power cut reads as no upload: its page sends the
        # file again.
        sync = first and durable(length)
        creating = uid in self._creating
        data_path = self.data_path(uid)

        def do() -> None:
            if creating:
                self._create_now(uid)
            elif not data_path.exists():
                raise UploadGone(uid)  # its files were removed under this request: not made again
            tmp = path.with_suffix(".info.tmp")
            with os.fdopen(private_file(tmp, os.O_WRONLY | os.O_TRUNC), "w") as fh:
                fh.write(text)
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            if sync:  # the names too: the data file's and the sidecar's
                fsync_path(self.directory)
            if not creating and not data_path.exists():  # removed between the look and the replace
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                raise UploadGone(uid)

        try:
            await asyncio.to_thread(do)
        finally:
            if creating:
                self._creating.discard(uid)
                self._just_created.add(uid)
        self._info_written[uid] = lasting
        if length is not None:
            self._lengths[uid] = length
        known = self._snapshots.get(uid)
        if known is not None:
            known[1] = json.loads(text)

    # --- housekeeping ---------------------------------------------------------------
    async def list_uids(self) -> List[str]:
        def do() -> List[str]:
            try:
                return [n for n in os.listdir(self.directory) if UID.match(n)]
            except FileNotFoundError:
                return []

        return await asyncio.to_thread(do)

    async def staged(self, uids: List[str]) -> Dict[str, tuple[int, float]]:
        """(bytes on disk, last write) of each of `uids` whose staged file is there, in one thread hop."""
        def do() -> Dict[str, tuple[int, float]]:
            found = {}
            for uid in uids:
                try:
                    stat = self.data_path(uid).stat()
                except FileNotFoundError:
                    continue
                found[uid] = (stat.st_size, stat.st_mtime)
            return found

        return await asyncio.to_thread(do)

    async def modified_at(self, uid: str) -> Optional[float]:
        def do() -> Optional[float]:
            try:
                return self.data_path(uid).stat().st_mtime
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(do)

    @contextlib.asynccontextmanager
    async def lock(self, uid: str):
        """tuspyserver takes this inside its PATCH; the guard already holds the upload's lock."""
        if self.locks.held(uid):
            yield
            return
        held = await self.locks.try_acquire(uid, lambda: self.snapshot(uid))
        if held is None:
            raise TimeoutError("upload is busy")
        try:
            yield
        finally:
            await held.release()


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (opened read-only, which both allow). A folder needs it too: a
    file's data fsynced is not enough after a power cut if the entry naming it (its creation, a
    rename onto it) is still only in memory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable(length: Optional[int]) -> bool:
    """Is an upload of this Upload-Length (None: not known yet) fsynced as it arrives?"""
    return length is None or length >= DURABLE_FROM


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
