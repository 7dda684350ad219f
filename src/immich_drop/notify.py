"""What an invite's owner hears about their links: live in the console, and through Apprise.

`Notifier(settings, store, box, bus)`:
- `invite_changed(invite_id)`: a file was reserved, released or refused, or finished (`invite_delivered`).
  The owner's open consoles get `{"type": "invite", ...}` over the status channel (their own channel
  "admin:<user id>", never another admin's); a link that just got used up is told once.
- `invite_delivered(invite_id)`: also (re)starts the link's settle timer. When no file of the link has
  finished for NOTIFY_SETTLE_SECONDS, one digest goes out for everything finished since the last
  one ("Anna and 3 others sent 41 photos and 2 videos to Wedding"). Never a message per file.
- `key_refused(user_id)`: Immich stopped accepting the owner's key; deliveries wait for a new sign-in.
- A watcher tells owners, once, when a link expires (every NOTIFY_CHECK_SECONDS).
- `send(account, title, body)`: through the owner's Apprise URLs (sealed in the database), in a
  thread (Apprise is blocking). Returns whether every service accepted it; never raises.

The digest mark and the "closed" flag are moved by compare-and-set in the store, so replicas sharing
a database never send the same message twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import PurePosixPath

from .config import Settings
from .crypto import Box
from .events import EventBus
from .media import VIDEO_EXTENSIONS
from .models import Account, Invite, InviteState, Upload, UploadState, utcnow
from .store import Store
from .targets import invite_state

log = logging.getLogger(__name__)
MAX_URLS = 10
MAX_URL_LENGTH = 1000


def owner_channel(user_id: str) -> str:
    """The status-channel key of an admin's consoles (guest session ids never contain a colon)."""
    return f"admin:{user_id}"


def invite_event(invite: Invite) -> dict:
    """What an owner's console updates on a card: counters, last upload, state."""
    last = invite.last_upload_at
    return {"type": "invite", "id": invite.id, "state": invite_state(invite), "uses": invite.uses,
            "files": invite.files, "bytes": invite.bytes, "maxUses": invite.max_uses,
            "lastUploadAt": last.isoformat() if last else None}


def link_name(invite: Invite) -> str:
    return invite.title or invite.label or invite.album_name or "your link"


def digest_text(invite: Invite, uploads: list[Upload]) -> str:
    """"Anna and 3 others sent 41 photos and 2 videos to Wedding." (+ what could not be delivered)."""
    sent = [u for u in uploads if u.state in (UploadState.DONE, UploadState.DUPLICATE)]
    failed = len(uploads) - len(sent)
    names: list[str] = []
    for upload in sorted(uploads, key=lambda u: u.created_at):
        name = upload.guest_name.strip()
        if name and name not in names:
            names.append(name)
    who = ("Guests" if not names else names[0] if len(names) == 1 else f"{names[0]} and {names[1]}"
           if len(names) == 2 else f"{names[0]} and {len(names) - 1} others")
    videos = sum(PurePosixPath(u.filename).suffix.lower() in VIDEO_EXTENSIONS for u in sent)
    photos = len(sent) - videos
    what = " and ".join(part for part in (_count(photos, "photo"), _count(videos, "video")) if part) or "no files"
    text = f"{who} sent {what} to {link_name(invite)}."
    if failed:
        text += f" {_count(failed, 'file')} could not be delivered; the link's upload log says why."
    return text


def _count(n: int, noun: str) -> str:
    return "" if n == 0 else f"1 {noun}" if n == 1 else f"{n} {noun}s"


