"""Dead connections, server side, with real sockets over loopback that stop sending (no FIN, no RST).

A PATCH whose body stops arriving is ended after UPLOAD_STALL_SECONDS with its bytes kept; before
that, a new request of the same browser takes the upload over (tusd v2's lock release); request heads
that never finish, or grow too large, are cut."""

import asyncio
import socket
import threading

import pytest
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

from conftest import _b64, make_file, sha1_of, start_patch, wait_until
from test_limits import read_reply

from immich_drop.http_edge import BIG_WINDOW, BIG_WINDOWS
from immich_drop.tus.storage import BUFFER_BUDGET, WRITE_PIECE

CHUNK = 1024 * 1024


def stalled_patch(drop, guest, tmp_path, sent: int):
    """An upload of 2.5 chunks whose first PATCH announces 2 chunks, sends `sent` bytes and then nothing."""
    source = make_file(tmp_path / "video.mov", 2 * CHUNK + CHUNK // 2, seed=11)
    data = source.read_bytes()
    uid = guest.create(len(data), "video.mov").headers["Location"].rsplit("/", 1)[-1]
    sock = start_patch(drop.url, uid, guest.cookie, 2 * CHUNK)
    sock.sendall(data[:sent])
    path = drop.services.storage.data_path(uid)
    wait_until(lambda: path.stat().st_size >= CHUNK, what="the first mebibyte on disk")
    return source, data, uid, sock, path


def resume(drop, guest, source, uid, path, data):
    head = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert head.status_code == 200
    offset = int(head.headers["Upload-Offset"])
    assert offset == path.stat().st_size >= CHUNK and path.read_bytes() == data[:offset]  # nothing lost, nothing torn
    uploader = guest.uploader(source, chunk_size=CHUNK, url=f"{drop.url}/api/uploads/{uid}")
    assert uploader.offset == offset
    uploader.upload()
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert drop.fake.uploads[0].sha1 == sha1_of(source)
    return offset


def test_a_patch_that_stops_sending_is_ended_and_its_bytes_kept(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK), UPLOAD_STALL_SECONDS="0.5")
    guest = drop.guest()
    source, data, uid, sock, path = stalled_patch(drop, guest, tmp_path, CHUNK + 4321)
    try:
        wait_until(lambda: not drop.services.storage.locks.held(uid), what="the stalled PATCH to let go")
        reply = read_reply(sock)
        assert reply.startswith(b"HTTP/1.1 204") and b"connection: close" in reply.lower()
        resume(drop, guest, source, uid, path, data)
    finally:
        sock.close()


def test_stalled_patches_together_hold_a_bounded_amount_unwritten(make_drop):
    # An attack run: 300 PATCHes that each sent a mebibyte less a byte and stopped held 300 MB in the
    # server, every one under the size at which an upload's bytes are written. Now all uploads
    # together hold at most BUFFER_BUDGET unwritten: the rest is on disk. (The stall timer, which would
    # end them, plays no part: a byte every few seconds keeps a PATCH alive.)
    drop = make_drop(UPLOAD_STALL_SECONDS="600")
    guest, each, sockets = drop.guest(), WRITE_PIECE - 1, []
    count = BUFFER_BUDGET // each + 8
    paths = []
    try:
        for n in range(count):
            uid = guest.create(2 * CHUNK, f"v{n}.mov").headers["Location"].rsplit("/", 1)[-1]
            sock = start_patch(drop.url, uid, guest.cookie, 2 * CHUNK)
            sock.sendall(b"\0" * each)
            sockets.append(sock)
            paths.append(drop.services.storage.data_path(uid))
        on_disk = lambda: sum(p.stat().st_size for p in paths if p.exists())
        wait_until(lambda: on_disk() >= count * each - BUFFER_BUDGET, what="the bytes beyond the budget on disk")
        assert drop.services.storage.buffered <= BUFFER_BUDGET
    finally:
        for sock in sockets:
            sock.close()


def test_a_new_request_of_the_same_browser_takes_over_at_once(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK), UPLOAD_STALL_SECONDS="600")  # the stall timer plays no part here
    guest = drop.guest()
    source, data, uid, sock, path = stalled_patch(drop, guest, tmp_path, CHUNK + 4321)
    try:
        assert drop.services.storage.locks.held(uid)
        offset = resume(drop, guest, source, uid, path, data)  # HEAD asks the holder to stop, then PATCHes go on
        reply = read_reply(sock)
        assert reply.startswith(b"HTTP/1.1 204") and f"upload-offset: {offset}".encode() in reply.lower()
    finally:
        sock.close()


