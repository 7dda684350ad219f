"""Test harness: real servers on 127.0.0.1, a fake Immich, tus clients and a status watcher.

Servers listen on a socket bound before they start, so a client can connect at once and its
request waits in the backlog until the server serves it: no sleeping until "ready".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect as ws_connect

from fake_immich import FakeImmich
from immich_drop.app import create_app
from immich_drop.config import Settings
from immich_drop.http_edge import uvicorn_options

MEDIA = Path(__file__).parent / "media"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "immich"


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class ServerThread:
    """An ASGI app served by uvicorn in a thread, on a socket that already listens."""

    def __init__(self, app, sock: socket.socket | None = None, **options):
        self.sock = sock or bound_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="auto", proxy_headers=False,  # as the CLI runs it
                                **options)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # surfaced by stop()
            self.failure = exc

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, close_socket: bool = True) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        if close_socket:
            self.sock.close()


@pytest.fixture
def fake():
    fake = FakeImmich()
    server = ServerThread(fake)
    fake.url = server.url + "/api"
    fake.server = server
    yield fake
    server.stop()


def settings_for(tmp_path: Path, immich_url: str, **overrides) -> Settings:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "IMMICH_BASE_URL": immich_url,
        "SESSION_SECRET": "test-secret",
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.2",
        "IMMICH_TIMEOUT_SECONDS": "5",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env, dotenv=None)


@dataclass
class Drop:
    """A running Immich Drop on loopback, with the fake Immich behind it."""

    server: ServerThread
    app: object
    fake: FakeImmich
    key: str
    settings: Settings
    guests: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def services(self):
        return self.app.services

    def guest(self, session: str | None = None) -> "Guest":
        guest = Guest(self.url, session)
        self.guests.append(guest)
        return guest

    def restart(self) -> "Drop":
        """Stop this server (its guests' connections closed) and start a new one on the same data."""
        for guest in self.guests:
            guest.close()
        self.guests.clear()
        self.server.stop()
        app = create_app(self.settings)
        self.server, self.app = ServerThread(app, **uvicorn_options(self.settings)), app
        return self

    def upload_row(self, uid: str):
        return self.server.call(self.services.store.get_upload(uid))


POSTGRES = os.environ.get("TEST_DATABASE_URL", "")  # a server to create throw-away databases on
BROWSER_MODULES = ("test_browser", "test_phone", "test_guest_page", "test_admin_console")
# what these test lies below or beside the database: the HTTP edge, stalls, the relay's stream, body
# limits, the catalogs and response headers (each run on PostgreSQL too cost CI's 20 minutes a minute)
EDGE_MODULES = ("test_tus_stall", "test_tus_resume", "test_relay", "test_limits", "test_i18n", "test_security")


def pytest_generate_tests(metafunc):
    """Tests that use `database_url` run on SQLite, and on PostgreSQL too when TEST_DATABASE_URL names
    a server (browser and edge tests stay on SQLite: the database is not what they test)."""
    if "database_url" in metafunc.fixturenames:
        backends = ["sqlite"]
        if POSTGRES and metafunc.module.__name__ not in BROWSER_MODULES + EDGE_MODULES:
            backends.append("postgresql")
        metafunc.parametrize("database_url", backends, indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test against the real Immich holds the peer from its set-up to its teardown (pyproject runs
    three workers): they share one Immich, one of them stops and starts it, and some count what it
    holds."""
    if "peer" not in getattr(item, "fixturenames", ()):
        return (yield)
    from peer import turn

    with turn():
        return (yield)


@pytest.fixture
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    admin_url = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_drop(tmp_path, fake, database_url):
    started: list[Drop] = []

    def make(**overrides) -> Drop:
        key = overrides.pop("key", None) or fake.add_user()
        wrap = overrides.pop("wrap", None)  # an ASGI wrapper around the app, e.g. a recorder
        env = {"PUBLIC_UPLOAD_PAGE_ENABLED": "true", "IMMICH_API_KEY": key, "IMMICH_ALBUM_NAME": "Guests",
               "DATABASE_URL": database_url}
        env.update(overrides)
        settings = settings_for(tmp_path, fake.url, **env)
        app = create_app(settings)
        served = wrap(app) if wrap else app
        drop = Drop(ServerThread(served, **uvicorn_options(settings)), app, fake, key, settings)
        drop.served = served
        started.append(drop)
        return drop

    yield make
    _stop_all(started)


def _stop_all(drops: list[Drop]) -> None:
    for drop in drops:
        for guest in drop.guests:
            guest.close()
        drop.server.stop()


@pytest.fixture
def drop(make_drop) -> Drop:
    return make_drop()


# --- the real Immich peer (tests/peer.py) --------------------------------------------------
@pytest.fixture(scope="session")
def peer():
    """The real Immich v3.1.0 peer; skips with the reason when it is absent. In CI (CI=true) its set-up
    ran in .ci/run, so an absent peer there is a failure, not a skip."""
    from peer import Peer, credentials, why_absent

    reason = why_absent()
    if reason:
        if os.environ.get("CI") == "true" and (SHARED / "peer" / "setup.sh").exists():
            pytest.fail(reason)
        pytest.skip(reason)
    return Peer(credentials())


@pytest.fixture
def make_real_drop(tmp_path, peer):
    """`make_real_drop(**settings)`: an Immich Drop (SQLite) in front of the real Immich peer."""
    started: list[Drop] = []

    def make(**overrides) -> Drop:
        env = {"PUBLIC_UPLOAD_PAGE_ENABLED": "true", "IMMICH_API_KEY": peer.API_KEY_UPLOAD,
               "IMMICH_ALBUM_NAME": "Drop test " + os.urandom(4).hex(), "IMMICH_TIMEOUT_SECONDS": "60",
               "DATA_DIR": str(tmp_path / f"data{len(started)}")}
        env.update(overrides)
        settings = settings_for(tmp_path, peer.api, **env)
        app = create_app(settings)
        drop = Drop(ServerThread(app, **uvicorn_options(settings)), app, None, env["IMMICH_API_KEY"], settings)
        started.append(drop)
        return drop

    yield make
    _stop_all(started)


class Guest:
    """One browser: a cookie jar, tus uploads and the status channel."""

    def __init__(self, base_url: str, session: str | None = None):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)
        if session:  # the same browser, coming back (e.g. to a restarted server)
            self.http.cookies.set("drop_session", session)
        else:
            self.http.get("/")  # the page hands out the session cookie
        self._ws = None

    @property
    def session(self) -> str:
        return self.http.cookies["drop_session"]

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def tus_headers(self, **extra) -> dict:
        return {"Tus-Resumable": "1.0.0", "Cookie": self.cookie, **extra}

    def uploader(self, path: Path, chunk_size: int = 64 * 1024, metadata: dict | None = None, url: str | None = None):
        from tusclient import client

        tus = client.TusClient(self.base_url + "/api/uploads", headers={"Cookie": self.cookie})
        meta = {"filename": path.name, "filetype": "application/octet-stream"}
        meta.update(metadata or {})
        return tus.uploader(file_path=str(path), chunk_size=chunk_size, metadata=meta, url=url, retries=0)

    def invite_upload(self, path: Path, token: str, **kwargs) -> str:
        """Upload through an invite link (as its page does: the token travels in the tus metadata)."""
        self.http.get(f"/i/{token}")
        kwargs["metadata"] = {"invite": token, **kwargs.get("metadata", {})}
        return self.upload(path, **kwargs)

    def upload(self, path: Path, **kwargs) -> str:
        uploader = self.uploader(path, **kwargs)
        uploader.upload()
        return uploader.url.rsplit("/", 1)[-1]

    def create(self, length: int, filename: str = "photo.jpg", invite: str | None = None, meta: dict | None = None,
               **headers) -> httpx.Response:
        fields = {"filename": filename, "filetype": "image/jpeg", **({"invite": invite} if invite else {}), **(meta or {})}
        meta = ",".join(f"{name} {_b64(value)}" for name, value in fields.items())
        return self.http.post("/api/uploads", headers=self.tus_headers(**{"Upload-Length": str(length),
                                                                          "Upload-Metadata": meta, **headers}))

    # --- status channel ---------------------------------------------------------------------
    def watch(self):
        """Open the status channel; every event it delivers is kept in `self.events`."""
        if self._ws is None:
            url = self.base_url.replace("http://", "ws://") + "/ws"
            self._ws = ws_connect(url, additional_headers={"Cookie": self.cookie}, open_timeout=10).__enter__()
            self.events: list[dict] = []
            self.snapshot: list[dict] = []
            while (event := json.loads(self._ws.recv(timeout=10)))["type"] != "ready":
                self.snapshot.append(event)
            self.events.extend(self.snapshot)
        return self._ws

    def wait_for(self, uid: str, states, timeout: float = 30) -> dict:
        """Block until the status channel has reported `uid` in one of `states`; returns that event."""
        states = {states} if isinstance(states, str) else set(states)
        ws = self.watch()
        for event in self.events:
            if event.get("id") == uid and event.get("state") in states:
                return event
        while True:
            event = json.loads(ws.recv(timeout=timeout))
            self.events.append(event)
            if event.get("id") == uid and event.get("state") in states:
                return event

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        self.http.close()


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def sha1_of(path: Path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


# how files of these kinds begin, for tests that send the first bytes by hand (media.matches_name)
SIGNATURES = {".jpg": b"\xff\xd8\xff\xe0", ".jpeg": b"\xff\xd8\xff\xe0", ".png": b"\x89PNG\r\n\x1a\n",
              ".mp4": b"\x00\x00\x00\x18ftypmp42", ".mov": b"\x00\x00\x00\x14ftypqt  ",
              ".heic": b"\x00\x00\x00\x18ftypheic", ".gif": b"GIF89a"}


def make_file(path: Path, size: int, seed: int = 1) -> Path:
    """A file of `size` pseudo-random bytes (distinct per seed), written in 1 MiB pieces: random
    bytes named .jpg or .mp4, as people who test uploads make them, pass the server's first-bytes
    check (it refuses only what is plainly not a photo or video)."""
    import random

    rng = random.Random(seed)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 1 << 20)
            fh.write(rng.randbytes(n))
            left -= n
    return path


class Admin:
    """A signed-in admin's browser: cookie jar plus the CSRF token the console would hold."""

    def __init__(self, base_url: str):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.csrf = ""

    def login(self, **credentials) -> httpx.Response:
        response = self.http.post("/api/login", json=credentials)
        if response.status_code == 200:
            self.csrf = response.json()["csrfToken"]
        return response

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def invite(self, **fields) -> dict:
        response = self.call("POST", "/api/invites", json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Admin":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture
def admin_of(fake):
    """`admin_of(drop, email)` signs a new Immich user in to `drop` and returns the Admin."""
    made: list[Admin] = []

    def make(drop: "Drop", email: str = "ada@example.org", password: str = "correct horse") -> Admin:
        fake.add_account(email, password)
        admin = Admin(drop.url)
        assert admin.login(email=email, password=password).status_code == 200
        made.append(admin)
        return admin

    yield make
    for admin in made:
        admin.close()


def invite_token(invite: dict) -> str:
    return invite["link"].rsplit("/", 1)[-1]


# --- whole processes ------------------------------------------------------------------------
def wait_until(predicate, timeout=20.0, what="condition"):
    """Poll a condition that has no event to wait on (bytes reaching a file), with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Process:
    """`python -m immich_drop` in a subprocess, ready once it says so on stderr."""

    def __init__(self, env: dict, port: int, keep_log: bool = False):
        self.url = f"http://127.0.0.1:{port}"
        self.log: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "immich_drop"], env={**os.environ, **env, "PORT": str(port)},
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for line in self.proc.stderr:
            self.log.append(line)
            if "Uvicorn running on" in line or "Application startup complete" in line:
                break
        else:
            raise AssertionError("the server did not start: " + "".join(self.log[-5:]))
        sink = self.log.append if keep_log else (lambda _line: None)
        self._drain = threading.Thread(target=lambda: [sink(x) for x in self.proc.stderr], daemon=True)
        self._drain.start()  # keep the pipe drained

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._drain.join(5)


def free_port() -> int:
    """A port free for a process to listen on, drawn below the kernel's ephemeral range: the
    outgoing connections of another test worker never take it between this check and that bind."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for port in random.sample(range(max(1024, low - 10000), low), min(50, max(0, low - 1024))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    sock = bound_socket()  # no such range here: any port the kernel gives
    port = sock.getsockname()[1]
    sock.close()
    return port


def start_patch(url: str, uid: str, cookie: str, total: int, offset: int = 0) -> socket.socket:
    """Open a PATCH announcing `total` bytes; the caller sends the body and may never finish."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"PATCH /api/uploads/{uid} HTTP/1.1\r\nHost: {host}:{port}\r\nTus-Resumable: 1.0.0\r\n"
                  f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
                  f"Content-Length: {total}\r\nCookie: {cookie}\r\n\r\n").encode())
    return sock
