"""The upload by `sendfile` (filesend.py) over real loopback sockets: what reaches the other end, and
how each way a request can fail comes out of `ImmichClient`.

The whole suite's deliveries to the fake Immich go this way too (the fake is served over loopback);
here are the failures the fake does not show: an answer before the body is in, an answer that never
comes, a cancelled delivery, a staged file shorter than its upload, a proxy in the environment."""

import asyncio
import errno
import gzip
import hashlib
import json
import os
import socket
import threading

import pytest

from conftest import make_file, sha1_of
from immich_drop.immich import ImmichClient, ImmichRejected, ImmichUnavailable, _plain_and_direct

ANSWER = json.dumps({"id": "asset-1", "status": "created"}).encode()


class RawServer:
    """A loopback TCP server: each connection goes to `handle(server, conn)` in a thread of its own.
    `connections` counts those accepted; `closed` is for a handler to say it closed one; `done` is
    set when the test ends."""

    def __init__(self, handle):
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"
        self.connections = 0
        self.accepted, self.closed, self.done = threading.Event(), threading.Event(), threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.accepted.set()
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.handle(self, conn)
            except OSError:
                pass

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request's head (up to the blank line) and whatever came after it in the same reads."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            raise OSError("closed before the head")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request's head and its whole body (by its Content-Length)."""
    head, body = read_head(conn)
    while len(body) < content_length(head):
        body += conn.recv(1 << 20)
    return head, body


def file_part(head: bytes, body: bytes) -> bytes:
    """The bytes of the multipart body's last part (the file)."""
    boundary = head.split(b"boundary=")[1].split(b"\r\n")[0]
    return body.split(b"--" + boundary)[-2].partition(b"\r\n\r\n")[2][:-2]


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError("no Content-Length")


def answer(conn: socket.socket, status: int = 201, body: bytes = ANSWER, extra: bytes = b"") -> None:
    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                 % (status, len(body), extra) + body)


