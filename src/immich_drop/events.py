"""Status events for one browser session at a time.

`EventBus.publish(session_id, event)` hands an event to every open status channel of that session
only; `subscribe(session_id)` is an async context manager giving an `asyncio.Queue` of events.
In-process; several replicas need a broker behind the same two calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from .models import Upload


def upload_event(upload: Upload) -> dict:
    """What a guest may see of one of their own uploads."""
    return {"type": "upload", "id": upload.id, "filename": upload.filename, "size": upload.size,
            "state": upload.state, "message": upload.message}


class EventBus:
    def __init__(self, queue_size: int = 1000):
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._queue_size = queue_size

    def publish(self, session_id: str, event: dict) -> None:
        for queue in list(self._subscribers.get(session_id, ())):
            if queue.full():  # a stalled browser loses old events, never the server's memory
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str):
        queue: asyncio.Queue = asyncio.Queue(self._queue_size)
        self._subscribers[session_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[session_id].discard(queue)
            if not self._subscribers[session_id]:
                del self._subscribers[session_id]