class Notifier:
    def __init__(self, settings: Settings, store: Store, box: Box, bus: EventBus):
        self.settings, self.store, self.box, self.bus = settings, store, box, bus
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._watcher: asyncio.Task | None = None

    # --- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        for invite_id in await self.store.invites_with_undigested_uploads():  # e.g. after a restart
            self._settle(invite_id)
        self._watcher = asyncio.create_task(self._watch_expiry(), name="notify-expiry")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._watcher:
            self._watcher.cancel()
        for task in [*self._tasks, *([self._watcher] if self._watcher else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._watcher] if self._watcher else []), return_exceptions=True)

    # --- events --------------------------------------------------------------------------
    async def invite_changed(self, invite_id: str) -> None:
        invite = await self.store.get_invite(invite_id)
        if invite is None or invite.deleted_at is not None:
            return
        self.bus.publish(owner_channel(invite.owner_id), invite_event(invite))
        if invite_state(invite) == InviteState.USED_UP and not invite.closed_noticed:
            if await self.store.claim_closed_notice(invite.id):
                await self.send_to(invite.owner_id, f"{link_name(invite)} is used up",
                                   f"Your link {link_name(invite)} has been used by {invite.uses} "
                                   f"browser{'s' if invite.uses != 1 else ''}: nobody else can open it now.")
        if invite_id in self._timers:  # still busy: the digest waits until it settles
            self._settle(invite_id)

    async def invite_delivered(self, invite_id: str) -> None:
        self._settle(invite_id)
        await self.invite_changed(invite_id)

    async def key_refused(self, user_id: str) -> None:
        await self.send_to(user_id, "Immich Drop cannot deliver", "Immich no longer accepts the upload key of "
                           "Immich Drop for your account. Files sent to your links are kept and wait; sign in "
                           "to the Immich Drop console again to deliver them.")

    def _settle(self, invite_id: str) -> None:
        old = self._timers.pop(invite_id, None)
        if old:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[invite_id] = loop.call_later(self.settings.notify_settle_seconds, self._spawn, invite_id)

    def _spawn(self, invite_id: str) -> None:
        self._timers.pop(invite_id, None)
        task = asyncio.create_task(self._digest(invite_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _digest(self, invite_id: str) -> None:
        try:
            invite = await self.store.get_invite(invite_id)
            if invite is None or invite.deleted_at is not None:
                return
            until = utcnow()
            finished = await self.store.finished_uploads_between(invite_id, invite.digest_until, until)
            if finished and await self.store.claim_digest(invite_id, invite.digest_until, until):
                await self.send_to(invite.owner_id, f"New files for {link_name(invite)}", digest_text(invite, finished))
        except Exception:  # a digest must never take anything else down
            log.exception("digest for invite %s failed", invite_id)

    async def _watch_expiry(self) -> None:
        while True:
            try:
                for invite in await self.store.expired_unnoticed_invites(utcnow()):
                    if await self.store.claim_closed_notice(invite.id):
                        await self.send_to(invite.owner_id, f"{link_name(invite)} has expired",
                                           f"Your link {link_name(invite)} has expired after {invite.files} "
                                           f"file{'s' if invite.files != 1 else ''}: guests can no longer use it.")
            except Exception:
                log.exception("expiry notices failed")
            await asyncio.sleep(self.settings.notify_check_seconds)

    # --- sending -------------------------------------------------------------------------
    def urls(self, account: Account | None) -> list[str]:
        opened = self.box.open(account.notify_urls_enc) if account else None
        return json.loads(opened) if opened else []

    def seal(self, urls: list[str]) -> str:
        return self.box.seal(json.dumps(urls)) if urls else ""

    async def send_to(self, user_id: str, title: str, body: str) -> bool:
        account = await self.store.get_account(user_id)
        urls = self.urls(account)
        return bool(urls) and await send(urls, title, body)


async def send(urls: list[str], title: str, body: str) -> bool:
    """Send through Apprise in a thread; True when every URL's service accepted the message."""
    def work() -> bool:
        import apprise

        notifier = apprise.Apprise()
        for url in urls:
            notifier.add(url)
        return bool(len(notifier)) and bool(notifier.notify(body=body, title=title))

    try:
        return await asyncio.to_thread(work)
    except Exception:
        log.exception("sending a notification failed")
        return False


def check_url(url: str) -> str | None:
    """The URL with its secrets masked when Apprise knows how to send to it, else None (blocking: a thread)."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return None
    return notifier[0].url(privacy=True)
