"""What an invite's owner hears about their links: live in the console, and through Apprise.

`Notifier(settings, store, box, bus)`:
- `invite_changed(invite_id, invite=None)`: a file was reserved, released or refused, or finished
  (`invite_delivered`); `invite` is the row as it now is, when the caller has it (no second read).
  The owner's open consoles get `{"type": "invite", ...}` over the status channel (their own channel
  "admin:<user id>", never another admin's); a link that just got used up, or full once a file
  finishes, is told once. The file whose claim used the link up, or whose place filled it, also
  tells the link's open pages (`{"type": "link"}` on its channel), which ask for it again.
- `invite_delivered(invite_id)`: also (re)starts the link's settle timer. When no file of the link has
  finished for NOTIFY_SETTLE_SECONDS, one digest goes out for everything finished since the last
  one ("Anna and 3 others sent 41 photos and 2 videos to Wedding"). Never a message per file.
- `key_refused(user_id)`: Immich stopped accepting the owner's key; deliveries wait for a new sign-in.
- A watcher tells owners, once, when a link expires (every NOTIFY_CHECK_SECONDS).
- `send_to(user_id, compose)`: `compose(lang)` gives (title, body) in the owner's language (Account.lang,
  English when none: every word comes from the catalogs' "notify.*" keys), sent through the owner's
  Apprise URLs (sealed in the database) by `refused_by(urls, title, body)`, in a thread (Apprise is
  blocking). Returns whether every service accepted it, and keeps the addresses that did not for
  the owner's console; never raises.

The digest mark and the "closed" flag are moved by compare-and-set in the store, so replicas sharing
a database never send the same message twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from urllib.parse import unquote

from . import i18n
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


def link_channel(invite_id: str) -> str:
    """The status-channel key of the guest pages open on one link: told when its owner changes or
    deletes it, so a page says so at once rather than at its next upload."""
    return f"link:{invite_id}"


LINK_CHANGED = {"type": "link"}  # nothing of the change itself: the page asks for the link again


def invite_event(invite: Invite) -> dict:
    """What an owner's console updates on a card: counters, last upload, state."""
    last = invite.last_upload_at
    return {"type": "invite", "id": invite.id, "state": invite_state(invite), "uses": invite.uses,
            "files": invite.files, "bytes": invite.bytes, "maxUses": invite.max_uses,
            "lastUploadAt": last.isoformat() if last else None}


def _was_full(invite: Invite, freed: int) -> bool:
    """Whether `invite`, as it is now, was full before a file of `freed` bytes gave its place back:
    its open pages, told it was full, hid their pickers (cold review)."""
    return (invite.max_files is not None and invite.files + 1 >= invite.max_files) or \
        (invite.max_total_bytes is not None and invite.bytes + freed >= invite.max_total_bytes)


Message = Callable[[str], tuple[str, str]]  # language → (title, body)


def link_name(lang: str, invite: Invite) -> str:
    return invite.title or invite.label or invite.album_name or i18n.text(lang, "notify.link")


def digest_message(invite: Invite, uploads: list[Upload]) -> Message:
    """"Anna and 3 others sent 41 photos and 2 videos to Wedding." (+ what could not be delivered)."""
    return lambda lang: (i18n.text(lang, "notify.digest.title", link=link_name(lang, invite)),
                         digest_text(lang, invite, uploads))


def digest_text(lang: str, invite: Invite, uploads: list[Upload]) -> str:
    sent = [u for u in uploads if u.state in (UploadState.DONE, UploadState.DUPLICATE)]
    failed = len(uploads) - len(sent)
    names: list[str] = []
    for upload in sorted(uploads, key=lambda u: u.created_at):
        name = upload.guest_name.strip()
        if name and name not in names:
            names.append(name)
    who = (i18n.text(lang, "notify.digest.guests") if not names else names[0] if len(names) == 1
           else i18n.text(lang, "notify.and", first=names[0], second=names[1]) if len(names) == 2
           else i18n.text(lang, "notify.digest.others", first=names[0], count=len(names) - 1))
    videos = sum(PurePosixPath(u.filename).suffix.lower() in VIDEO_EXTENSIONS for u in sent)
    parts = [i18n.plural(lang, f"notify.digest.{noun}", n)
             for noun, n in (("photos", len(sent) - videos), ("videos", videos)) if n]
    what = (i18n.text(lang, "notify.and", first=parts[0], second=parts[1]) if len(parts) == 2
            else parts[0] if parts else i18n.text(lang, "notify.digest.no_files"))
    # the verb agrees with the senders ("Anna hat", "Anna und Ben haben"); unnamed guests are many
    text = i18n.plural(lang, "notify.digest.body", len(names) if names else 2, who=who, what=what,
                       link=link_name(lang, invite))
    if failed:
        text += " " + i18n.plural(lang, "notify.digest.failed", failed)
    return text


