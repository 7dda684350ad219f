"""Request bodies outside tus are bounded before they are read: 413 unread, chunked bodies counted as
they stream, and a body that stops arriving is ended. Real sockets over loopback."""

import socket

import pytest

from immich_drop.limits import API_BODY, SMALL_BODY


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 20) -> tuple[socket.socket, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body`; return the socket and
    whatever the server answered before it closed or `timeout` passed."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(head.encode() + b"\r\n\r\n" + body)
    return sock, read_reply(sock)


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    try:
        while b"\r\n\r\n" not in data or not _complete(data):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except socket.timeout:
        pass
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


@pytest.mark.parametrize("path, limit", [("/api/login", SMALL_BODY), ("/api/i/sometoken/unlock", SMALL_BODY),
                                         ("/api/invites", API_BODY), ("/api/albums", API_BODY)])
def test_oversized_body_is_refused_before_it_is_read(drop, path, limit):
    # 256 MiB announced, not one byte of it sent: the answer must come anyway.
    sock, reply = raw_request(drop.url, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        f"Content-Length: {256 * 1024 * 1024}")
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"code": "bad_request"' in reply and f'"limit": {limit}'.encode() in reply


@pytest.mark.parametrize("path", ["/api/login", "/api/invites"])
def test_chunked_body_is_counted_as_it_streams(drop, path):
    def body():
        for _ in range(64):  # 4 MiB of JSON whitespace, in 64 KiB pieces, without a Content-Length
            yield b" " * 65536

    response = drop.guest().http.post(path, content=body(), headers={"Content-Type": "application/json"})
    limit = SMALL_BODY if path == "/api/login" else API_BODY
    assert response.status_code == 413 and response.json()["params"] == {"limit": limit}


def test_a_body_within_the_limit_still_works(drop, fake):
    fake.add_account("ada@example.org", "correct horse")
    chunks = iter([b'{"email": "ada@example.org", ', b'"password": "correct horse"}'])
    response = drop.guest().http.post("/api/login", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


def test_a_body_that_stops_arriving_is_ended(make_drop):
    drop = make_drop(UPLOAD_STALL_SECONDS="0.5")
    sock, reply = raw_request(drop.url, "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        "Content-Length: 100", b'{"email": ')
    sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"stopped arriving" in reply


def test_a_body_that_trickles_is_ended_when_its_time_is_up(make_drop):
    """Attack run: a byte every 8 s kept a 4 KiB sign-in open for hours (each piece came within the
    stall time), and 2,047 of them took every connection. The whole body has UPLOAD_STALL_SECONDS."""
    drop = make_drop(UPLOAD_STALL_SECONDS="1")
    host, port = drop.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
    sock.settimeout(0.3)  # a piece every 0.3 s, well within the stall time, until the server answers
    reply = b""
    for _ in range(100):  # 30 s at most
        try:
            reply = sock.recv(65536)
            break
        except TimeoutError:
            sock.sendall(b" ")
    assert reply, "still reading a body that trickles after 30 s"
    sock.settimeout(20)
    reply += read_reply(sock)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