def dead_url() -> str:
    """A loopback address nobody listens on: a request that connects fails as unreachable."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        return f"http://127.0.0.1:{taken.getsockname()[1]}/api"


def upload(url: str, path, size: int | None = None, **client_options):
    async def run():
        client = ImmichClient(url, **client_options)
        try:
            return await client.upload_asset("key", path, path.stat().st_size if size is None else size,
                                             filename=path.name, created_at="2020-01-01T00:00:00.000Z",
                                             modified_at="2020-01-01T00:00:00.000Z", checksum=sha1_of(path))
        finally:
            await client.aclose()
    return asyncio.run(run())


def uploads(url: str, paths, between=lambda: None, **client_options) -> list:
    """Each file uploaded in turn by one client, `between()` run in a thread after each."""
    async def run():
        client = ImmichClient(url, **client_options)
        results = []
        try:
            for path in paths:
                results.append(await client.upload_asset("key", path, path.stat().st_size, filename=path.name,
                                                         created_at="2020-01-01T00:00:00.000Z",
                                                         modified_at="2020-01-01T00:00:00.000Z"))
                await asyncio.to_thread(between)
        finally:
            await client.aclose()
        return results
    return asyncio.run(run())


@pytest.fixture
def served():
    servers: list[RawServer] = []

    def serve(handle) -> RawServer:
        servers.append(RawServer(handle))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def test_the_body_is_the_fields_the_whole_file_and_the_closing_boundary(served, tmp_path):
    photo = make_file(tmp_path / "big.jpg", 5 * 1024 * 1024 + 7)
    seen = {}

    def handle(server, conn):
        seen["head"], seen["body"] = read_request(conn)
        answer(conn)

    server = served(handle)
    assert upload(server.url, photo) == ("asset-1", False)
    head, body = seen["head"], seen["body"]
    assert head.startswith(b"POST /api/assets HTTP/1.1\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    assert headers[b"x-api-key"] == b"key" and headers[b"x-immich-checksum"] == sha1_of(photo).encode()
    assert len(body) == int(headers[b"content-length"])
    boundary = headers[b"content-type"].split(b"boundary=")[1]
    parts = body.split(b"--" + boundary)
    assert parts[-1] == b"--\r\n" and parts[0] == b""
    assert b'name="assetData"; filename="big.jpg"' in parts[-2]
    assert hashlib.sha1(file_part(head, body)).hexdigest() == sha1_of(photo)


def keeps_alive(server, conn, close_after: int = 0, say_close: bool = False):
    """Answers every request on the connection. After `close_after` answers (0: never) it either
    says "Connection: close" in the last answer and reads nothing more (`say_close`), or closes
    the connection without a word and sets `server.closed`."""
    buffered, answered = b"", 0
    while True:
        while b"\r\n\r\n" not in buffered:
            piece = conn.recv(65536)
            if not piece:
                return
            buffered += piece
        head, _, buffered = buffered.partition(b"\r\n\r\n")
        while len(buffered) < content_length(head):
            buffered += conn.recv(1 << 20)
        buffered = buffered[content_length(head):]
        answered += 1
        last = answered == close_after
        answer(conn, extra=b"Connection: close\r\n" if last and say_close else b"")
        if last and say_close:  # a client that sends on anyway waits for an answer in vain
            server.done.wait(30)
            return
        if last:
            conn.close()
            server.closed.set()
            return


def test_one_connection_serves_the_uploads_one_after_another(served, tmp_path):
    photos = [make_file(tmp_path / f"p{i}.jpg", 300_000 + i, seed=i) for i in range(3)]
    server = served(keeps_alive)
    assert uploads(server.url, photos) == [("asset-1", False)] * 3
    assert server.connections == 1


@pytest.mark.parametrize("say_close", [True, False], ids=["said-so", "idle-timeout"])
def test_a_connection_immich_closed_is_not_used_again(served, tmp_path, say_close):
    """Immich closes a connection when its answer says so, and an idle one after its keep-alive
    timeout (Node: 5 s) without a word: the next upload must not go into either."""
    photos = [make_file(tmp_path / f"p{i}.jpg", 300_000 + i, seed=i) for i in range(2)]
    server = served(lambda server, conn: keeps_alive(server, conn, close_after=1, say_close=say_close))
    between = (lambda: None) if say_close else (lambda: server.closed.wait(5))
    assert uploads(server.url, photos, between=between, timeout=5) == [("asset-1", False)] * 2
    assert server.connections == 2


@pytest.mark.parametrize("drains", [True, False], ids=["reads-the-rest", "closes"])
def test_an_answer_before_the_body_is_in_is_the_answer(served, tmp_path, drains):
    """Immich may refuse (or call a checksum a duplicate) from the head alone, then read the rest
    of the body and drop it (as Node does) or close: what it said counts, not the broken write."""
    photo = make_file(tmp_path / "refused.jpg", 32 * 1024 * 1024)

    def handle(server, conn):
        read_head(conn)
        answer(conn, 400, json.dumps({"message": "Unsupported file type"}).encode())
        conn.shutdown(socket.SHUT_WR)
        while drains and conn.recv(1 << 20):
            pass

    server = served(handle)
    with pytest.raises(ImmichRejected) as refused:
        upload(server.url, photo)
    assert refused.value.status == 400 and refused.value.message == "Unsupported file type"


def test_a_gzipped_answer_is_read(served, tmp_path):
    photo = make_file(tmp_path / "small.jpg", 1000)

    def handle(server, conn):
        read_request(conn)
        answer(conn, 200, gzip.compress(json.dumps({"id": "a-9", "status": "duplicate"}).encode()),
               b"Content-Encoding: gzip\r\n")

    assert upload(served(handle).url, photo) == ("a-9", True)


def test_no_answer_in_time_is_unavailable_and_may_have_landed(served, tmp_path):
    photo = make_file(tmp_path / "slow.jpg", 1000)
    quiet = threading.Event()

    def handle(server, conn):
        read_head(conn)
        quiet.wait(10)  # reads the request and says nothing

    server = served(handle)
    try:
        with pytest.raises(ImmichUnavailable) as late:
            upload(server.url, photo, timeout=0.5)
    finally:
        quiet.set()
    assert "in time" in late.value.message and not late.value.unsent


def test_nobody_listening_is_unavailable_and_certainly_unsent(tmp_path):
    photo = make_file(tmp_path / "p.jpg", 1000)
    with pytest.raises(ImmichUnavailable) as refused:
        upload(dead_url(), photo)
    assert refused.value.unsent


def test_a_connection_closed_without_an_answer_is_unavailable(served, tmp_path):
    photo = make_file(tmp_path / "p.jpg", 200_000)

    def handle(server, conn):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{\"id\"")  # and no more

    with pytest.raises(ImmichUnavailable) as cut:
        upload(served(handle).url, photo)
    assert not cut.value.unsent


def test_a_staged_file_shorter_than_its_upload_raises_before_connecting(tmp_path):
    photo = make_file(tmp_path / "cut.jpg", 100_000)
    with pytest.raises(OSError) as short:  # on connecting first it would be ImmichUnavailable
        upload(dead_url(), photo, size=100_001)
    assert "shorter" in str(short.value)


def test_a_staged_file_failing_mid_send_fails_the_upload_at_once(served, tmp_path, monkeypatch):
    """A read error of the disk halfway (sendfile and a read both fail at that offset) is the
    file's failure, an OSError (the pipeline fails the upload): not a connection error to retry,
    and without waiting for an answer that cannot come (the timeout here is a minute)."""
    import immich_drop.filesend as filesend

    photo = make_file(tmp_path / "bad.jpg", 3 * 1024 * 1024)
    real_sendfile, real_pread = os.sendfile, os.pread

    def sendfile(out_fd, in_fd, offset, count):
        if offset >= 1024 * 1024:
            raise OSError(errno.EIO, "Input/output error")
        return real_sendfile(out_fd, in_fd, offset, min(count, 1024 * 1024 - offset))

    def pread(fd, n, offset):
        if offset >= 1024 * 1024:
            raise OSError(errno.EIO, "Input/output error")
        return real_pread(fd, n, offset)

    monkeypatch.setattr(filesend.os, "sendfile", sendfile)
    monkeypatch.setattr(filesend.os, "pread", pread)
    server = served(lambda server, conn: read_request(conn))

    async def run():
        client = ImmichClient(server.url, timeout=60)
        try:
            return await asyncio.wait_for(client.upload_asset(
                "key", photo, photo.stat().st_size, filename="bad.jpg", created_at="2020-01-01T00:00:00.000Z",
                modified_at="2020-01-01T00:00:00.000Z"), 10)
        finally:
            await client.aclose()

    with pytest.raises(OSError) as failed:
        asyncio.run(run())
    assert failed.value.errno == errno.EIO


def test_a_file_system_without_sendfile_still_sends_the_whole_file(served, tmp_path, monkeypatch):
    import immich_drop.filesend as filesend

    def no_sendfile(*args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(filesend.os, "sendfile", no_sendfile)
    photo = make_file(tmp_path / "p.jpg", 2 * 1024 * 1024 + 3)
    seen = {}

    def handle(server, conn):
        seen["head"], seen["body"] = read_request(conn)
        answer(conn)

    assert upload(served(handle).url, photo) == ("asset-1", False)
    assert hashlib.sha1(file_part(seen["head"], seen["body"])).hexdigest() == sha1_of(photo)


def test_immich_not_reading_the_body_is_a_timeout(served, tmp_path):
    photo = make_file(tmp_path / "p.jpg", 32 * 1024 * 1024)  # more than the sockets' buffers hold
    server = served(lambda server, conn: (read_head(conn), server.done.wait(30)))
    with pytest.raises(ImmichUnavailable) as late:
        upload(server.url, photo, timeout=0.5)
    assert "in time" in late.value.message and not late.value.unsent


def test_closing_the_client_ends_a_send_waiting_for_its_answer(served, tmp_path):
    """At shutdown a delivery still waiting for Immich (timeout: a minute) fails at once, as a lost
    connection, and a send asked for after the close never connects."""
    photo = make_file(tmp_path / "p.jpg", 1000)
    heard = threading.Event()
    server = served(lambda server, conn: (read_request(conn), heard.set(), server.done.wait(30)))

    async def run():
        client = ImmichClient(server.url, timeout=60)
        args = dict(filename="p.jpg", created_at="2020-01-01T00:00:00.000Z", modified_at="2020-01-01T00:00:00.000Z")
        waiting = asyncio.create_task(client.upload_asset("key", photo, 1000, **args))
        await asyncio.to_thread(heard.wait, 10)
        await client.aclose()
        with pytest.raises(ImmichUnavailable) as lost:
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(ImmichUnavailable) as after:
            await client.upload_asset("key", photo, 1000, **args)
        return lost.value, after.value

    lost, after = asyncio.run(run())
    assert not lost.unsent and after.unsent and server.connections == 1


def test_a_cancelled_upload_lets_go_of_its_connection_and_its_thread(served, tmp_path):
    """Shutting the server down cancels deliveries: the thread waiting for Immich's answer must not
    wait out the timeout (60 s by default), or the only sender thread stays taken."""
    photo = make_file(tmp_path / "p.jpg", 1000)
    heard = threading.Event()

    def handle(server, conn):
        head, body = read_head(conn)
        if not heard.is_set():  # the first request: never answered; waits for its end
            heard.set()
            while conn.recv(65536):
                pass
            server.closed.set()
            return
        while len(body) < content_length(head):
            body += conn.recv(65536)
        answer(conn)

    server = served(handle)

    async def run():
        client = ImmichClient(server.url, senders=1, timeout=60)
        try:
            args = dict(filename="p.jpg", created_at="2020-01-01T00:00:00.000Z", modified_at="2020-01-01T00:00:00.000Z")
            hanging = asyncio.create_task(client.upload_asset("key", photo, 1000, **args))
            await asyncio.to_thread(heard.wait, 10)
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            return await asyncio.wait_for(client.upload_asset("key", photo, 1000, **args), 10)
        finally:
            await client.aclose()

    assert asyncio.run(run()) == ("asset-1", False)
    assert server.closed.wait(5)


@pytest.mark.parametrize("url, env, direct", [
    ("http://immich:2283/api", {}, True),
    ("https://photos.example.org/api", {}, False),  # TLS: httpx
    ("http://immich:2283/api", {"HTTP_PROXY": "http://proxy:3128"}, False),
    ("http://immich:2283/api", {"ALL_PROXY": "http://proxy:3128"}, False),
    ("http://immich:2283/api", {"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "immich"}, False),  # httpx's rules
    ("http://immich:2283/api", {"HTTPS_PROXY": "http://proxy:3128"}, True),
])
def test_sendfile_only_for_plain_http_without_a_proxy(monkeypatch, url, env, direct):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _plain_and_direct(url) is direct


def test_the_real_immich_takes_a_file_sent_this_way_and_answers_its_duplicate_and_a_refusal(peer, tmp_path):
    """Against the real Immich: the file lands whole (its SHA-1), the same bytes again are answered
    "duplicate" from the checksum header, and a name Immich refuses is refused with its message,
    over one kept connection; each 20 MiB, so Immich can answer before the body is in."""
    from conftest import MEDIA
    from peer import sha1, unique_copy

    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "sent.jpg")
    with open(photo, "ab") as fh:  # bytes after the JPEG's end: the same photo to Immich, now 20 MiB
        fh.truncate(20 * 1024 * 1024)
    refused = tmp_path / "notes.txt"
    refused.write_bytes(photo.read_bytes()[:-1])

    async def run():
        client = ImmichClient(peer.api, senders=2)
        assert client._sender is not None  # the way under test, not httpx's
        send = lambda path: client.upload_asset(  # noqa: E731
            peer.API_KEY_UPLOAD, path, path.stat().st_size, filename=path.name, checksum=sha1(path),
            created_at="2020-01-01T00:00:00.000Z", modified_at="2020-01-01T00:00:00.000Z")
        try:
            first, again = await send(photo), await send(photo)
            with pytest.raises(ImmichRejected) as no:
                await send(refused)
            return first, again, no.value
        finally:
            await client.aclose()

    (asset_id, dup), (same_id, dup_again), refusal = asyncio.run(run())
    try:
        assert not dup and dup_again and same_id == asset_id == peer.asset_id(sha1(photo))
        assert refusal.status == 400 and "Unsupported file type" in refusal.message, refusal.message
    finally:
        peer.delete_assets([asset_id], force=True)


def test_a_key_http_cannot_carry_is_refused_before_anything_is_sent(tmp_path):
    """A header value with a line break would split the request: h11 refuses to write it, before
    any connection (to an address nobody listens on, connecting first would fail as unreachable)."""
    photo = make_file(tmp_path / "p.jpg", 1000)

    async def run():
        client = ImmichClient(dead_url())
        try:
            return await client.upload_asset("key\r\nx-api-key: other", photo, 1000, filename="p.jpg",
                                              created_at="2020-01-01T00:00:00.000Z",
                                              modified_at="2020-01-01T00:00:00.000Z")
        finally:
            await client.aclose()

    with pytest.raises(ImmichUnavailable) as refused:
        asyncio.run(run())
    assert "LocalProtocolError" in refused.value.message
