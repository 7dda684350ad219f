"""`Relay`: send a large video on to Immich while the guest is still uploading it.

Store-and-forward makes a large file cost two transfers one after the other: the guest's upload,
then ours to Immich (bench/: 6 s + 4 s for 1 GiB). For a video of at least STREAM_MIN_SIZE the
relay opens `POST /assets` at the upload's first PATCH in this process and feeds it the bytes as
they land on disk. Only bytes on disk are sent, and tus only ever appends, so nothing is sent that
could change. The relay also computes the SHA-1 as it reads (the storage then skips it, so the
guest's PATCHes do not wait for it). When the last byte lands Immich answers moments later, and the
delivery worker takes that answer and the SHA-1 (`result`) instead of hashing and sending again.

What it gives up, and why the outcome is the same:
- No duplicate check before sending (the SHA-1 is known only at the end): Immich hashes the bytes
  itself and answers "duplicate" for a file its owner has (API_FACTS). A duplicate video costs a
  transfer to Immich, never to the guest.
- The dates go after the file's bytes in the request (Immich reads them after the body), read from
  the complete file then, as the worker would (`dates.taken_at`): a phone's video keeps its `moov`
  box, and so its date, at the end. Immich does not always find that date itself (the peer did not,
  for a plain `mvhd` date).
Any trouble aborts the request, and an unfinished body makes no asset in Immich: the guest pausing
longer than STREAM_STALL_SECONDS, cancelling, Immich failing, the server stopping. The worker then
sends the finished file as usual (hashing it from disk first).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Awaitable, Callable

from .config import Settings
from .immich import READ_PIECE, ImmichClient
from .dates import taken_at
from .guest_fields import description
from .media import VIDEO_EXTENSIONS, fixed_iso, from_ms
from .models import Upload, utcnow
from .targets import Targets
from .tus.storage import StagingStorage

log = logging.getLogger(__name__)


async def _nothing(*_args) -> None:
    return None


def relayed(size: int, filename: str, min_size: int) -> bool:
    """Is a file of this size and name relayed (a video of at least `min_size`; 0 means never)?"""
    return bool(min_size) and size >= min_size and PurePosixPath(filename).suffix.lower() in VIDEO_EXTENSIONS


class Stopped(Exception):
    """The file stopped arriving (stalled or cancelled): the relayed request is abandoned."""


@dataclass(frozen=True)
class Relayed:
    asset_id: str
    duplicate: bool
    checksum: str  # SHA-1 of the bytes sent, hex


class Relay:
    def __init__(self, settings: Settings, immich: ImmichClient, storage: StagingStorage, targets: Targets,
                 in_background: Callable[..., Awaitable] = asyncio.to_thread):
        # reading a file's date yields to the guest's own upload; reading (and hashing) what Immich
        # waits for does not: against a real Immich that feed is the critical path (bench/README.md)
        self.in_background = in_background
        self.min_size = settings.stream_min_size
        self.stall_seconds = settings.stream_stall_seconds
        self.limit = settings.max_concurrent
        self.immich, self.storage, self.targets = immich, storage, targets
        self._sends: dict[str, asyncio.Task] = {}
        self._tried: set[str] = set()  # one attempt per upload and process: a flaky guest is not resent
        self.counted = lambda outcome: None  # "sent" or "abandoned", e.g. a metrics counter
        # an asset was created for uid (noted on the row: a later "duplicate" for it is this upload's own)
        self.created: Callable[[str], Awaitable] = _nothing

    def wants(self, upload: Upload) -> bool:
        return relayed(upload.size, upload.filename, self.min_size)

    def start(self, upload: Upload) -> None:
        """The guard's notice before each PATCH; starts relaying `upload` once, if it qualifies."""
        if upload.id in self._tried or not self.wants(upload):
            return
        if sum(not task.done() for task in self._sends.values()) >= self.limit:
            return  # as many connections to Immich as the delivery workers use, no more
        self._tried.add(upload.id)
        # The relay reads every byte anyway and hashes it on its own time, off the guest's path;
        # the guest's PATCHes then need not wait for the SHA-1 (bench/: a third of a PATCH's time).
        self.storage.skip_hashing(upload.id)
        task = asyncio.create_task(self._send(upload), name=f"relay-{upload.id}")
        self._sends[upload.id] = task
        task.add_done_callback(lambda t, uid=upload.id: self._ended(uid, t))

    async def result(self, uid: str) -> Relayed | None:
        """Immich's answer and the SHA-1 for a relayed upload, once all its bytes are on disk; None if
        it was not relayed or the relay failed (then the file must be hashed and sent)."""
        self._tried.discard(uid)
        task = self._sends.pop(uid, None)
        return await task if task is not None else None

    async def close(self) -> None:
        tasks = list(self._sends.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sends.clear()

    def _ended(self, uid: str, task: asyncio.Task) -> None:
        if task.cancelled() or task.result() is None:
            self._sends.pop(uid, None)  # nothing to collect: the worker will send the file

    async def _send(self, upload: Upload) -> Relayed | None:
        digest = hashlib.sha1()
        try:
            delivery = await self.targets.delivery(upload)
            path = self.storage.data_path(upload.id)

            async def dates() -> tuple[str, str]:  # called once every byte is sent
                taken = await taken_at(upload, path, self.in_background)
                return fixed_iso(taken), fixed_iso(from_ms(upload.last_modified_ms) or utcnow())

            asset_id, duplicate = await self.immich.upload_asset(
                delivery.api_key, path, upload.size, filename=upload.filename, created_at=None, modified_at=None,
                pieces=self._follow(upload.id, upload.size, digest), dates_after=dates,
                visibility=delivery.visibility, description=description(upload.guest_name, upload.guest_message))
            if not duplicate:
                await self.created(upload.id)
            self.counted("sent")
            return Relayed(asset_id, duplicate, digest.hexdigest())
        except asyncio.CancelledError:
            self.counted("abandoned")
            raise
        except Exception as exc:  # whatever it was, the worker sends the finished file
            self.counted("abandoned")
            log.info("relay of %s stopped, the file will be sent once complete: %s", upload.id,
                     getattr(exc, "message", None) or exc or type(exc).__name__)
            return None
        finally:
            self.storage.unwatch(upload.id)

    async def _follow(self, uid: str, size: int, digest):
        """The upload's bytes from offset 0 to `size`, each piece as soon as it is on disk, hashed
        into `digest` on the way (in the reading thread)."""
        event = self.storage.watch(uid)
        fh = await asyncio.to_thread(open, self.storage.data_path(uid), "rb")

        def read(n: int) -> bytes:
            piece = fh.read(n)
            digest.update(piece)
            return piece

        sent = 0
        try:
            while sent < size:
                if self.storage.watching(uid) is not event:
                    raise Stopped("the upload was cancelled")
                event.clear()  # before reading: a write that lands after the read sets it again
                piece = await asyncio.to_thread(read, min(READ_PIECE, size - sent))
                if piece:
                    sent += len(piece)
                    yield piece
                    continue
                try:
                    await asyncio.wait_for(event.wait(), self.stall_seconds)
                except TimeoutError:
                    raise Stopped(f"no bytes arrived for {self.stall_seconds:g} s") from None
        finally:
            await asyncio.to_thread(fh.close)
