"""`BodyWatch`: a PATCH body that stops arriving ends the request; so does a newer request's ask.

A phone that drops off the network mid-PATCH often leaves a half-open connection (no FIN, no RST):
the server would wait for the rest of the body as long as the socket lives, holding the upload's
lock, and every resume would get 423. `BodyWatch(receive, seconds)` wraps the ASGI `receive` of one
PATCH: when no piece of the body arrives for `seconds` (UPLOAD_STALL_SECONDS), or when `stop()` is
called (a newer request for the same upload asks, see locks.py), it answers `http.disconnect`, so
tuspyserver keeps what it wrote, as it does for a closed connection, and the guard lets go of the
lock. `wrap_send(send)` adds `Connection: close` to the answer of a request ended this way.
"""

from __future__ import annotations

import asyncio

DISCONNECT = {"type": "http.disconnect"}


class BodyWatch:
    def __init__(self, receive, seconds: float):
        self._receive, self.seconds = receive, seconds
        self.ended = ""  # "", "stalled" or "asked"
        self._timeout: asyncio.Timeout | None = None

    async def __call__(self):
        if self.ended:
            return DISCONNECT
        try:
            async with asyncio.timeout(self.seconds) as self._timeout:
                return await self._receive()
        except TimeoutError:
            self.ended = self.ended or "stalled"
            return DISCONNECT
        finally:
            self._timeout = None

    def stop(self) -> None:
        """End the request at its next read, or now if it is waiting for the body."""
        self.ended = self.ended or "asked"
        if self._timeout is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time())

    def wrap_send(self, send):
        async def closing(message):
            if message["type"] == "http.response.start" and self.ended:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return closing
