"""The delivery worker: received files go to Immich, once, dated, into their album.

`Pipeline.received(uid)` is the tus "post" hook: it marks the upload received and queues it; the
request that sent the last byte returns after that one write. Workers take queued uploads and run
`deliver`; at most MAX_CONCURRENT deliveries run at once (`_slots`). When a slot is free as the
last byte lands, the hook marks and claims the upload in one transaction (reading a photo's capture
date in the same thread hop) and starts its delivery itself, without the queue:

    received → hashing → uploading → done | duplicate | failed, or → retrying (and again later)

- Large videos: `relay` sends them on while they arrive; the worker then only collects Immich's answer.
- SHA-1: computed while receiving when possible (`StagingStorage.take_digest`), else read from disk;
  kept on the row from the first attempt on, so a retry never reads the file again.
- Duplicates: Immich decides, every time (a trashed asset counts, and the owner's log says so): a
  file under CHECK_FIRST_FROM is sent with its SHA-1 in `x-immich-checksum`, and Immich answers
  "duplicate" to the upload itself; a larger one is asked about first with the bulk check. The
  local cache (owner, SHA-1) is only written, for the guest page's pre-check; it never ends an
  upload. A duplicate is still added to the target album. A "duplicate" for a file an earlier
  attempt of ours already began sending (`sent_at`) is that attempt's asset: `done`.
- Immich unreachable, 5xx, or refusing the key: `retrying` with backoff, the file kept. Other 4xx:
  `failed` with Immich's message, the file kept until the janitor's expiry. A staged file that
  cannot be read: `failed` at once. Any other error: retried MAX_UNEXPECTED times, then `failed`.
- One process delivers an upload at a time, under a lease in the database renewed while it works.
  A lease that could not be renewed or was taken over cancels the delivery, and every state change
  a worker makes is conditional on the lease it holds, so a worker that lost it changes nothing.
- The staged file is deleted only after Immich confirmed the asset (and the album, if any).

`start()` picks up every upload complete on disk but not delivered (also those the server was
killed while receiving or delivering); `sweep()` removes incomplete uploads idle past
UPLOAD_EXPIRY_HOURS, with their info and lock files.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Awaitable, Callable

from .batch import Coalescer
from .config import Settings
from .events import EventBus, upload_event
from .dates import date_of, taken_at
from .guest_fields import description
from .immich import (
    AlbumMissing,
    AlbumNotWritable,
    AssetMissing,
    ImmichClient,
    ImmichRejected,
    ImmichUnavailable,
)
from .media import VIDEO_EXTENSIONS, from_ms, iso, sha1_file
from .metrics import Metrics
from .models import Upload, UploadState, utcnow
from .relay import Relay, Relayed
from .store import Store
from .targets import PAUSED, Delivery, KeyUnavailable, TargetGone, Targets
from .tus.storage import StagingStorage

log = logging.getLogger(__name__)
S = UploadState
WAITING = "Waiting for the server; the file is safe and will be sent when it is back."
TRASHED = "Already in Immich, in the owner's trash: restore it there to see it again. Added to the album."
UNREADABLE = "The server could not read the received file ({}); please send it again."
MAYBE_SENT = ("The link was deleted by its owner while this file was being sent to Immich: "
              "it may have arrived there, but it was not added to the album.")
CHECK_FIRST_FROM = 32 * 1024 * 1024  # files from this size are checked for duplicates before they are sent
MAX_UNEXPECTED = 5  # attempts that end in an error nobody foresaw, before the upload is marked failed
# Attempts before an upload that Immich keeps answering 500 is failed: a file Immich cannot take (a
# date it cannot store, say) was sent again every 5 minutes for good, holding its staging space
# (attack run). Immich down or restarting is a refused connection, a 502/503 or a timeout, not this.
MAX_SERVER_ERRORS = 8


class LeaseLost(Exception):
    """This process no longer holds the upload's delivery lease: another one delivers it now."""


