"""`FileSender`: one HTTP/1.1 request whose body is a staged file, sent by the kernel (`sendfile`).

`ImmichClient.upload_asset` sends a staged photo to Immich as multipart: a few hundred bytes of
fields, the file, a closing boundary. Through httpx every byte of the file is read into Python in
1 MiB pieces on a worker thread, handed to the event loop and written to the socket: a copy into
user space, a thread hop and httpcore's write path for each piece. Here the kernel copies the file
from the page cache to the socket, in one worker thread per request (bench/README.md, sixteenth
round: what it saved against the real Immich).

`FileSender(threads)`; `await send(request, before, path, size, after)` sends `request` (built by the
httpx client: its URL, its headers, its timeouts) with the body `before + file[0:size] + after` and
returns the answer as an `httpx.Response`. Failures come out as httpx's own exceptions
(`ConnectError`, `ConnectTimeout`, `WriteError`, `WriteTimeout`, `ReadError`, `ReadTimeout`,
`RemoteProtocolError`, `LocalProtocolError`), so the client maps them as it maps any other
request's; a staged file that cannot be opened, is shorter than `size` or fails to read raises its
`OSError`, before or instead of the rest of the body. `close()` ends the sends in flight and stops
the threads.

Plain `http://` only, no proxy (the client decides, `ImmichClient`): TLS cannot go through
`sendfile`. A connection is kept for the next request when the answer came whole and Immich did
not ask to close it (a handshake fewer a photo; Immich's CPU showed no difference either way,
bench/README.md), and is not reused once the other end has closed it or sent anything unasked.
A cancelled `send` shuts its socket down, which ends the thread's wait at once.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h11
import httpx

MAX_ANSWER = 1024 * 1024  # Immich answers an upload with a line of JSON; more is not an answer from it
READ = 64 * 1024


class FileSender:
    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="immich-send")
        self._idle = _Idle(most=threads)
        self._live: set[_Exchange] = set()
        self._closed = False

    def close(self) -> None:
        """Ends every send at once (their sockets shut: they fail as a lost connection would), and
        closes the kept connections; a send asked for after this fails before connecting."""
        self._closed = True
        for exchange in list(self._live):
            exchange.abort()
        self._pool.shutdown(wait=False)
        self._idle.close()

    async def send(self, request: httpx.Request, before: bytes, path: Path, size: int,
                   after: bytes) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the Immich client is closed", request=request)
        exchange = _Exchange(request, before, path, size, after, self._idle)
        self._live.add(exchange)
        try:
            status, headers, body = await asyncio.get_running_loop().run_in_executor(self._pool, exchange.run)
        except asyncio.CancelledError:
            exchange.abort()
            raise
        finally:
            self._live.discard(exchange)
        return httpx.Response(status, headers=headers, content=body, request=request)


class _Exchange:
    """The request's life on its worker thread; `abort` may be called from any thread. The lock
    keeps `abort` off a socket the exchange has given back (another exchange may be using it)."""

    def __init__(self, request: httpx.Request, before: bytes, path: Path, size: int, after: bytes, idle: "_Idle"):
        self.request, self.before, self.path, self.size, self.after = request, before, path, size, after
        self.idle, self.address = idle, (request.url.host, request.url.port or 80)
        timeouts = request.extensions.get("timeout", {})
        self.connect_timeout = timeouts.get("connect")
        self.write_timeout, self.read_timeout = timeouts.get("write"), timeouts.get("read")
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.aborted = False

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:  # not connected, or already shut
                    pass

    def _hold(self, sock: socket.socket) -> None:
        with self.lock:
            if self.aborted:  # cancelled (or closed) before the socket was ours to shut
                sock.close()
                raise httpx.ConnectError("cancelled", request=self.request)
            self.sock = sock

    def _let_go(self) -> None:
        with self.lock:
            self.sock = None

    def run(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        try:  # before any connection: a header value HTTP cannot carry reaches nobody
            head = conn.send(h11.Request(method=self.request.method, target=self.request.url.raw_path,
                                         headers=self.request.headers.raw))
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=self.request) from None
        with open(self.path, "rb") as file:  # a missing staged file fails here, before any connection
            if os.fstat(file.fileno()).st_size < self.size:
                raise OSError(errno.EIO, "the staged file is shorter than its upload")
            sock = self.idle.take(self.address) or self._connect()
            self._hold(sock)
            keep = False
            try:
                failed = self._write(sock, head, file)
                try:
                    status, headers, body = self._read(sock, conn)
                except httpx.TransportError:
                    # Immich may answer before the whole body is in (a refusal, a duplicate) and
                    # close: that answer counts; without one, the write's failure is the story.
                    if failed is not None:
                        raise failed from None
                    raise
                keep = (failed is None and not conn.trailing_data[0] and not conn.trailing_data[1]
                        and conn.their_http_version == b"1.1"
                        and not any(k == b"connection" and b"close" in v.lower() for k, v in headers))
                return status, headers, body
            finally:
                self._let_go()
                if keep and not self.aborted:
                    self.idle.give(self.address, sock)
                else:
                    sock.close()

    def _connect(self) -> socket.socket:
        """A new connection. Not interrupted by `abort`: a cancelled send's thread is held for at
        most the connect timeout."""
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting to Immich", request=self.request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=self.request) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            raise httpx.ConnectError(str(exc), request=self.request) from None
        # Blocking from here on, the timeouts kept by the kernel: Python's own timeout makes the
        # socket non-blocking, and each `sendfile` then sends what the socket buffer takes and comes
        # back to Python (and to the GIL, which the event loop holds) to wait for room. Blocking,
        # one call sends the whole file.
        sock.settimeout(None)
        return sock

    def _kernel_timeouts(self, sock: socket.socket) -> None:
        """SO_SNDTIMEO and SO_RCVTIMEO: a blocking call that makes no progress for that long fails
        with EAGAIN (`BlockingIOError`), as Python's timeout would; none (0) when httpx has none."""
        for option, seconds in ((socket.SO_SNDTIMEO, self.write_timeout), (socket.SO_RCVTIMEO, self.read_timeout)):
            seconds = seconds or 0
            sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))

    def _write(self, sock: socket.socket, head: bytes, file) -> httpx.TransportError | None:
        """Sends the request; returns the write's failure (to raise if no answer follows), if any.
        The staged file failing (ending before `size`, a read error) raises its OSError: the body
        must not come out short, and the request is dropped with its socket."""
        try:
            self._kernel_timeouts(sock)
            sock.sendall(head + self.before)
            offset = 0
            while offset < self.size:
                offset += self._send_some(sock, file, offset)
            sock.sendall(self.after)
        except _FileFailed as failed:
            raise failed.error from None
        except (BlockingIOError, TimeoutError):
            return httpx.WriteTimeout("timed out sending to Immich", request=self.request)
        except OSError as exc:
            return httpx.WriteError(str(exc) or type(exc).__name__, request=self.request)
        return None

    def _send_some(self, sock: socket.socket, file, offset: int) -> int:
        """Sends from `offset` on, by `sendfile` (by reads where the file system cannot), and
        returns how many bytes went. sendfile's errors do not say which end failed: a read of
        the file where it stopped tells (_FileFailed for the file, the OSError for the socket)."""
        left = self.size - offset
        try:
            sent = os.sendfile(sock.fileno(), file.fileno(), offset, left)
        except (BlockingIOError, TimeoutError):
            raise
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                self._check_file(file, offset)
                raise
            piece = self._check_file(file, offset, min(left, 1024 * 1024))
            sock.sendall(piece)
            sent = len(piece)
        if not sent:
            raise _FileFailed(OSError(errno.EIO, "the staged file ended before its upload's size"))
        return sent

    @staticmethod
    def _check_file(file, offset: int, n: int = 1) -> bytes:
        try:
            piece = os.pread(file.fileno(), n, offset)
        except OSError as exc:
            raise _FileFailed(exc) from None
        if not piece:
            raise _FileFailed(OSError(errno.EIO, "the staged file ended before its upload's size"))
        return piece

    def _read(self, sock: socket.socket, conn: h11.Connection) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # h11 reads the answer while it believes the body still goes out (an early answer, which
        # HTTP allows): the body went past it, so it never counts those bytes.
        status, headers, body = 0, [], bytearray()
        while True:
            try:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(sock.recv(READ))
                    continue
            except (BlockingIOError, TimeoutError):
                raise httpx.ReadTimeout("Immich did not answer in time", request=self.request) from None
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=self.request) from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=self.request) from None
            if isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_ANSWER:
                    raise httpx.RemoteProtocolError("Immich's answer is too long", request=self.request)
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("Immich closed the connection without an answer",
                                                request=self.request)
            # h11.InformationalResponse (100 Continue and the like): not the answer, read on


class _FileFailed(Exception):
    """The staged file, not the connection, failed; `error` is its OSError."""

    def __init__(self, error: OSError):
        self.error = error


class _Idle:
    """Connections kept between requests, per (host, port), at most `most` each; any thread."""

    def __init__(self, most: int):
        self.most, self.lock, self.kept, self.closed = most, threading.Lock(), {}, False

    def take(self, address) -> socket.socket | None:
        """A kept connection the other end has not closed (nor written to: nothing is due on an
        idle one), or None."""
        while True:
            with self.lock:
                kept = self.kept.get(address)
                sock = kept.pop() if kept else None
            if sock is None:
                return None
            poll = select.poll()  # not select(): a server's descriptors may be past its 1024 limit
            poll.register(sock, select.POLLIN)
            if not poll.poll(0):
                return sock
            sock.close()

    def give(self, address, sock: socket.socket) -> None:
        with self.lock:
            kept = self.kept.setdefault(address, [])
            if len(kept) < self.most and not self.closed:
                kept.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self.lock:
            kept, self.kept, self.closed = self.kept, {}, True
        for socks in kept.values():
            for sock in socks:
                sock.close()