def used_up_message(invite: Invite) -> Message:
    return lambda lang: (i18n.text(lang, "notify.used_up.title", link=link_name(lang, invite)),
                         i18n.plural(lang, "notify.used_up.body", invite.uses, link=link_name(lang, invite)))


def full_message(invite: Invite) -> Message:
    return lambda lang: (i18n.text(lang, "notify.full.title", link=link_name(lang, invite)),
                         i18n.text(lang, "notify.full.body", link=link_name(lang, invite)))


def expired_message(invite: Invite) -> Message:
    return lambda lang: (i18n.text(lang, "notify.expired.title", link=link_name(lang, invite)),
                         i18n.plural(lang, "notify.expired.body", invite.files, link=link_name(lang, invite)))


def key_refused_message(lang: str) -> tuple[str, str]:
    return i18n.text(lang, "notify.key_refused.title"), i18n.text(lang, "notify.key_refused.body")


def sample_message(lang: str) -> tuple[str, str]:
    """What the console's "Send a test" button sends."""
    return i18n.text(lang, "notify.test.title"), i18n.text(lang, "notify.test.body")


def account_lang(account: Account | None) -> str:
    return account.lang if account and account.lang in i18n.CATALOGS else i18n.DEFAULT


class Notifier:
    def __init__(self, settings: Settings, store: Store, box: Box, bus: EventBus):
        self.settings, self.store, self.box, self.bus = settings, store, box, bus
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._watcher: asyncio.Task | None = None
        self.testing: set[str] = set()  # owners whose test message is on its way: one at a time each

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
    async def invite_changed(self, invite_id: str, invite: Invite | None = None, delivered: bool = False,
                             claimed: bool = False, taken: bool = False, freed: int | None = None) -> None:
        """`invite`, if given, is the row as it is now (read or returned by the caller's own write);
        `taken`: a file just took a place in the link's limits; `claimed`: and its browser's use;
        `freed`: a file of that many bytes gave its place back."""
        invite = invite or await self.store.get_invite(invite_id)
        if invite is None or invite.deleted_at is not None:
            return
        self.bus.publish(owner_channel(invite.owner_id), invite_event(invite))
        # "used up" is for good (a claim is never taken back), "full" is told only as a file finishes:
        # a reservation is also made for a creation refused a moment later (no room, 429) and given back
        state = invite_state(invite)
        if (claimed and state == InviteState.USED_UP) or (taken and state == InviteState.FULL) \
                or (freed is not None and state == InviteState.ACTIVE and _was_full(invite, freed)):
            # the link's other open pages say it is used, or full, now, not when their guest chooses
            # a file and it is held or refused ("3 more files" stood on a full link: re-walk); the
            # browser that used it asks again and stays open. Only the file that used it up or
            # filled it sends this, not every file.
            self.bus.publish(link_channel(invite.id), LINK_CHANGED)
        notice = {InviteState.USED_UP: used_up_message, InviteState.FULL: full_message if delivered else None}.get(state)
        if notice is not None and not invite.closed_noticed:
            # after the answer, not in it: this runs inside a guest's creation (a one-time link's
            # first file), which waited on the owner's notification services (cold review)
            task = asyncio.create_task(self._closed_notice(invite, notice))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if invite_id in self._timers:  # still busy: the digest waits until it settles
            self._settle(invite_id)

    async def invite_delivered(self, invite_id: str) -> None:
        self._settle(invite_id)
        await self.invite_changed(invite_id, delivered=True)

    async def key_refused(self, user_id: str) -> None:
        await self.send_to(user_id, key_refused_message)

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
                await self.send_to(invite.owner_id, digest_message(invite, finished))
        except Exception:  # a digest must never take anything else down
            log.exception("digest for invite %s failed", invite_id)

    async def _watch_expiry(self) -> None:
        while True:
            try:
                for invite in await self.store.expired_unnoticed_invites(utcnow()):
                    if await self.store.claim_closed_notice(invite.id):
                        await self.send_to(invite.owner_id, expired_message(invite))
            except Exception:
                log.exception("expiry notices failed")
            await asyncio.sleep(self.settings.notify_check_seconds)

    # --- sending -------------------------------------------------------------------------
    def urls(self, account: Account | None) -> list[str]:
        opened = self.box.open(account.notify_urls_enc) if account else None
        return json.loads(opened) if opened else []

    def seal(self, urls: list[str]) -> str:
        return self.box.seal(json.dumps(urls)) if urls else ""

    async def _closed_notice(self, invite: Invite, notice: Callable[[Invite], Message]) -> None:
        try:
            if await self.store.claim_closed_notice(invite.id):
                await self.send_to(invite.owner_id, notice(invite))
        except Exception:  # the database or a service away: the owner's console still shows the state
            log.exception("the notice that %s closed could not be sent", invite.id)

    async def send_to(self, user_id: str, compose: Message) -> bool:
        """Send to the owner's addresses; what did not take it is kept for their console, which said
        nothing when every digest failed (owner walk)."""
        account = await self.store.get_account(user_id)
        urls = self.urls(account)
        if not urls:
            return False
        refused = await refused_by(urls, *compose(account_lang(account)))
        if refused or account.notify_failed:
            shown = await asyncio.to_thread(lambda: [(check_url(urls[i]) or "…")[:300] for i in refused])
            await self.store.set_notify_failed(user_id, json.dumps(shown) if shown else "",
                                               utcnow() if shown else None)
        return not refused


