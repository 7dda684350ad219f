"""The delivery worker: received files go to Immich, once, dated, into their album.

`Pipeline.received(uid)` is the tus "post" hook: it marks the upload received and queues it; the
request that sent the last byte returns at once. Workers (MAX_CONCURRENT of them) take queued
uploads and run `deliver`:

    received → hashing → uploading → done | duplicate | failed, or → retrying (and again later)

- Large videos: `relay` sends them on while they arrive; the worker then only collects Immich's answer.
- SHA-1: computed while receiving when possible (`StagingStorage.take_digest`), else read from disk.
- Duplicates: the local cache (owner, SHA-1) → asset id, then Immich's bulk check. A duplicate is
  still added to the target album.
- Immich unreachable, 5xx, or refusing the key: `retrying` with backoff, the file kept. Other 4xx:
  `failed` with Immich's message, the file kept until the janitor's expiry.
- The staged file is deleted only after Immich confirmed the asset (and the album, if any).

`start()` picks up every upload complete on disk but not delivered (also those the server was
killed while receiving or delivering); `sweep()` removes incomplete uploads idle past
UPLOAD_EXPIRY_HOURS, with their info and lock files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from .batch import Coalescer
from .config import Settings
from .events import EventBus, upload_event
from .immich import (
    AlbumMissing,
    AssetMissing,
    ImmichClient,
    ImmichRejected,
    ImmichUnavailable,
)
from .media import capture_date, from_ms, iso, sha1_file
from .metrics import Metrics
from .models import Upload, UploadState, utcnow
from .relay import Relay, Relayed
from .store import Store
from .targets import PAUSED, Delivery, KeyUnavailable, TargetGone, Targets
from .tus.storage import StagingStorage

log = logging.getLogger(__name__)
S = UploadState
WAITING = "Waiting for the server; the file is safe and will be sent when it is back."


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
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._albums: dict[tuple[str, str], str] = {}
        self._album_locks: dict[tuple[str, str], asyncio.Lock] = {}
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
        for timer in self._retry_timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        upload = await self.store.update_upload(uid, only_from=[S.RECEIVING], state=S.RECEIVED,
                                                received_at=utcnow(), message="")
        if upload is not None:
            self._publish(upload)
            self.submit(uid)

    async def _worker(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            try:
                await self.deliver(uid)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the upload stays pending for a restart
                log.exception("delivery of %s failed unexpectedly", uid)

    # --- one delivery ------------------------------------------------------------------
    async def deliver(self, uid: str) -> None:
        upload = await self.store.claim_delivery(uid, self.worker, utcnow(), self.lease_seconds)
        if upload is None:
            return  # delivered, failed, not due yet, or another process holds it
        started = time.monotonic()
        async with self._lease(uid):
            outcome = await self._deliver(upload)
        self.metrics.deliveries.labels(outcome=outcome).inc()
        if outcome in (S.DONE, S.DUPLICATE, S.FAILED):
            self.metrics.delivery_seconds.observe(time.monotonic() - started)

    @contextlib.asynccontextmanager
    async def _lease(self, uid: str):
        async def renew():
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                await self.store.renew_lease(uid, self.worker, utcnow() + timedelta(seconds=self.lease_seconds))

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()

    async def _deliver(self, upload: Upload) -> str:
        """One attempt; returns the state it left the upload in."""
        uid = upload.id
        self._publish(upload)
        path = self.storage.data_path(uid)
        delivery = None
        try:
            delivery = await self.targets.delivery(upload)
            relayed = await self.relay.result(uid)
            checksum = upload.checksum or (relayed and relayed.checksum) \
                or self.storage.take_digest(uid, upload.size) or await self.in_background(sha1_file, path)
            # kept on the row with the next state change: one write fewer per file (bench/)
            upload.checksum, upload.captured_at = checksum, upload.captured_at or iso(await self._capture_date(upload))
            asset_id, duplicate = await self._send(upload, delivery, path, relayed)
            if delivery.album_name or delivery.album_id:
                await self._add_to_album(delivery, asset_id, upload)
        except TargetGone:
            await self.storage.delete(uid)
            self._publish(await self._set(uid, S.FAILED, message="The link was deleted by its owner; this file was not sent."))
            return S.FAILED
        except KeyUnavailable:
            return await self._retry_later(uid, PAUSED)
        except ImmichUnavailable as exc:
            self.metrics.immich_errors.labels(kind="unavailable").inc()
            return await self._retry_later(uid, f"{WAITING} ({exc.message})")
        except ImmichRejected as exc:
            self.metrics.immich_errors.labels(kind="auth" if exc.auth_problem else "rejected").inc()
            if exc.auth_problem and delivery is not None and delivery.account_id:
                if await self.store.set_key_valid(delivery.account_id, False):  # the admin sees "sign in again"
                    await self.on_key_refused(delivery.account_id)
                return await self._retry_later(uid, PAUSED)
            if exc.auth_problem:  # the server's key was refused: wait for it to be fixed, lose nothing
                return await self._retry_later(uid, f"{WAITING} (Immich refused the server's key: {exc.message})")
            log.warning("Immich refused %s: %s", uid, exc.message)
            self._publish(await self._set(uid, S.FAILED, message=exc.message[:2000]))
            return S.FAILED
        final = await self._set(uid, S.DUPLICATE if duplicate else S.DONE, asset_id=asset_id, message="",
                                checksum=upload.checksum, captured_at=upload.captured_at)
        await self.storage.delete(uid)  # Immich has it: the staged copy goes before the guest hears "done"
        self._publish(final)
        return final.state

    async def _send(self, upload: Upload, delivery: Delivery, path, relayed: Relayed | None) -> tuple[str, bool]:
        """Returns (asset id, duplicate?): from the relay if it sent the file while it arrived, else
        after the local cache, the bulk check, then the upload."""
        if relayed:
            await self.store.remember_asset(delivery.owner, upload.checksum, relayed.asset_id)
            return relayed.asset_id, relayed.duplicate
        cached = await self.store.known_asset(delivery.owner, upload.checksum)
        if cached:
            return cached, True
        check = await self._checks(delivery.api_key, (upload.id, upload.checksum)) or {}
        if check.get("action") == "reject":
            if check.get("reason") == "duplicate" and check.get("assetId"):
                await self.store.remember_asset(delivery.owner, upload.checksum, check["assetId"])
                return check["assetId"], True
            raise ImmichRejected(f"Immich does not accept this file ({check.get('reason', 'rejected')}).", 400)
        self._publish(await self._set(upload.id, S.UPLOADING, checksum=upload.checksum, captured_at=upload.captured_at))
        modified = iso(from_ms(upload.last_modified_ms) or upload.received_at or utcnow())
        asset_id, duplicate = await self.immich.upload_asset(
            delivery.api_key, path, upload.size, filename=upload.filename,
            created_at=upload.captured_at, modified_at=modified, checksum=upload.checksum,
            visibility=delivery.visibility)
        await self.store.remember_asset(delivery.owner, upload.checksum, asset_id)
        return asset_id, duplicate

    async def _bulk_check(self, api_key: str, items: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        by_id = await self.immich.bulk_upload_check(api_key, items)
        return {(uid, checksum): by_id.get(uid, {}) for uid, checksum in items}

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
                # The duplicate cache pointed at an asset deleted in Immich: forget it and send the file.
                await self.store.forget_asset(delivery.owner, upload.checksum)
                raise ImmichUnavailable("the known copy is gone from Immich; sending the file again") from None
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
            if delivery.invite_id:  # an invite holds its album's id; if that album is gone, make a new one
                invite = await self.store.get_invite(delivery.invite_id)
                album_id = invite.album_id if invite else None
                if not album_id or album_id == stale:
                    album_id = await self.immich.create_album(delivery.api_key, delivery.album_name)
                    await self.store.update_invite(delivery.invite_id, album_id=album_id)
            else:
                album_id = await self.immich.find_album(delivery.api_key, delivery.album_name) \
                    or await self.immich.create_album(delivery.api_key, delivery.album_name)
            self._albums[key] = album_id
            return album_id

    async def _capture_date(self, upload: Upload) -> datetime:
        tz = timezone(timedelta(minutes=upload.tz_offset_minutes)) if upload.tz_offset_minutes is not None else None
        found = await self.in_background(capture_date, self.storage.data_path(upload.id), upload.filename, tz)
        if found:
            return found
        return from_ms(upload.last_modified_ms) or upload.received_at or utcnow()

    async def _retry_later(self, uid: str, message: str) -> str:
        current = await self.store.get_upload(uid)
        attempts = (current.attempts if current else 0) + 1
        delay = min(self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2 ** min(attempts - 1, 20))
        delay *= random.uniform(0.8, 1.2)
        upload = await self._set(uid, S.RETRYING, message=message[:2000], attempts=attempts, lease_owner=None,
                                 next_attempt_at=utcnow() + timedelta(seconds=delay))
        self._publish(upload)
        log.info("delivery of %s waits %.1fs: %s", uid, delay, message)
        loop = asyncio.get_running_loop()
        self._retry_timers[uid] = loop.call_later(delay, self._retry_due, uid)
        return S.RETRYING

    async def drop(self, uid: str, message: str) -> None:
        """Give up on an upload that is not delivered yet (its invite was deleted): files gone, guest told."""
        timer = self._retry_timers.pop(uid, None)
        if timer:
            timer.cancel()
        upload = await self.store.update_upload(uid, only_from=[S.RECEIVING, *S.PENDING_DELIVERY],
                                                state=S.FAILED, message=message)
        await self.storage.delete(uid)
        if upload is not None:
            self._publish(upload)

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

    async def _set(self, uid: str, state: str, **values) -> Upload:
        upload = await self.store.update_upload(uid, state=state, **values)
        assert upload is not None, "an upload being delivered cannot vanish"
        return upload

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
                await self.store.update_upload(uid, state=S.FAILED, message="Expired before it was complete.")
                await self.targets.release(upload)
                self.bus.publish(upload.session_id, {"type": "removed", "id": uid})
            removed += 1
        return removed



async def _nothing(_id: str) -> None:
    return None