class Pipeline:
    def __init__(self, settings: Settings, store: Store, immich: ImmichClient, storage: StagingStorage,
                 targets: Targets, bus: EventBus, metrics: Metrics | None = None,
                 in_background: Callable[..., Awaitable] = asyncio.to_thread):
        self.metrics = metrics or Metrics()
        self.in_background = in_background  # hashing and date reading: nobody waits on them (background.py)
        self.settings, self.store, self.immich = settings, store, immich
        self.storage, self.targets, self.bus = storage, targets, bus
        # Workers ask about one file each; concurrent questions to Immich share a request (batch.py).
        self._checks = Coalescer(self._bulk_check)
        self._album_adds = Coalescer(lambda key, ids: immich.add_to_album_each(key[0], key[1], ids))
        self.relay = Relay(settings, immich, storage, targets, in_background)  # large videos go on while they arrive
        self.relay.counted = lambda outcome: self.metrics.relays.labels(outcome=outcome).inc()
        self.relay.created = lambda uid: store.update_upload(uid, sent_at=utcnow())
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._albums: dict[tuple[str, str], str] = {}
        self._album_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._delivering: dict[str, asyncio.Task] = {}  # uid -> the attempt running in this process
        self._slots = asyncio.Semaphore(settings.max_concurrent)  # deliveries running at once
        self._handed: set[asyncio.Task] = set()  # deliveries `received` started itself
        self._stopping = False
        # Files their claim marked as being sent (`Store.claim_delivery`) whose sending has not begun:
        # never checked first, never relayed (under both sizes), and no earlier attempt sent them.
        self._send_below = min(CHECK_FIRST_FROM, settings.stream_min_size or CHECK_FIRST_FROM)
        self._marked: set[str] = set()
        self._claiming: set[str] = set()  # uploads whose claim is on its way in a thread
        self._dropped: set[str] = set()  # of those, the ones `drop` ended meanwhile
        self.worker = uuid.uuid4().hex  # this process, as a lease owner
        # What the invite's owner hears (notify.py): a file of the invite reached its final state; their key was refused.
        self.on_invite_delivered: Callable[[str], Awaitable[None]] = _nothing
        self.on_key_refused: Callable[[str], Awaitable[None]] = _nothing
        self._owner_tasks: set[asyncio.Task] = set()
        self.lease_seconds = 60.0
        self.scan_seconds = 5.0

    # --- life cycle ------------------------------------------------------------------
    async def start(self) -> None:
        for upload in await self.store.uploads_in_states([S.RECEIVING]):
            if await self.storage.size(upload.id) == upload.size:  # killed after the last byte
                await self.received(upload.id)
        self._tasks = [asyncio.create_task(self._worker(), name=f"delivery-{i}")
                       for i in range(self.settings.max_concurrent)]
        self._tasks.append(asyncio.create_task(self._janitor(), name="janitor"))
        self._tasks.append(asyncio.create_task(self._scanner(), name="scanner"))

    async def stop(self) -> None:
        self._stopping = True  # a last byte landing now is marked received, not delivered from here
        for timer in self._retry_timers.values():
            timer.cancel()
        for task in (*self._tasks, *self._handed):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._handed, return_exceptions=True)
        for uid in list(self._marked):  # claimed by `received` just now, its delivery not begun
            await self._unmark(uid)
        self._tasks = []
        await self.relay.close()
        await self.store.release_leases(self.worker, utcnow())

    async def _scanner(self) -> None:
        """Picks up what is due: at start-up everything pending, then retries whose time came and
        deliveries whose process died (expired lease), in this process or another one sharing the database."""
        while True:
            for uid in await self.store.due_deliveries(utcnow()):
                self.submit(uid)
            await asyncio.sleep(self.scan_seconds)

    def submit(self, uid: str) -> None:
        if uid not in self._queued:
            self._queued.add(uid)
            self._queue.put_nowait(uid)

    @property
    def queue_length(self) -> int:
        return self._queue.qsize()

    async def received(self, uid: str) -> None:
        if self._tasks and not self._stopping and not self._slots.locked():
            # A delivery slot is free: marked received and claimed in one transaction, and delivered
            # from here (a state change, a claim and often the "uploading" mark in one, bench/README.md).
            await self._slots.acquire()  # at once: it is not locked
            try:
                upload, rows = await self._claim(uid, receiving=True)
            except BaseException:
                self._slots.release()
                raise
            if upload is None:
                self._slots.release()
                return
            self._handed.add(task := asyncio.create_task(self._handed_off(upload, rows), name=f"delivery-{uid}"))
            task.add_done_callback(self._handed.discard)
            # known as this upload's attempt at once: `drop` (its link deleted) must find it before it starts
            self._delivering[uid] = task
            task.add_done_callback(lambda done: self._delivering.get(uid) is done and self._delivering.pop(uid))
            return
        upload = await self.store.update_upload(uid, only_from=[S.RECEIVING], state=S.RECEIVED,
                                                received_at=utcnow(), message="")
        if upload is not None:
            self._publish(upload)
            self.submit(uid)

    def _date_photo(self, upload: Upload) -> None:
        """In the claim's thread hop, while its bytes are in the page cache: the capture date of a
        photo that goes at once (a thread hop fewer a photo). Videos are left to the delivery:
        hachoir, which some containers need, costs a first import a PATCH must not wait for."""
        if upload.captured_at or upload.state != S.UPLOADING \
                or PurePosixPath(upload.filename).suffix.lower() in VIDEO_EXTENSIONS:
            return  # read by an earlier attempt, or left to the delivery
        try:
            upload.captured_at = iso(date_of(upload, self.storage.data_path(upload.id)))
        except Exception as exc:  # the delivery reads it again, and says what went wrong
            log.debug("capture date of %s not read at once: %s", upload.id, exc)

    async def _handed_off(self, upload: Upload, rows: tuple | None) -> None:
        """The delivery of an upload `received` claimed, in the slot it took."""
        try:
            await self._deliver_claimed(upload, rows)
        except Exception:  # as in `_worker`: the upload stays pending for the scanner
            log.exception("delivery of %s failed unexpectedly", upload.id)
        finally:
            self._slots.release()

    async def _worker(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            try:
                async with self._slots:
                    await self.deliver(uid)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the upload stays pending for a restart
                log.exception("delivery of %s failed unexpectedly", uid)

    # --- one delivery ------------------------------------------------------------------
    async def deliver(self, uid: str) -> None:
        upload, rows = await self._claim(uid)
        if upload is None:
            return  # delivered, failed, not due yet, or another process holds it
        await self._deliver_claimed(upload, rows)

    async def _claim(self, uid: str, receiving: bool = False) -> tuple[Upload | None, tuple | None]:
        """`Store.claim_delivery` for this process, with the photo's date read in its hop (`_date_photo`).

        The claim's thread commits whether or not its caller waits: a caller cancelled meanwhile
        (the server stopping) waits for it, so that what it took goes back before the server stops:
        the "being sent" mark here, the lease with this process's others (`stop`). Otherwise the
        next process would find the upload held for a whole lease, and marked as sent."""
        claim = asyncio.ensure_future(self.store.claim_delivery(
            uid, self.worker, utcnow(), self.lease_seconds, self._send_below, self._date_photo, receiving=receiving))
        self._claiming.add(uid)
        try:
            upload, rows = await _to_its_end(claim)
        except asyncio.CancelledError:
            if not claim.cancelled() and claim.exception() is None and claim.result()[0] is not None:
                self._note_mark(claim.result()[0])
                await asyncio.shield(self._unmark(claim.result()[0].id))
            raise
        finally:
            self._claiming.discard(uid)
            dropped = uid in self._dropped
            self._dropped.discard(uid)
        if upload is not None and dropped:
            # its link was deleted while the claim was on its way: `drop` ended the upload and told
            # the guest so; an attempt now would tell them "being sent" after that, and it stayed
            return None, None
        if upload is not None:
            self._note_mark(upload)
        return upload, rows

    def _note_mark(self, upload: Upload) -> None:
        """Right after a claim: if it marked the upload as being sent, no attempt before did."""
        if upload.state == S.UPLOADING:
            self._marked.add(upload.id)
            upload.sent_at = None  # what earlier attempts left, as `_send` reads it

    async def _deliver_claimed(self, upload: Upload, rows: tuple | None) -> None:
        """An attempt at an upload this process just claimed; `rows` as `Targets.delivery` takes them."""
        try:
            await self._attempt(upload, rows)
        finally:
            # stopped before its first byte went (server stopping, lease lost): the mark goes back
            await asyncio.shield(self._unmark(upload.id))

    async def _unmark(self, uid: str) -> None:
        """Take back the claim's "being sent" mark (state "uploading", `sent_at`) of an upload whose
        sending never began, while it is ours."""
        if uid not in self._marked:
            return
        self._marked.discard(uid)
        try:
            # "uploading" goes too: to another process (`drop` of a deleted link) it says "may have been sent"
            await self.store.update_upload(uid, only_from=(S.UPLOADING,), held_by=self.worker, sent_at=None,
                                           state=S.HASHING)
        except Exception as exc:
            log.warning("the sending mark of %s could not be taken back: %s", uid, exc)

    async def _attempt(self, upload: Upload, rows: tuple | None = None) -> None:
        """One attempt at a claimed upload, under its lease."""
        uid = upload.id
        started = time.monotonic()
        attempt = asyncio.create_task(self._deliver(upload, rows), name=f"deliver-{uid}")
        self._delivering[uid] = attempt
        renewer = asyncio.create_task(self._keep_lease(uid, attempt))
        try:
            outcome = await attempt
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # this worker is being stopped, not just the attempt
            outcome = "lost"  # the lease was lost or the link deleted: another party owns the upload now
        finally:
            renewer.cancel()
            self._delivering.pop(uid, None)
        self.metrics.deliveries.labels(outcome=outcome).inc()
        if outcome in (S.DONE, S.DUPLICATE, S.FAILED):
            self.metrics.delivery_seconds.observe(time.monotonic() - started)

    async def _keep_lease(self, uid: str, attempt: asyncio.Task) -> None:
        """Renew the lease while the attempt runs; cancel the attempt the moment it is not ours."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                held = await self.store.renew_lease(uid, self.worker, utcnow(),
                                                    utcnow() + timedelta(seconds=self.lease_seconds))
            except Exception as exc:  # the database is out of reach: we cannot know it is still ours
                log.warning("lease on %s could not be renewed (%s); stopping its delivery", uid, exc)
                held = False
            if not held:
                log.warning("lease on %s lost; another process delivers it", uid)
                attempt.cancel()
                return

    async def _deliver(self, upload: Upload, rows: tuple | None = None) -> str:
        """One attempt; returns the state it left the upload in. `rows` as `Targets.delivery` takes them."""
        uid = upload.id
        self._publish(upload)
        path = self.storage.data_path(uid)
        delivery = None
        try:
            delivery = await self.targets.delivery(upload, rows)
            relayed = await self.relay.result(uid)
            checksum = upload.checksum or (relayed and relayed.checksum) \
                or self.storage.take_digest(uid, upload.size) or await self.in_background(sha1_file, path)
            # kept on the row with the next state change: one write fewer per file (bench/)
            upload.checksum = checksum
            upload.captured_at = upload.captured_at or iso(await taken_at(upload, path, self.in_background))
            asset_id, duplicate, trashed = await self._send(upload, delivery, path, relayed)
            if delivery.album_name or delivery.album_id:
                try:
                    await self._add_to_album(delivery, asset_id, upload)
                except AlbumNotWritable as exc:  # an error the owner must see, not an album to re-create
                    self.metrics.immich_errors.labels(kind="rejected").inc()
                    return await self._end(upload, S.FAILED, f"Sent to Immich, but not added to the album "
                                           f"\"{delivery.album_name}\": this account may only view it there "
                                           f"({exc.message}).", asset_id=asset_id, delete=True,
                                           delivery=delivery)
        except TargetGone:
            await self.storage.delete(uid)
            return await self._end(upload, S.FAILED, "The link was deleted by its owner; this file was not sent.")
        except KeyUnavailable:
            return await self._retry_later(upload, PAUSED)
        except ImmichUnavailable as exc:
            self.metrics.immich_errors.labels(kind="unavailable").inc()
            if exc.status == 500 and upload.attempts + 1 >= MAX_SERVER_ERRORS:
                log.warning("Immich failed on %s %d times: %s", uid, upload.attempts + 1, exc.message)
                return await self._end(upload, S.FAILED, f"Immich failed on this file {upload.attempts + 1} times "
                                                         f"({exc.message}); it was not added.")
            return await self._retry_later(upload, f"{WAITING} ({exc.message})")
        except ImmichRejected as exc:
            self.metrics.immich_errors.labels(kind="auth" if exc.auth_problem else "rejected").inc()
            if exc.auth_problem and delivery is not None and delivery.account_id:
                if await self.store.set_key_valid(delivery.account_id, False):  # the admin sees "sign in again"
                    await self.on_key_refused(delivery.account_id)
                return await self._retry_later(upload, PAUSED)
            if exc.auth_problem:  # the server's key was refused: wait for it to be fixed, lose nothing
                return await self._retry_later(upload, f"{WAITING} (Immich refused the server's key: {exc.message})")
            log.warning("Immich refused %s: %s", uid, exc.message)
            return await self._end(upload, S.FAILED, exc.message[:2000])
        except LeaseLost:
            return "lost"
        except OSError as exc:  # the staged file is gone or unreadable: no attempt will do better
            log.error("staged file of %s unreadable: %s", uid, exc)
            return await self._end(upload, S.FAILED, UNREADABLE.format(exc.strerror or type(exc).__name__))
        except Exception as exc:  # a bug or a surprise: never re-claimed forever, never silent
            log.exception("delivery of %s failed unexpectedly", uid)
            if upload.attempts + 1 >= MAX_UNEXPECTED:
                return await self._end(upload, S.FAILED, f"The server could not deliver this file ({type(exc).__name__}).")
            return await self._retry_later(upload, f"{WAITING} ({type(exc).__name__})")
        return await self._end(upload, S.DUPLICATE if duplicate else S.DONE, TRASHED if trashed else "",
                               asset_id=asset_id, delete=True, delivery=delivery)

    async def _end(self, upload: Upload, state: str, message: str, *, delete: bool = False,
                   delivery: Delivery | None = None, **values) -> str:
        """Leave the attempt in a final state, only while this worker still holds the lease: a worker
        that lost it (or whose upload was dropped when its link was deleted) changes nothing.

        Recorded and told as one step, even if the attempt is cancelled meanwhile (its link deleted
        by `drop`): the state written in the thread, the guest told. Cut between the two, the guest
        never heard what became of the file (CI: "not sent" written, nothing said; `drop` then
        found the upload ended and had nothing to say either)."""
        return await _to_its_end(asyncio.ensure_future(
            self._record_end(upload, state, message, delete=delete, delivery=delivery, **values)))

    async def _record_end(self, upload: Upload, state: str, message: str, *, delete: bool,
                          delivery: Delivery | None, **values) -> str:
        # the asset Immich holds goes into the duplicate cache with the final state (one transaction)
        remember = (delivery.owner, upload.checksum, values["asset_id"]) \
            if delivery is not None and values.get("asset_id") and upload.checksum else None
        self._marked.discard(upload.id)  # a final state: a mark never sent changes nothing now
        # Immich has it: the staged copy goes (in the same thread hop) before the guest hears it
        final = await self.store.update_upload(
            upload.id, only_from=(S.HASHING, S.UPLOADING), held_by=self.worker, state=state, message=message,
            checksum=upload.checksum, captured_at=upload.captured_at, lease_owner=None, remember=remember,
            then=self.storage.remover(upload.id) if delete else None, **values)
        if final is None:
            log.warning("delivery of %s ended as %s, but it is no longer ours to record", upload.id, state)
            return "lost"
        if delete:
            self.storage.forget(upload.id)
        if final.state == S.DUPLICATE:
            await self.targets.release(final)  # nothing new reached the library: the link takes another file
        self._publish(final)
        return final.state

    async def _send(self, upload: Upload, delivery: Delivery, path, relayed: Relayed | None) -> tuple[str, bool, bool]:
        """Returns (asset id, duplicate?, in the owner's trash?): Immich's answer for the relayed file,
        else its bulk check's, else the upload's. Immich's answer is the truth: the local cache never
        decides (the owner may have deleted the asset since)."""
        if relayed:
            asset_id, duplicate = relayed.asset_id, relayed.duplicate
        else:
            # A small file goes at once: with `x-immich-checksum` Immich answers "duplicate" for it
            # itself, and the bulk check first would be a request per file (a third of those to
            # Immich in bench (f)). A large one is checked first: a request costs less than a duplicate's bytes.
            check = ((await self._checks(delivery.api_key, (upload.id, upload.checksum)) or {})
                     if upload.size >= CHECK_FIRST_FROM else {})
            if check.get("action") == "reject" and not (check.get("reason") == "duplicate" and check.get("assetId")):
                raise ImmichRejected(f"Immich does not accept this file ({check.get('reason', 'rejected')}).", 400)
            if check.get("action") == "reject":
                return check["assetId"], upload.sent_at is None, bool(check.get("isTrashed"))
            # Noted before the first byte goes: if this attempt dies after Immich took the file, the
            # next one hears "duplicate" for it, and must know that the asset is this upload's own.
            # Taken back when the request certainly did not reach Immich (a photo the owner already
            # has, sent while Immich was down, is still "already there" when it comes back).
            # (Noted by the claim already for most, `Store.claim_delivery`.)
            if upload.id in self._marked:
                self._marked.discard(upload.id)
            else:
                marked = await self.store.update_upload(
                    upload.id, only_from=(S.HASHING, S.UPLOADING), held_by=self.worker, state=S.UPLOADING,
                    sent_at=utcnow(), checksum=upload.checksum, captured_at=upload.captured_at)
                if marked is None:
                    raise LeaseLost()
                self._publish(marked)
            modified = iso(from_ms(upload.last_modified_ms) or upload.received_at or utcnow())
            try:
                asset_id, duplicate = await self.immich.upload_asset(
                    delivery.api_key, path, upload.size, filename=upload.filename,
                    created_at=upload.captured_at, modified_at=modified, checksum=upload.checksum,
                    visibility=delivery.visibility, description=description(upload.guest_name, upload.guest_message))
            except ImmichUnavailable as exc:
                if exc.unsent:  # nothing reached Immich: the mark goes back to what earlier attempts left
                    await self.store.update_upload(upload.id, only_from=(S.UPLOADING,), held_by=self.worker,
                                                   sent_at=upload.sent_at)
                raise
        trashed = False
        if duplicate:  # was the one Immich has in the owner's trash? (the log says so)
            check = await self._checks(delivery.api_key, (upload.id, upload.checksum)) or {}
            trashed = bool(check.get("isTrashed"))
        return asset_id, duplicate and upload.sent_at is None, trashed

    async def _bulk_check(self, api_key: str, items: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        by_id = await self.immich.bulk_upload_check(api_key, items)
        return {(uid, checksum): by_id.get(uid, {}) for uid, checksum in items}

    async def add_to_album(self, delivery: Delivery, asset_id: str, upload: Upload) -> None:
        """Put an asset Immich already holds into the target's album (the "already there" shortcut, already.py)."""
        await self._add_to_album(delivery, asset_id, upload)

    async def _add_to_album(self, delivery: Delivery, asset_id: str, upload: Upload) -> None:
        stale = None
        for attempt in range(2):
            album_id = await self._album(delivery, stale)
            try:
                error = await self._album_adds((delivery.api_key, album_id), asset_id)
                if error:
                    raise error
                return
            except AssetMissing:
                # Deleted in Immich between its answer and the album add: the next attempt asks again
                # (and sends the file, which is still staged).
                await self.store.forget_asset(delivery.owner, upload.checksum)
                raise ImmichUnavailable("the copy in Immich was deleted just now; sending the file again") from None
            except AlbumMissing:
                if attempt:
                    raise
                stale = album_id  # deleted in Immich: find or create it again, and add once more

    async def _album(self, delivery: Delivery, stale: str | None = None) -> str:
        """The album id to add to; `stale` is one Immich just said is gone."""
        # an invite's album may be changed by its owner: the album it names is part of the key
        key = (delivery.owner, f"{delivery.invite_id}:{delivery.album_id}" if delivery.invite_id else delivery.album_name)
        async with self._album_locks.setdefault(key, asyncio.Lock()):  # one create, not one per worker
            cached = self._albums.get(key)
            if cached and cached != stale:
                return cached
            if delivery.invite_id:  # an invite holds its album's id; if that album is gone, it is found or made again
                invite = await self.store.get_invite(delivery.invite_id)
                album_id = invite.album_id if invite else None
                if not album_id or album_id == stale:
                    album_id = await self.immich.find_or_create_album(delivery.api_key, delivery.album_name)
                    await self.store.update_invite(delivery.invite_id, album_id=album_id)
            else:
                album_id = await self.immich.find_or_create_album(delivery.api_key, delivery.album_name)
            self._albums[key] = album_id
            return album_id

    async def _retry_later(self, upload: Upload, message: str) -> str:
        """Back off and try again; what this attempt learnt (SHA-1, capture date) stays on the row,
        so the next one does not read the file again."""
        uid = upload.id
        attempts = upload.attempts + 1
        delay = min(self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2 ** min(attempts - 1, 20))
        delay *= random.uniform(0.8, 1.2)
        # marked as being sent by its claim, but stopped before the first byte went: the mark goes back
        unsent = {"sent_at": upload.sent_at} if uid in self._marked else {}
        self._marked.discard(uid)
        changed = await self.store.update_upload(
            uid, only_from=(S.HASHING, S.UPLOADING), held_by=self.worker, state=S.RETRYING, message=message[:2000],
            attempts=attempts, lease_owner=None, next_attempt_at=utcnow() + timedelta(seconds=delay),
            checksum=upload.checksum, captured_at=upload.captured_at, **unsent,
            then=self.storage.keeper(uid))  # it waits on our disk now: made durable (tus/storage.py)
        if changed is None:
            return "lost"
        self._publish(changed)
        log.info("delivery of %s waits %.1fs: %s", uid, delay, message)
        loop = asyncio.get_running_loop()
        self._retry_timers[uid] = loop.call_later(delay, self._retry_due, uid)
        return S.RETRYING

    async def drop(self, uid: str, message: str) -> None:
        """Give up on an upload that is not delivered yet (its invite was deleted): its attempt in this
        process is stopped, the staged file removed, the guest told. An attempt in another process
        finds the upload no longer its own and records nothing (`_end`). A file whose sending had
        begun may still have reached Immich: the message says so."""
        self._let_go(uid)
        unsent = uid in self._marked  # marked as being sent by its claim here, but nothing went yet
        self._marked.discard(uid)  # the upload ends here: nothing to take back
        attempt = self._delivering.get(uid)
        if attempt is not None:
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
        current = await self.store.get_upload(uid)
        if current is not None and not unsent and (current.state == S.UPLOADING or current.sent_at is not None):
            message = MAYBE_SENT
        upload = await self.store.update_upload(uid, only_from=[S.RECEIVING, *S.PENDING_DELIVERY],
                                                state=S.FAILED, message=message, lease_owner=None)
        await self.storage.delete(uid)
        if upload is not None:
            self._publish(upload)

    async def drop_link(self, invite_id: str, message: str) -> None:
        """`drop` every upload of a deleted link not delivered yet: those with nothing going on in
        this process together (one transaction, one thread hop for their files: one by one, 1,000
        took 30 s on a loaded machine, CI), then the ones it is delivering one by one, their
        attempts stopped as `drop` does."""
        ended = await self.store.fail_undelivered_of_invite(invite_id, message, MAYBE_SENT, leave=set(self._delivering))
        for upload in ended:
            self._let_go(upload.id)
        await self.storage.delete(*(upload.id for upload in ended))
        for upload in ended:
            self._publish(upload)
        for uid in await self.store.undelivered_of_invite(invite_id):  # being delivered here, or just begun
            await self.drop(uid, message)

    def _let_go(self, uid: str) -> None:
        """An upload ended by its link's deletion: its retry is not made, and a claim of it on its
        way has its answer discarded (`_claim`): what the claim took, the deletion ended."""
        timer = self._retry_timers.pop(uid, None)
        if timer:
            timer.cancel()
        if uid in self._claiming:
            self._dropped.add(uid)

    async def resume_account(self, user_id: str) -> None:
        """After an admin signs in again: deliver what waited for their key, now."""
        for upload in await self.store.waiting_uploads_of_owner(user_id):
            timer = self._retry_timers.pop(upload.id, None)
            if timer:
                timer.cancel()
            if upload.state == S.RETRYING:
                await self.store.update_upload(upload.id, only_from=[S.RETRYING], next_attempt_at=None)
                self.submit(upload.id)

    def _retry_due(self, uid: str) -> None:
        self._retry_timers.pop(uid, None)
        self.submit(uid)

    def _publish(self, upload: Upload) -> None:
        self.bus.publish(upload.session_id, upload_event(upload))
        if upload.target_kind == "invite" and upload.target_id and upload.state in S.FINAL:
            self._owner_tasks.add(task := asyncio.create_task(self.on_invite_delivered(upload.target_id)))
            task.add_done_callback(self._owner_tasks.discard)

    # --- clean-up --------------------------------------------------------------------------
    async def _janitor(self) -> None:
        period = max(1.0, min(600.0, self.settings.upload_expiry_hours * 3600 / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.sweep()
            except Exception:
                log.exception("clean-up failed")

    async def sweep(self, now: float | None = None) -> int:
        """Remove incomplete uploads idle past the expiry, and staged files nobody owns. Returns the count."""
        now = time.time() if now is None else now
        cutoff = now - self.settings.upload_expiry_hours * 3600
        removed = 0
        for uid in await self.storage.list_uids():
            modified = await self.storage.modified_at(uid)
            if modified is None or self.storage.locks.held(uid):
                continue
            upload = await self.store.get_upload(uid)
            delivered = upload is not None and upload.state in (S.DONE, S.DUPLICATE)  # killed before its delete
            if modified >= cutoff and not delivered:
                continue
            if upload is not None and upload.state in S.PENDING_DELIVERY:
                continue  # waiting for delivery: never dropped for age
            await self.storage.delete(uid)
            if upload is not None and upload.state == S.RECEIVING:
                await self._expire(upload)
            removed += 1
        return removed + await self._sweep_rows_without_files(now)

    async def _expire(self, upload: Upload) -> bool:
        """End an upload still receiving as expired, once: its place goes back and its page hears it.
        False if it was not receiving any more (its last byte won a race, or a replica sweeping the
        same folder ended it at the same moment: cold review)."""
        if await self.store.update_upload(upload.id, only_from=(S.RECEIVING,), state=S.FAILED,
                                          message="Expired before it was complete.") is None:
            return False
        await self.targets.release(upload)
        self.bus.publish(upload.session_id, {"type": "removed", "id": upload.id})
        return True

    async def _sweep_rows_without_files(self, now: float) -> int:
        """End the uploads still receiving whose staged file is gone: a kill -9 between a creation's
        row and tuspyserver's files left such a row, which the walk over staged files above never
        meets, holding its place in its link's limits and its browser's unfinished count for good
        (attack run). ORPHAN_AFTER leaves a creation under way its time to make the files."""
        before = datetime.fromtimestamp(min(now - ORPHAN_AFTER, 253402300799), timezone.utc)  # (at most 9999-12-31)
        removed, after = 0, ""
        while True:  # every such row, a page at a time (the first thousand alone could all be alive: cold review)
            page = await self.store.receiving_created_before(before, after)
            if not page:
                return removed
            after = page[-1].id
            staged = await self.storage.staged([u.id for u in page])
            for upload in page:
                if upload.id not in staged and not self.storage.locks.held(upload.id) and await self._expire(upload):
                    removed += 1



ORPHAN_AFTER = 600.0  # seconds a new upload's row may wait for its staged files (a creation takes milliseconds)


async def _to_its_end(future: asyncio.Future):
    """Await `future`, which a cancel of the caller does not stop: a caller cancelled meanwhile waits
    for it (however often it is cancelled) and is cancelled then, once what it began is whole."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                pass
        raise


async def _nothing(_id: str) -> None:
    return None