async def refused_by(urls: list[str], title: str, body: str) -> list[int]:
    """Send to each URL in a thread, one after another; the indexes of those whose service did not
    take the message (or that Apprise could not use), so a test can say which address failed."""
    def work() -> list[int]:
        import apprise

        failed = []
        for i, url in enumerate(urls):
            notifier = apprise.Apprise()
            try:
                if not notifier.add(url):
                    failed.append(i)
                    continue
                for service in notifier:  # an address's own timeouts (`rto=3600`) held a sender for an hour
                    service.socket_connect_timeout = min(service.socket_connect_timeout or MAX_WAIT, MAX_WAIT)
                    service.socket_read_timeout = min(service.socket_read_timeout or MAX_WAIT, MAX_WAIT)
                # text, to every service: Apprise escapes it for those that take HTML or Markdown (a
                # guest's name in markup was a working link in the owner's digest email: attack run)
                if not notifier.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT):
                    failed.append(i)
            except Exception:
                log.exception("sending a notification failed")
                failed.append(i)
        return failed

    return await asyncio.get_running_loop().run_in_executor(_senders(), work)


# Apprise waits on the services' answers, for as long as an address asks (`rto=90`). Sixteen tests
# to an address that never answers held the threads behind asyncio.to_thread, which the store and
# the staging writes use, and a guest's page took 57 s (attack run): Apprise has threads of its own.
SENDER_THREADS = 4
MAX_WAIT = 10.0  # seconds a service may take to connect, and to answer (Apprise's own default: 4)
_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def _senders() -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="apprise"))
        return _pool[0]


def url_problem(url: str) -> tuple[str, dict] | None:
    """Why Apprise cannot send to `url` (a catalog code and its parameters), or None (blocking: a
    thread). Apprise takes an ntfy URL whose topics it then drops ("hochzeit-müller", an emoji: only
    letters, digits, - and _), and sends nowhere: such a URL is refused, not stored to stay silent
    (owner walk)."""
    import apprise
    from apprise.plugins.ntfy import NotifyNtfy

    # Apprise splits at a space, written or encoded (%20): "ntfy://ntfy.sh/hochzeit mueller" went to
    # the public topic "hochzeit", and two URLs on one line made two services
    if any(ch.isspace() for ch in url + unquote(url)):
        return "notify_url_space", {}
    notifier = apprise.Apprise()
    said = _ThisThreadsWarnings()
    logging.getLogger("apprise").addHandler(said)
    try:
        added = notifier.add(url)
    finally:
        logging.getLogger("apprise").removeHandler(said)
    if not added or len(notifier) != 1:
        return _why_not(url, said.lines)
    plugin = notifier[0]
    if isinstance(plugin, NotifyNtfy):  # other plugins' "topics" are one kind of target among others
        asked = set((plugin.parse_url(url) or {}).get("targets") or [])
        if not plugin.topics or len(set(plugin.topics)) < len(asked):
            return "notify_topic_invalid", {}
    return None


class _ThisThreadsWarnings(logging.Handler):
    """Apprise's warnings from this thread only: its logger is shared, and apprise.LogCapture would
    also take what another owner's digest logs meanwhile from a sender thread (its ntfy topic, say)
    into this owner's refusal (cold review)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread, self.lines = threading.get_ident(), []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and record.levelno == logging.WARNING:
            self.lines.append(record.getMessage())


def _why_not(url: str, warned: list[str]) -> tuple[str, dict]:
    """The refusal for an address Apprise did not take. Every refusal said "for a web address taking
    JSON, write json://", a mailto:// without a sender too (owner walk): that hint is for http(s)://
    and for schemes Apprise does not know; a service it knows that refused the rest of the address
    says what Apprise said of it (its one-line warning, in Apprise's English)."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("http", "https") or "://" not in url or not warned:
        return "notify_url_invalid", {}
    return "notify_url_refused", {"reason": warned[0].strip()[:200]}


def check_url(url: str) -> str | None:
    """The URL with its secrets masked when Apprise knows how to send to it, else None (blocking: a
    thread). Without the options Apprise writes out for every URL ("?priority=default&mode=cloud&..."
    made "ntfy://" a line the owner could not recognise)."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return None
    return notifier[0].url(privacy=True).split("?", 1)[0]