def test_another_browser_cannot_take_an_upload_over(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK), UPLOAD_STALL_SECONDS="600")
    owner, stranger = drop.guest(), drop.guest()
    _, _, uid, sock, _ = stalled_patch(drop, owner, tmp_path, CHUNK + 10)
    try:
        assert stranger.http.head(f"/api/uploads/{uid}", headers=stranger.tus_headers()).status_code == 404
        assert drop.services.storage.locks.held(uid)
    finally:
        sock.close()


def open_socket(drop, timeout=20) -> socket.socket:
    return socket.create_connection(("127.0.0.1", drop.server.port), timeout=timeout)


@pytest.mark.parametrize("sent", [b"", b"PATCH /api/uploads/0123 HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"])
def test_request_heads_that_never_finish_are_cut(make_drop, sent):
    drop = make_drop(HEADER_TIMEOUT_SECONDS="0.5")
    sock = open_socket(drop)
    sock.sendall(sent)
    reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert reply.endswith(b'{"message": "The request headers did not arrive in time.", "code": "bad_request"}')
    assert sock.recv(10) == b""  # and the connection is closed
    sock.close()


def test_a_kept_alive_connection_gets_the_same_bound(make_drop):
    drop = make_drop(HEADER_TIMEOUT_SECONDS="0.5")
    sock = open_socket(drop)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_reply(sock).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the second request's head stops half-way
    assert read_reply(sock).startswith(b"HTTP/1.1 408")
    sock.close()


def test_connections_beyond_the_limit_are_answered_503_and_memory_stays_bounded(make_drop):
    # 10,000 slow request bodies (no link or sign-in needed) grew the server to 904 MB (attack run).
    drop = make_drop(MAX_CONNECTIONS="16", MAX_CONNECTIONS_PER_ADDRESS="16")
    slow = []
    try:
        for _ in range(15):  # one at a time: each request's head is seen with the ones before it open
            slow.append(sock := open_socket(drop))
            sock.sendall(b"POST /api/admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{")
        wait_until(lambda: len(drop.server.server.server_state.connections) == 15, what="15 connections")
        late = open_socket(drop)
        late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_reply(late)
        assert reply.startswith(b"HTTP/1.1 503") and b"connection: close" in reply.lower(), reply
        late.close()
    finally:
        for sock in slow:
            sock.close()
    wait_until(lambda: drop.guest().http.get("/healthz").status_code == 200, what="room again")


def test_a_full_server_closes_the_oldest_connection_still_waiting_for_its_head(make_drop):
    """Probe: four addresses at 512 request lines each (a quarter of MAX_CONNECTIONS each) held every
    connection, and the server answered 503 to everyone, /healthz included. A new connection to a full
    server closes the oldest one whose request head has not arrived (408); requests whose heads did
    arrive (the slow bodies above) are not touched."""
    drop = make_drop(MAX_CONNECTIONS="16", MAX_CONNECTIONS_PER_ADDRESS="16", HEADER_TIMEOUT_SECONDS="600")
    slow = []

    def one_more_slow():
        slow.append(sock := open_socket(drop, timeout=10))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and the rest never
        wait_until(lambda: len(drop.server.server.server_state.connections) == 15, what="15 connections")

    try:
        for _ in range(15):
            slow.append(sock := open_socket(drop, timeout=10))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        wait_until(lambda: len(drop.server.server.server_state.connections) == 15, what="15 connections")
        for oldest in range(3):  # each full server's newcomer is answered, and the oldest slow head closed
            late = open_socket(drop)
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_reply(late)
            assert reply.startswith(b"HTTP/1.1 200"), reply
            late.close()
            assert read_reply(slow[oldest]).startswith(b"HTTP/1.1 408")
            one_more_slow()
    finally:
        for sock in slow:
            sock.close()


