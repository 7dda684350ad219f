"""Status events for one browser session at a time.

`EventBus.publish(session_id, event)` hands an event to every open status channel of that session
only; `subscribe(session_id)` is an async context manager giving an `asyncio.Queue` of events.

`OpenChannels` caps the channels a session and an address hold open.

`EventBus` is in-process (SQLite, one process). `PostgresBus` puts PostgreSQL's LISTEN/NOTIFY behind
the same calls, so a browser connected to one replica sees what another replica did: every process
NOTIFYs what it publishes (in order, from one sender task) and hands what it hears to its own
subscribers. It reconnects with backoff if the database connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, defaultdict

from .models import Upload


def upload_event(upload: Upload) -> dict:
    """What a guest may see of one of their own uploads (its SHA-1 too: the page knows a file it sent
    before when it is chosen again after a reload). A duplicate's message is for the owner's log
    only (e.g. that the photo is in the owner's Immich trash): the guest hears "already there". `code`
    names the catalog text ("server.<code>") the page shows for a wait or a failure, in the guest's language."""
    message = "" if upload.state == "duplicate" else upload.message
    return {"type": "upload", "id": upload.id, "filename": upload.filename, "size": upload.size,
            "state": upload.state, "message": message, "code": _code(upload), "sha1": upload.checksum}


def _code(upload: Upload) -> str | None:
    if upload.state == "retrying":
        return "link_paused" if upload.message.startswith("This link is paused") else "waiting"
    if upload.state == "failed":
        if upload.message.startswith("Sent to Immich, but not added to the album"):
            return "album_refused"  # it arrived: "did not accept this file" was wrong (re-walk)
        return "link_deleted" if "deleted by its owner" in upload.message else "rejected"
    return None


class OpenChannels:
    """How many status channels each browser session and each address holds open. A channel is
    refused past `per_session` or `per_address`: 3000 sockets from one address grew the server by
    110 MB, and 1000 took every file descriptor (attack run). Refusing is safe, since a page without
    its channel asks over HTTP; the per-address number leaves room for a party behind one NAT, or
    for every guest behind a proxy whose address is not in TRUSTED_PROXIES. `total` caps them all:
    eight addresses at 256 channels each held every one of MAX_CONNECTIONS, and the server answered
    503 to every request, /healthz and uploads included (attack run); the app sets half of it."""

    def __init__(self, per_session: int = 4, per_address: int = 256, total: int | None = None):
        self.per_session, self.per_address, self.total = per_session, per_address, total
        self._open: Counter = Counter()

    @contextlib.contextmanager
    def hold(self, session: str, address: str):
        """Yields True while this channel is counted, False (counting nothing) when over a limit."""
        keys = (("session", session), ("address", address), ("all", ""))
        if self._open[keys[0]] >= self.per_session or self._open[keys[1]] >= self.per_address \
                or (self.total is not None and self._open[keys[2]] >= self.total):
            yield False
            return
        self._open.update(keys)
        try:
            yield True
        finally:
            self._open.subtract(keys)
            for key in keys:
                if self._open[key] <= 0:
                    del self._open[key]


class EventBus:
    def __init__(self, queue_size: int = 1000):
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._queue_size = queue_size

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def publish(self, session_id: str, event: dict) -> None:
        self._deliver(session_id, event)

    def _deliver(self, session_id: str, event: dict) -> None:
        for queue in list(self._subscribers.get(session_id, ())):
            if queue.full():  # a stalled browser loses old events, never the server's memory
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str, queue: asyncio.Queue | None = None):
        """Events for `session_id` in a queue (a given one, to hear several keys on one socket)."""
        queue = queue if queue is not None else asyncio.Queue(self._queue_size)
        self._subscribers[session_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[session_id].discard(queue)
            if not self._subscribers[session_id]:
                del self._subscribers[session_id]


log = logging.getLogger(__name__)
CHANNEL = "immich_drop_events"
NOTIFY_LIMIT = 7900  # PostgreSQL caps a NOTIFY payload at 8000 bytes


class PostgresBus(EventBus):
    def __init__(self, dsn: str, queue_size: int = 1000):
        super().__init__(queue_size)
        self.dsn = dsn.replace("postgresql+psycopg://", "postgresql://")
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen(), name="events-listen"),
                       asyncio.create_task(self._send(), name="events-send")]
        await asyncio.wait_for(self._listening.wait(), timeout=30)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def publish(self, session_id: str, event: dict) -> None:
        payload = json.dumps({"s": session_id, "e": event}, ensure_ascii=False)
        if len(payload.encode()) > NOTIFY_LIMIT:
            event = {**event, "message": event.get("message", "")[:200], "filename": event.get("filename", "")[:200]}
            payload = json.dumps({"s": session_id, "e": event}, ensure_ascii=False)
        self._outbox.put_nowait(payload)

    async def _listen(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.5
                    async for note in conn.notifies():
                        try:
                            data = json.loads(note.payload)
                            self._deliver(data["s"], data["e"])
                        except (ValueError, KeyError):
                            log.warning("ignored a malformed status event")
            except psycopg.Error as exc:
                log.warning("status events: listening failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _send(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    delay = 0.5
                    while True:
                        payload = await self._outbox.get()
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except psycopg.Error as exc:
                log.warning("status events: sending failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
