"""The HTTP connection itself, below the ASGI app: request heads are bounded in size and in time.

uvicorn's httptools protocol accepts a request head of any size and waits for it forever. A client
that sends 32 MiB of `Upload-Metadata`, or a request line and then nothing (slowloris), would hold
memory or a connection without end. `protocol(max_header_size, header_timeout)` returns the protocol
class `uvicorn.run(http=...)` takes: the request line plus headers may take at most
`max_header_size` bytes (431 otherwise) and must be complete within `header_timeout` seconds of the
first byte of the request, or of the connection (408 otherwise); both answers close the connection.
One address (an IPv6 one by its /64) may hold at most `per_address` connections open at once (a
proxy in `trusted` is not counted here: `limits.PerAddress` counts the requests it forwards by the
address it names). More are answered 503 and closed at once: 2,047 slow
request bodies from one address took every one of MAX_CONNECTIONS, and the server answered 503 to
everyone, its health check included (attack run). A connection made when the server holds
`capacity` (MAX_CONNECTIONS) closes the oldest one still waiting for its request head (408): four
addresses at 512 request lines each took every connection, and the server answered 503 to everyone
(probe); a browser sends its head at once, so only a slow sender is closed.
Large bodies come in fewer pieces: uvicorn stops reading a request body once 64 KiB of it wait for
the app, and uvloop reads up to 256 KiB at a time, so nearly every read of a photo stopped the
socket's reading and started it again, and reached the app on its own (18 pieces for 4 MiB, each a
trip through the guard, tuspyserver and the storage). A request announcing at least `BIG_WINDOW`
bytes may let that much wait instead, for at most `BIG_WINDOWS` requests of a server at once (4 MiB
in all; the others keep 64 KiB): 6 % of the server's CPU in the benchmark's photos. A 1 MiB window
did no better there and cost a 1 GiB video 5 % more (larger copies; bench/README.md).
`uvicorn_options(settings)` gives the options the server (and the tests' servers) run with, with
WebSocket messages bounded too.
"""

from __future__ import annotations

import json
from collections import Counter

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .limits import TOO_MANY_CONNECTIONS
from .proxy import address_key, trusted


BIG_WINDOW = 256 * 1024
BIG_WINDOWS = 16


class BoundedHead(HttpToolsProtocol):
    max_header_size = 32 * 1024
    header_timeout = 10.0
    per_address: int | None = None
    capacity: int | None = None
    trusted: tuple = ()
    open_by_address: Counter  # the server's own (protocol() makes a class per server)
    heads: dict  # connections waiting for a request head, oldest first (a dict as an ordered set)
    windows: list  # [requests holding a BIG_WINDOW now], the server's own too
    _window = HIGH_WATER_LIMIT

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_bytes, self._head_too_large = 0, False
        self._start_head_timer()
        if self.capacity is not None and len(self.server_state.connections) >= self.capacity:
            oldest = next((waiting for waiting in self.heads if waiting is not self), None)
            if oldest is not None:
                oldest._head_too_slow()
        self._address = self._counted_address(transport)
        if self._address is not None:
            self.open_by_address[self._address] += 1
            if self.open_by_address[self._address] > self.per_address:
                self._refuse(503, TOO_MANY_CONNECTIONS, code="too_many_connections")

    def connection_lost(self, exc) -> None:
        self._stop_head_timer()
        self._uncount()
        self._give_window_back()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # the connection is the WebSocket protocol's from here (this one hears no connection_lost);
        # status channels have bounds of their own, per address too (events.OpenChannels)
        self._uncount()
        super().handle_websocket_upgrade()

    def _uncount(self) -> None:
        address, self._address = getattr(self, "_address", None), None
        if address is not None:
            self.open_by_address[address] -= 1
            if self.open_by_address[address] <= 0:
                del self.open_by_address[address]

    def _counted_address(self, transport) -> str | None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if self.per_address is None or not host or trusted(host, self.trusted):
            return None
        return address_key(host)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete) and not self.pipeline:
            # The first bytes of a new request on a kept-alive connection: its head gets the same bound.
            self._head_bytes = 0
            self._start_head_timer()
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in a parser callback (ours: `_count`) as a parse error
        if self._head_too_large:
            return self._refuse(431, "Request headers are too large.", limit=self.max_header_size)
        self._refuse(400, "This request is not valid HTTP.")  # uvicorn's own answer is text/plain

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()
        self._give_window_back()  # (a pipelined request's, should it not have been given back)
        length = next((value for name, value in self.headers if name == b"content-length"), b"")
        if length.isdigit() and len(length) < 20 and int(length) >= BIG_WINDOW and self.windows[0] < BIG_WINDOWS:
            self.windows[0] += 1
            self._window = BIG_WINDOW

    def on_body(self, body: bytes) -> None:
        # uvicorn's own, with this request's window for HIGH_WATER_LIMIT
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > self._window:
            self.flow.pause_reading()
        self.cycle.message_event.set()

    def on_response_complete(self) -> None:
        # Not at the body's last byte: a body read whole before the app takes it still waits in
        # the window, and giving the window back then let 40 such requests hold 37 MB (review).
        self._give_window_back()
        super().on_response_complete()

    def _give_window_back(self) -> None:
        if self._window != HIGH_WATER_LIMIT:
            self._window = HIGH_WATER_LIMIT
            self.windows[0] -= 1

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_header_size:
            self._head_too_large = True
            raise ValueError("request head too large")

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)
        self.heads[self] = None

    def _stop_head_timer(self) -> None:
        timer, self._head_timer = getattr(self, "_head_timer", None), None
        self.heads.pop(self, None)
        if timer is not None:
            timer.cancel()

    def _head_too_slow(self) -> None:
        self._stop_head_timer()
        if not self.transport.is_closing():
            self._refuse(408, "The request headers did not arrive in time.")

    def _refuse(self, status: int, message: str, code: str = "bad_request", **params) -> None:
        """The app's error body (routes/errors.py), written here: the app never sees this request."""
        self._stop_head_timer()
        body = json.dumps({"message": message, "code": code, **({"params": params} if params else {})}).encode()
        phrase = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large",
                  503: b"Service Unavailable"}[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body))
        self.transport.close()


def protocol(max_header_size: int, header_timeout: float, per_address: int | None = None,
             trusted: tuple = (), capacity: int | None = None) -> type[BoundedHead]:
    return type("BoundedHead", (BoundedHead,), {"max_header_size": max_header_size, "header_timeout": header_timeout,
                                                "per_address": per_address, "trusted": trusted, "capacity": capacity,
                                                "open_by_address": Counter(), "windows": [0], "heads": {}})


# What a browser may send on a WebSocket: the page sends only "ping". uvicorn's default, 16 MiB a
# message, let anyone with a session cookie make the server hold 16 MiB per socket (an attack run
# grew it by 700 MB with 50 sockets); a larger message closes the socket (1009).
WS_MAX_MESSAGE = 4096


def uvicorn_options(settings) -> dict:
    """Beyond MAX_CONNECTIONS open connections (or requests running) a request is answered 503 and its
    connection closed: each open connection holds up to ~90 KB, and 10,000 slow request bodies from
    outside (no link or sign-in needed) grew the server to 904 MB (attack run)."""
    return {"http": protocol(settings.max_header_size, settings.header_timeout_seconds,
                             settings.max_connections_per_address, settings.trusted_proxies,
                             settings.max_connections),
            "ws_max_size": WS_MAX_MESSAGE, "limit_concurrency": settings.max_connections}