def test_one_address_holds_at_most_its_share_of_the_connections(make_drop):
    """Attack run: 2,047 slow sign-in bodies from one address took every connection, and the server
    answered 503 to everyone, its health check too. One address gets MAX_CONNECTIONS_PER_ADDRESS."""
    drop = make_drop(MAX_CONNECTIONS_PER_ADDRESS="4")
    # WebSockets (upgraded, so no longer counted as connections) and finished requests give their place back
    for _ in range(5):
        guest = drop.guest()
        assert guest.http.get("/healthz").status_code == 200
        guest.watch()
        guest.close()
    held = [open_socket(drop) for _ in range(4)]
    try:
        wait_until(lambda: len(drop.server.server.server_state.connections) == 4, what="the four held")
        late = open_socket(drop)
        late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_reply(late)
        late.close()
        assert reply.startswith(b"HTTP/1.1 503") and b"connection: close" in reply.lower(), reply
        assert reply.endswith(b'"code": "too_many_connections"}'), reply
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: drop.guest().http.get("/healthz").status_code == 200, what="room again")


def test_behind_a_trusted_proxy_each_client_holds_its_share_of_the_requests(make_drop):
    """Cold review: behind a trusted proxy every connection is the proxy's, which the connection count
    leaves alone, so one client's slow requests through a proxy that streams bodies took them all.
    The requests are counted by the client the proxy names (an IPv6 one by its /64)."""
    drop = make_drop(MAX_CONNECTIONS_PER_ADDRESS="4", TRUSTED_PROXIES="127.0.0.1/32")

    def slow_sign_in(client: str) -> socket.socket:
        sock = open_socket(drop)
        sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-Forwarded-For: " + client.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
        return sock

    held = [slow_sign_in(f"2001:db8::{n}") for n in range(4)]  # four addresses of one /64
    try:
        wait_until(lambda: len(drop.server.server.server_state.connections) == 4, what="the four held")
        for client, expected in (("2001:db8::99", b"HTTP/1.1 503"), ("198.51.100.7", b"HTTP/1.1 200")):
            late = open_socket(drop)
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + client.encode() + b"\r\n\r\n")
            reply = read_reply(late)
            late.close()
            assert reply.startswith(expected), (client, reply)
        assert reply.startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_oversized_request_heads_are_refused(drop):
    guest = drop.guest()
    big = guest.http.get("/healthz", headers={"X-Filler": "a" * (64 * 1024)})
    assert big.status_code == 431  # answered as the app answers, though the app never saw it
    assert big.json() == {"message": "Request headers are too large.", "code": "bad_request",
                          "params": {"limit": drop.settings.max_header_size}}
    assert guest.http.get("/healthz", headers={"X-Filler": "a" * (8 * 1024)}).status_code == 200


