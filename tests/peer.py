"""The real Immich v3.1.0 peer (../shared/immich/peer/): its credentials, and what it holds.

`bash ../shared/immich/peer/setup.sh` starts it and writes CREDENTIALS.txt in its root
(IMMICH_PEER_ROOT, default /tmp/immich). Tests that need it take the `peer` fixture, which skips
with the reason when the peer is not there (a developer's machine that has not run the setup); CI
runs the setup first, so there they run.

`Peer` asks Immich itself what it holds, with the all-permission key: an asset by SHA-1 (through
`bulk-upload-check`, the way Immich dedupes), its details, the albums it is in. Files sent to it
must be new bytes each time (`unique_copy`), because Immich keeps what it got across runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(os.environ.get("IMMICH_PEER_ROOT", "/tmp/immich"))


def credentials() -> dict[str, str] | None:
    """The peer's CREDENTIALS.txt as a dict, or None when there is none."""
    path = ROOT / "CREDENTIALS.txt"
    if not path.is_file():
        return None
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def why_absent() -> str | None:
    """None when the peer answers; else the reason the tests that need it skip."""
    creds = credentials()
    if creds is None:
        return f"no Immich peer: {ROOT}/CREDENTIALS.txt is missing (run bash ../shared/immich/peer/setup.sh)"
    try:
        httpx.get(creds["IMMICH_URL"] + "/api/server/ping", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        return f"the Immich peer at {creds['IMMICH_URL']} does not answer ({type(exc).__name__})"
    return None


@contextmanager
def turn(most_seconds: float = 900):
    """One test at a time against this peer, across test workers and test runs: an exclusive lock
    (flock) on the peer's root folder, held until the block ends or the process does. Without that
    folder there is nothing to hold (the test skips). A wait beyond `most_seconds` (another run stuck
    in a test, say) fails the test by name instead of hanging CI."""
    try:
        folder = os.open(ROOT, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        folder = None
    if folder is None:
        yield
        return
    try:
        deadline = time.monotonic() + most_seconds
        while True:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test has held the Immich peer ({ROOT}) for over {most_seconds:.0f} s")
                time.sleep(0.1)  # flock has no timeout of its own
        yield
    finally:
        os.close(folder)


@dataclass(repr=False)  # no passwords in a failing test's output
class Peer:
    creds: dict[str, str]

    def __post_init__(self):
        self.url = self.creds["IMMICH_URL"]
        self.api = self.url + "/api"
        self.http = httpx.Client(base_url=self.api, headers={"x-api-key": self.creds["API_KEY_ALL"]}, timeout=60)

    def __getattr__(self, name: str) -> str:  # peer.ADMIN_EMAIL, peer.OWNER_PASSWORD, ...
        try:
            return self.creds[name]
        except KeyError:
            raise AttributeError(name) from None

    def session(self, email: str, password: str) -> httpx.Client:
        """A client signed in to Immich as that user (a session token, as the web app holds)."""
        token = httpx.post(self.api + "/auth/login", json={"email": email, "password": password},
                           timeout=30).json()["accessToken"]
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def check(self, sha1: str, client: httpx.Client | None = None) -> dict:
        """Immich's bulk-upload-check answer for one SHA-1 (as the owner behind `client`)."""
        body = {"assets": [{"id": "probe", "checksum": sha1}]}
        [result] = (client or self.http).post("/assets/bulk-upload-check", json=body).json()["results"]
        return result

    def asset_id(self, sha1: str, client: httpx.Client | None = None) -> str | None:
        result = self.check(sha1, client)
        return result.get("assetId") if result.get("reason") == "duplicate" else None

    def asset(self, asset_id: str, client: httpx.Client | None = None) -> dict:
        response = (client or self.http).get(f"/assets/{asset_id}")
        response.raise_for_status()
        return response.json()

    def albums_of(self, asset_id: str, client: httpx.Client | None = None) -> list[dict]:
        return (client or self.http).get("/albums", params={"assetId": asset_id}).json()

    def created_at_settled(self, asset_id: str, client: httpx.Client | None = None, timeout: float = 60) -> str:
        """`fileCreatedAt` once Immich's metadata job has run (it overrides what was sent with the file's own)."""
        deadline = time.monotonic() + timeout
        while True:
            asset = self.asset(asset_id, client)
            if asset.get("exifInfo") and (asset["exifInfo"].get("fileSizeInByte") or time.monotonic() > deadline):
                return asset["fileCreatedAt"]
            if time.monotonic() > deadline:
                raise AssertionError(f"Immich never extracted the metadata of {asset_id}")
            time.sleep(0.2)

    def upload_files(self, user_id: str) -> list[Path]:
        """Every file in the user's folder of Immich's upload area (where partial uploads would stay)."""
        folder = ROOT / "library" / "upload" / user_id
        return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []

    def delete_assets(self, ids: list[str], force: bool, client: httpx.Client | None = None) -> None:
        (client or self.http).request("DELETE", "/assets", json={"ids": ids, "force": force}).raise_for_status()


def unique_copy(source: Path, target: Path) -> Path:
    """`source` with a few random bytes added where readers ignore them, so Immich sees a new file
    (a new SHA-1) with the same embedded date: after a JPEG's end marker, or as a trailing ISO-BMFF
    `free` box (MP4, MOV, HEIC)."""
    data = source.read_bytes()
    noise = os.urandom(16)
    if data[:2] == b"\xff\xd8":
        data += noise
    else:
        data += struct.pack(">I4s", 8 + len(noise), b"free") + noise
    target.write_bytes(data)
    return target


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()
