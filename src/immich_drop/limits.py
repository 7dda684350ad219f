"""`BodyLimit`: request bodies (outside the tus endpoint) are bounded before the app reads a byte.

Sign-in and link unlocking take at most `SMALL_BODY` bytes, every other JSON endpoint `API_BODY`. A
`Content-Length` above the limit is answered 413 at once, unread; a body without one (chunked) is
counted as it streams and refused the moment it passes the limit. What is accepted is read here, the
whole body within `stall_seconds` (one that does not arrive in time gets 408: a byte every 8 s kept a
4 KiB sign-in open for hours, and 2,047 of them held every connection, attack run), and handed on
whole, so no handler ever waits on a slow client or holds more than the limit. The tus endpoint is left to its guard,
which bounds PATCH bodies by CHUNK_SIZE and stops stalled ones (tus/guard.py).

A 413 leaves the connection open: uvicorn drops the rest of the body unread (closing at once would
make the kernel reset the connection and lose the answer); a stalled body's 408 closes it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter

from .proxy import address_key

# One address past its share of the connections (http_edge) or of the running requests (PerAddress)
TOO_MANY_CONNECTIONS = "Too many connections from your network right now. Try again in a moment."
SMALL_BODY = 4 * 1024  # {"email", "password"} or {"password"}: a few hundred bytes in practice
API_BODY = 64 * 1024  # the largest admin request (an invite's fields) is well under 2 KiB
SMALL_PATHS = re.compile(r"^/api/(login|i/[^/]+/unlock)/?$")


def body_limit_for(path: str, tus_prefix: str) -> int | None:
    """The largest body accepted on `path`; None where another layer bounds it (tus)."""
    if path == tus_prefix or path.startswith(tus_prefix + "/"):
        return None
    return SMALL_BODY if SMALL_PATHS.match(path) else API_BODY


class BodyLimit:
    def __init__(self, app, tus_prefix: str, stall_seconds: float):
        self.app, self.tus_prefix, self.stall_seconds = app, tus_prefix, stall_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope.get("path", ""), self.tus_prefix)
        if limit is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        length, chunked = headers.get(b"content-length"), b"transfer-encoding" in headers
        if length is None and not chunked:
            return await self.app(scope, receive, send)  # no body
        if length is not None and not length.isdigit():
            return await respond(send, 400, "Content-Length must be a whole number.", "bad_request")
        if length is not None and int(length) > limit:
            return await too_large(send, limit)
        pieces, total = [], 0
        deadline = asyncio.get_running_loop().time() + self.stall_seconds
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                return await respond(send, 408, "The request body stopped arriving.", "bad_request")
            if message["type"] == "http.disconnect":
                return
            piece = message.get("body", b"")
            total += len(piece)
            if total > limit:
                return await too_large(send, limit)
            pieces.append(piece)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(pieces), "more_body": False}

        await self.app(scope, replay, send)


async def too_large(send, limit: int) -> None:
    await respond(send, 413, f"The request body is larger than the {limit} bytes allowed here.", "bad_request",
                  {"limit": limit}, close=False)


async def respond(send, status: int, message: str, code: str, params: dict | None = None,
                  headers: dict[str, str] | None = None, close: bool = True) -> None:
    """A JSON refusal {"message", "code", "params"}; with `close`, it also ends the connection."""
    body = json.dumps({"message": message, "code": code, "params": params or {}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"cache-control", b"no-store")] + ([(b"connection", b"close")] if close else [])
    raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class PerAddress:
    """At most `limit` HTTP requests of one client address (an IPv6 one by its /64) at once, counted
    after ForwardedHeaders named it: behind a trusted proxy every connection is the proxy's, and the
    connection count (http_edge) cannot tell its clients apart, so one of them with slow PATCHes
    through a proxy that streams bodies took every connection (cold review). Beyond: 503, its
    connection closed. Status channels have their own bound per address (events.OpenChannels)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit
        self.running: Counter = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("client"):
            return await self.app(scope, receive, send)
        key = address_key(scope["client"][0])
        if self.running[key] >= self.limit:
            return await respond(send, 503, TOO_MANY_CONNECTIONS, "too_many_connections")
        self.running[key] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.running[key] -= 1
            if self.running[key] <= 0:
                del self.running[key]