@pytest.mark.parametrize("head", [b"GARBAGE\r\n\r\n",
                                  b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"])
def test_a_request_that_is_not_http_gets_the_apps_json(drop, head):
    """Attack run: uvicorn answered these in text/plain, unlike every other refusal."""
    sock = open_socket(drop)
    sock.sendall(head)
    reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in reply, reply
    assert reply.endswith(b'{"message": "This request is not valid HTTP.", "code": "bad_request"}')
    sock.close()


def test_upload_metadata_is_bounded_and_keeps_no_token(drop):
    guest = drop.guest()
    meta = f"filename {_b64('a.jpg')},filetype {_b64('image/jpeg')},junk {_b64('x' * 6000)}"
    response = guest.http.post("/api/uploads", headers=guest.tus_headers(**{"Upload-Length": "10", "Upload-Metadata": meta}))
    assert response.status_code == 431 and response.json()["params"] == {"limit": 4096}
    long_name = "n" * 2000 + ".jpg"
    uid = guest.create(10, long_name).headers["Location"].rsplit("/", 1)[-1]
    assert len(drop.upload_row(uid).filename) == 255 and drop.upload_row(uid).filename.endswith(".jpg")
    assert drop.services.storage.info_path(uid).stat().st_size < 2048


class HeldBodies:
    """An ASGI app that reads no body until `release()`, then notes the size of the first piece it gets."""

    def __init__(self):
        self.first_pieces: list[int] = []
        self.released = asyncio.Event()  # (bound to the server's loop when it is first awaited)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await self.released.wait()
        message = await receive()
        self.first_pieces.append(len(message.get("body", b"")))
        while message.get("more_body"):
            message = await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _edge_server(app):
    from conftest import ServerThread

    from immich_drop.http_edge import protocol
    return ServerThread(app, http=protocol(32 * 1024, 10.0))


def _post(server, length: int, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length + body)
    return sock


def test_a_large_body_waits_in_larger_pieces_for_the_app():
    """uvicorn stops reading at 64 KiB waiting: a photo reached the app in 18 pieces, each a trip through
    the guard, tuspyserver and the storage. A request announcing at least BIG_WINDOW lets that much wait."""
    app = HeldBodies()
    server = _edge_server(app)
    connections = server.server.server_state.connections
    first = BIG_WINDOW - 1024
    sock = _post(server, 4 * BIG_WINDOW, bytes(first))
    sender = None
    try:
        wait_until(lambda: [len(p.cycle.body) for p in connections if p.cycle] == [first], what="the first bytes held")
        [protocol] = connections
        assert not protocol.flow.read_paused  # uvicorn's own stops reading past 64 KiB
        sender = threading.Thread(target=sock.sendall, args=(bytes(4 * BIG_WINDOW - first),))  # (buffers may fill)
        sender.start()
        wait_until(lambda: protocol.flow.read_paused, what="the server pausing its reading")
        held = len(protocol.cycle.body)
        assert held > BIG_WINDOW
        server.loop.call_soon_threadsafe(app.released.set)
        assert read_reply(sock).startswith(b"HTTP/1.1 204")
        assert app.first_pieces == [held]
    finally:
        if sender:
            sender.join(20)
        sock.close()
        server.stop()


def test_a_smaller_body_keeps_uvicorns_64_kib():
    app = HeldBodies()
    server = _edge_server(app)
    connections = server.server.server_state.connections
    sock = _post(server, BIG_WINDOW - 1, bytes(BIG_WINDOW - 1))
    try:
        wait_until(lambda: any(p.flow.read_paused for p in connections), what="the server pausing its reading")
        [held] = [len(p.cycle.body) for p in connections]
        assert HIGH_WATER_LIMIT < held < BIG_WINDOW
        server.loop.call_soon_threadsafe(app.released.set)
        assert read_reply(sock).startswith(b"HTTP/1.1 204")
        assert app.first_pieces == [held]
    finally:
        sock.close()
        server.stop()


def test_at_most_big_windows_requests_hold_one_and_each_gives_it_back():
    app = HeldBodies()
    server = _edge_server(app)
    connections = server.server.server_state.connections
    socks = []
    try:
        for _ in range(BIG_WINDOWS + 1):  # one at a time: each head is seen with the ones before it
            socks.append(_post(server, BIG_WINDOW))
            wait_until(lambda: len(connections) == len(socks) and all(p.cycle for p in connections),
                       what="the request's head read")
        edge = type(next(iter(connections)))  # the server's protocol class: it counts the windows
        assert sorted(p._window for p in connections) == [HIGH_WATER_LIMIT] + [BIG_WINDOW] * BIG_WINDOWS
        socks.pop().close()
        socks.pop(0).close()  # one with a window, gone before its body came: the window comes back
        wait_until(lambda: len(connections) == BIG_WINDOWS - 1, what="two connections closed")
        assert edge.windows == [BIG_WINDOWS - 1] and all(p._window == BIG_WINDOW for p in connections)
        socks.append(_post(server, BIG_WINDOW))  # room for one again
        wait_until(lambda: len(connections) == BIG_WINDOWS and all(p.cycle for p in connections), what="its head")
        assert edge.windows == [BIG_WINDOWS] and all(p._window == BIG_WINDOW for p in connections)
        server.loop.call_soon_threadsafe(app.released.set)
        for sock in socks:  # each sends its body whole: its window comes back with its answer
            sock.sendall(bytes(BIG_WINDOW))
            assert read_reply(sock).startswith(b"HTTP/1.1 204")
        wait_until(lambda: edge.windows == [0], what="every window back")  # (the answer may land first)
        assert all(p._window == HIGH_WATER_LIMIT for p in connections)
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_a_body_read_whole_before_the_app_takes_it_keeps_its_window_until_the_answer():
    """Review: the window came back with the body's last byte, though the body still waited for the app;
    40 requests that each sent 1 MiB to a busy app held 37 MB in windows the server counted as free."""
    app = HeldBodies()
    server = _edge_server(app)
    connections = server.server.server_state.connections
    sock = _post(server, BIG_WINDOW, bytes(BIG_WINDOW))
    try:
        wait_until(lambda: [p.cycle.more_body for p in connections if p.cycle] == [False], what="the whole body read")
        [protocol] = connections
        assert type(protocol).windows == [1] and len(protocol.cycle.body) == BIG_WINDOW
        server.loop.call_soon_threadsafe(app.released.set)
        assert read_reply(sock).startswith(b"HTTP/1.1 204")
        wait_until(lambda: type(protocol).windows == [0], what="the window back with the answer")
    finally:
        sock.close()
        server.stop()
