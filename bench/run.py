"""Benchmark: Immich Drop against uploading straight to the same Immich, and against the disk.

    uv run python bench/run.py                     # workloads a to f against the fake Immich
    uv run python bench/run.py --workloads a       # one of them
    uv run python bench/run.py --profile           # also profile the server under workload c (py-spy,
                                                   # summed up by bench/hotspots.py)
    uv run python bench/run.py --repeat 3          # each workload 3 times; the median
    BENCH_CHUNK_MIB=32 uv run python bench/run.py  # guests send 32 MiB PATCHes (CHUNK_SIZE; default 8)
    BENCH_FILES=20 uv run python bench/run.py      # 20 photos / small files instead of 200 (a quick look)
    BENCH_TUS_STORAGE=library uv run python bench/run.py   # the tuspyserver column with its own storage
    BENCH_LINK=invite uv run python bench/run.py   # guests come through an invite link into an album
                                                   # (needs the real Immich peer: its owner signs in)
    IMMICH_BASE_URL=http://host:2283/api IMMICH_API_KEY=… uv run python bench/run.py   # a real Immich
                                                   # (its CPU counted from the pid files under
                                                   # IMMICH_PEER_ROOT, default /tmp/immich)

Workloads: (a) one 1 GiB video from one guest; (b) 200 photos of 3–6 MiB from 8 guests at once;
(c) both at once; (d) and (e) one 100 MiB and one 2 GiB video, to show the memory does not grow with
the file; (f) 200 files of 100 kB one after another from one guest, where per-file costs show. For
each, a fresh server process (SQLite, default settings) and, unless a real Immich is given, a fresh
fake Immich (also a process) are started; guests upload with tus in CHUNK_SIZE PATCHes and watch
the status channel; the clock runs from the first byte to the last asset confirmed by Immich.
Measured: wall time, the time after the last byte, tus ingest MB/s, the server's peak RSS (VmHWM),
its CPU seconds per GB and per file, Immich's CPU, and event-loop lag as /healthz latency (p50/p99,
sampled every 20 ms from a process of its own). The same files go straight to Immich with the same
concurrency (our streaming client, with the same sampler loading Immich's ping), and are written to
the same disk as the guests send them (one writer per guest, fsync per file). Two more references
receive the same uploads: bench/bare_server.py (the HTTP stack doing the least a tus-shaped upload
needs) and bench/tus_server.py (tuspyserver with our storage and nothing else), to tell the stack's
share of the time from the library's and from ours; and tuspyserver alone receives them while the
direct upload runs at the same time (bench/direct.py), a relay with no work of its own: about the
least the ratio can be. Repetitions rotate: each starts one workload later, and every other one runs its
steps (drop, direct, tuspyserver beside direct, disk, bare, tuspyserver) in reverse.
Results go to bench/results/ as JSON (every run) and Markdown (the tables with what each column
means): latest.*, or latest-invite.* with BENCH_LINK=invite. Files are generated once into
bench/data/ (up to about 4.1 GB; data/ is git-ignored), only those the chosen workloads need. Not
part of the test suite; bench/README.md has the findings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
MiB = 1024 * 1024
CHUNK = int(os.environ.get("BENCH_CHUNK_MIB", "8")) * MiB
FILES = int(os.environ.get("BENCH_FILES", "200"))  # photos in (b) and (c), small files in (f): fewer for a quick look
# How guests arrive: the public upload page, or an invite link into an album (what most owners hand
# out; each file then also costs reading the invite and its owner's key, and an album addition).
LINK = os.environ.get("BENCH_LINK", "public")
INVITE_ALBUM = "Immich Drop bench"
PEER_ROOT = Path(os.environ.get("IMMICH_PEER_ROOT", "/tmp/immich"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, str(ROOT / "src"))
from immich_drop.immich import ImmichClient  # noqa: E402
from immich_drop.config import Settings  # noqa: E402
from immich_drop.media import sha1_file  # noqa: E402
from immich_drop.relay import relayed  # noqa: E402


# --- inputs ----------------------------------------------------------------------------------
VIDEOS = {"video": 1024 * MiB, "video-100m": 100 * MiB, "video-2g": 2048 * MiB}


JPEG = b"\xff\xd8\xff\xe0"  # how a JPEG starts (SOI, then an APP0 marker)


def make_files(workloads: list[str]) -> dict[str, list[Path]]:
    """The videos and the photos the workloads need, made once: distinct first bytes (distinct SHA-1),
    random payload. Videos are laid out as phones write them (ftyp, a big mdat, then moov with the
    movie header), so the server reads their date as it would a real one."""
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261123)
    block = rng.randbytes(MiB)
    photos = [DATA / f"photo-{i:03}.jpg" for i in range(200)]
    sizes = [rng.randint(3 * MiB, 6 * MiB) for _ in photos]
    photos, sizes = photos[:FILES], sizes[:FILES]
    for path, size in zip(photos, sizes):
        if {"b", "c"} & set(workloads) and not made(path, size, JPEG):
            write_file(path, JPEG + path.name.encode().ljust(64, b"\0"), size - 64 - len(JPEG), b"", block)
    small = [DATA / f"small-{i:03}.jpg" for i in range(FILES)]
    for path in small:
        if "f" in workloads and not made(path, 100_000, JPEG):
            write_file(path, JPEG + path.name.encode().ljust(64, b"\0"), 100_000 - 64 - len(JPEG), b"", block)
    videos = {}
    needed = {"video": "ac", "video-100m": "d", "video-2g": "e"}
    for name, size in VIDEOS.items():
        path = videos[name] = DATA / f"{name}.mp4"
        if set(needed[name]) & set(workloads) and not (path.exists() and path.stat().st_size == size):
            ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"mp42", 0, b"mp42", b"isom")
            mac = int(time.time()) + 2082844800  # QuickTime's epoch is 1904
            moov = struct.pack(">I4sI4sBxxxIIII", 116, b"moov", 108, b"mvhd", 0, mac, mac, 600, 0) + bytes(80)
            payload = size - len(ftyp) - 16 - len(moov) - 64
            head = ftyp + struct.pack(">I4sQ", 1, b"mdat", 16 + 64 + payload) + path.name.encode().ljust(64, b"\0")
            write_file(path, head, payload, moov, block)
    return {**{name: [path] for name, path in videos.items()}, "photos": photos, "small": small}


def made(path: Path, size: int, start: bytes) -> bool:
    """Whether a file made by an earlier run can be used again (photos made before they began as
    JPEGs are made again, so every run sends the same bytes)."""
    if not (path.exists() and path.stat().st_size == size):
        return False
    with open(path, "rb") as fh:
        return fh.read(len(start)) == start


def name_offset(path: Path) -> int:
    """Where the file's 64-byte name field lies: after a JPEG's first marker in a photo (they begin
    as a JPEG does), after ftyp and mdat's header in a video."""
    return 24 + 16 if path.suffix == ".mp4" else len(JPEG)


def salt(paths: list[Path], tag: str) -> None:
    """Give every file new bytes (its name field becomes "name tag"), so a new SHA-1: a real Immich
    keeps what it received and would answer "duplicate" to a second run, or to the direct upload after
    ours, without storing anything. The fake starts empty each time and does not care."""
    for path in paths:
        with open(path, "r+b") as fh:
            fh.seek(name_offset(path))
            fh.write(f"{path.name} {tag}".encode()[:64].ljust(64, b"\0"))


def write_file(path: Path, head: bytes, payload: int, tail: bytes, block: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(head)
        while payload:
            n = min(payload, MiB)
            fh.write(block[:n] if n < MiB else block)
            payload -= n
        fh.write(tail)


# --- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, argv: list[str], env: dict, port: int, ready: str = "/healthz"):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:  # a benchmark may poll: nothing here is a test assertion
            try:
                if httpx.get(self.url + ready).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{argv} did not start")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return process_cpu(self.proc.pid)[0]

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def process_cpu(pid: int) -> tuple[float, int]:
    """(CPU seconds of `pid` including its reaped children, its parent's pid) from /proc; (0, 0) if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0
    return sum(int(f) for f in fields[11:15]) / CLK_TCK, int(fields[1])


class Peer:
    """The real Immich's processes, for their CPU time: its node server, PostgreSQL and Redis (found by
    their pid files under IMMICH_PEER_ROOT, see ../shared/immich/peer/) and all their descendants.
    Each process is counted with its reaped children (exiftool, ffmpeg, closed database
    connections), so the difference of two sums is the CPU the peer spent in between. The pid files
    are read at every count: a peer restarted in between (the test suite does that) makes the
    difference meaningless, and `CpuMeter` reports it as NaN."""

    def __init__(self, root: Path):
        self.root = root
        if not self._roots():
            raise RuntimeError(f"no pid files of an Immich peer under {root}")

    def _roots(self) -> frozenset[int]:
        roots = set()
        for name in ("immich.pid", "redis.pid", "pgdata/postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                roots.add(int((self.root / name).read_text().split()[0]))
        return frozenset(roots)

    def cpu_seconds(self) -> float:
        self.roots = self.generation = self._roots()
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                cpu[int(entry)], parents[int(entry)] = process_cpu(int(entry))
        total = 0.0
        for pid in cpu:
            ancestor = pid
            while ancestor and ancestor not in self.roots:
                ancestor = parents.get(ancestor, 0)
            if ancestor:
                total += cpu[pid]
        return total


def peer_credentials(root: Path) -> dict[str, str]:
    """The peer's CREDENTIALS.txt (KEY=value lines) as a dict; empty if there is none."""
    creds = {}
    with contextlib.suppress(OSError):
        for line in (root / "CREDENTIALS.txt").read_text().splitlines():
            key, _, value = line.partition("=")
            creds[key.strip()] = value.strip()
    return creds


class PeerKeeper:
    """Housekeeping on a real Immich between the measured steps, with the peer's all-permission key
    (API_KEY_ALL in IMMICH_PEER_ROOT/CREDENTIALS.txt): Immich's background jobs (metadata,
    thumbnails) for one step's files ran on into the next step and were counted as its Immich CPU,
    and every run left its files in Immich's library (67 GB after a day of runs, a full disk).
    `forget(paths)` deletes the assets with those files' bytes (force, so the files go too) and
    `settle()` waits until every queue is empty. Without the credentials it does nothing. With an
    invite link the files land in the peer's second user's library (the link's owner), so
    `forget` signs in as that user too, and also removes the album and the API key each run's
    fresh server made for that user."""

    def __init__(self, root: Path, base_url: str):
        creds = peer_credentials(root)
        self.key = creds.get("API_KEY_ALL")
        self.http = httpx.Client(base_url=base_url, headers={"x-api-key": self.key or ""}, timeout=120)
        self.owner = None
        if not self.key:
            print(f"no API_KEY_ALL in {root}/CREDENTIALS.txt: Immich's queues are not waited for and "
                  "the benchmark's files stay in its library", file=sys.stderr)
        elif LINK == "invite":
            token = httpx.post(base_url + "/auth/login", json={"email": creds["OWNER_EMAIL"],
                                                               "password": creds["OWNER_PASSWORD"]})
            self.owner = httpx.Client(base_url=base_url, timeout=120, headers={
                "Authorization": "Bearer " + token.raise_for_status().json()["accessToken"]})

    def settle(self, timeout: float = 600) -> None:
        """Until no queue has a job waiting, delayed or active, twice in a row (a job can queue the next)."""
        deadline, quiet = time.monotonic() + timeout, 0
        while self.key and quiet < 2 and time.monotonic() < deadline:
            queues = self.http.get("/queues").raise_for_status().json()
            busy = sum(q["statistics"][k] for q in queues for k in ("active", "waiting", "delayed"))
            quiet = quiet + 1 if busy == 0 else 0
            time.sleep(0.25)

    def forget(self, paths: list[Path]) -> None:
        if not self.key:
            return
        checksums = [sha1_file(p) for p in paths]
        for http in (self.http, self.owner) if self.owner else (self.http,):
            ids = []
            for start in range(0, len(paths), 100):
                batch = [{"id": str(i), "checksum": c} for i, c in enumerate(checksums[start:start + 100])]
                results = http.post("/assets/bulk-upload-check", json={"assets": batch}).raise_for_status()
                ids += [r["assetId"] for r in results.json()["results"] if r.get("assetId")]
            if ids:
                http.request("DELETE", "/assets", json={"ids": ids, "force": True}).raise_for_status()
        if self.owner:
            self.settle()  # the assets' deletion jobs first: deleting their album meanwhile deadlocked Immich's database
            for album in self.owner.get("/albums").raise_for_status().json():
                if album["albumName"] == INVITE_ALBUM:
                    self.owner.delete(f"/albums/{album['id']}").raise_for_status()
            for key in self.owner.get("/api-keys").raise_for_status().json():
                if key["name"].startswith("Immich Drop invites"):
                    self.owner.delete(f"/api-keys/{key['id']}").raise_for_status()
        self.settle()


class CpuMeter:
    """CPU seconds spent by every process of a run (server, Immich, this client) between start and stop:
    on a small machine they share the cores, so their sum divided by the cores bounds the wall time."""

    def __init__(self, **servers):
        self.servers = {name: s for name, s in servers.items() if s is not None}
        self.before = {name: s.cpu_seconds() for name, s in self.servers.items()} | {"client": time.process_time()}
        self.generations = {name: getattr(s, "generation", None) for name, s in self.servers.items()}

    def stop(self) -> dict[str, float]:
        now = {name: s.cpu_seconds() for name, s in self.servers.items()} | {"client": time.process_time()}
        restarted = {name for name, s in self.servers.items() if getattr(s, "generation", None) != self.generations[name]}
        return {name: float("nan") if name in restarted else round(now[name] - self.before[name], 2) for name in now}


def start_immich(real: tuple[str, str] | None, peer: Peer | None) -> tuple[str, str, Server | None, object]:
    """(base URL, key, the fake Immich's process to stop or None, what to count Immich's CPU on)."""
    if real:
        return real[0], real[1], None, peer
    key, port = "bench-" + os.urandom(8).hex(), free_port()
    fake = Server([sys.executable, str(ROOT / "bench" / "fake_server.py"), str(port), key], {}, port, "/api/server/ping")
    return f"{fake.url}/api", key, fake, fake


# --- clients ---------------------------------------------------------------------------------
def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def chunks(path: Path):
    """`(offset, bytes)` of the file in CHUNK pieces, read in a thread: what a guest's PATCHes carry."""
    with open(path, "rb") as fh:
        offset = 0
        while data := await asyncio.to_thread(fh.read, CHUNK):
            yield offset, data
            offset += len(data)


async def tus_upload(http: httpx.AsyncClient, create_url: str, path: Path, headers: dict, metadata: str) -> None:
    """One file by tus, as tus-js-client sends it: the creation POST, then the PATCHes one by one."""
    headers = {**headers, "Tus-Resumable": "1.0.0"}
    created = await http.post(create_url, headers={
        **headers, "Upload-Length": str(path.stat().st_size), "Upload-Metadata": metadata})
    created.raise_for_status()
    async for offset, data in chunks(path):
        (await http.patch(created.headers["Location"], content=data, headers={
            **headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
         ).raise_for_status()


class Guest:
    """One phone: a session cookie, a status channel, and tus uploads one file at a time."""

    def __init__(self, base: str, entry: str = "/", invite: str | None = None):
        self.base, self.entry, self.invite = base, entry, invite
        self.http = httpx.AsyncClient(timeout=300)
        self.final: dict[str, str] = {}
        self.first_delivery: float | None = None
        self.last_final: float = 0.0
        self.done = asyncio.Event()
        self.expected = 0

    async def open(self) -> None:
        (await self.http.get(self.base + self.entry)).raise_for_status()
        self.cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.ws = await ws_connect(self.base.replace("http", "ws") + "/ws", additional_headers={"Cookie": self.cookie},
                                   max_size=None)
        self.listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for message in self.ws:
            event = json.loads(message)
            state = event.get("state")
            if state in ("hashing", "uploading") and self.first_delivery is None:
                self.first_delivery = time.time()
            if state in ("done", "duplicate", "failed"):
                self.final[event["id"]] = state
                self.last_final = time.time()
                if len(self.final) >= self.expected:
                    self.done.set()

    async def upload(self, path: Path) -> None:
        invite = f",invite {b64(self.invite)}" if self.invite else ""
        await tus_upload(self.http, self.base + "/api/uploads", path, {"Cookie": self.cookie},
                         f"filename {b64(path.name)},filetype {b64('application/octet-stream')}{invite}")

    async def close(self) -> None:
        self.listener.cancel()
        await self.ws.close()
        await self.http.aclose()


class HealthSampler:
    """bench/sampler.py in its own process: the latency of `url` (our /healthz; Immich's ping while the
    direct upload runs, so both runs carry the same extra load) while the workload runs."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sampler.py"), url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the sampler could not reach {url}")

    def stop(self) -> list[float]:
        out, _ = self.proc.communicate("", timeout=60)
        return json.loads(out)


class Extra:
    """The extra load every step that sends to Immich carries, so they compare: the sampler on the
    step's own server (`url`: our /healthz, Immich's ping, or tuspyserver's "/"), and the same sampler on a server doing
    nothing (bench/bare_server.py, the same uvicorn stack), whose latency is what the machine's
    scheduling alone adds meanwhile. Both are sampling when this returns."""

    def __init__(self, url: str, tmp: Path):
        port = free_port()
        self.idle = Server([sys.executable, str(ROOT / "bench" / "bare_server.py"), str(port), str(tmp / "idle")],
                           {}, port, ready="/healthz")
        self.idle_sampler = HealthSampler(self.idle.url + "/healthz")
        self.sampler = HealthSampler(url)
        self.result: tuple[list[float], list[float]] | None = None

    def stop(self) -> tuple[list[float], list[float]]:
        """(the step's own latencies, the idle server's) in ms; stops everything (again: a no-op)."""
        if self.result is None:
            self.result = self.sampler.stop(), self.idle_sampler.stop()
            self.idle.stop()
        return self.result


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]


def lanes(workload: str, files: dict[str, list[Path]]) -> list[list[Path]]:
    """Who sends what: one lane per guest, each lane's files one after another."""
    photo_lanes = [files["photos"][i::8] for i in range(8)]
    return {"a": [files["video"]], "b": photo_lanes, "c": [files["video"], *photo_lanes],
            "d": [files["video-100m"]], "e": [files["video-2g"]], "f": [files["small"]]}[workload]


async def open_invite(base: str) -> tuple[str, str]:
    """The peer's owner signs in to our server and makes an invite link (unlimited, into an album):
    (the guests' entry path, the link's token)."""
    creds = peer_credentials(PEER_ROOT)
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        signed_in = (await admin.post("/api/login", json={"email": creds["OWNER_EMAIL"],
                                                          "password": creds["OWNER_PASSWORD"]})).raise_for_status()
        made = await admin.post("/api/invites", headers={"X-CSRF-Token": signed_in.json()["csrfToken"]},
                                json={"label": "bench", "album": {"name": INVITE_ALBUM}, "maxUses": None,
                                      "expiresInDays": 1})
        token = made.raise_for_status().json()["link"].rsplit("/", 1)[-1]
    return f"/i/{token}", token


# --- one workload --------------------------------------------------------------------------
async def through_drop(workload: str, files, real, peer, tmp: Path, profile: bool | str) -> dict:
    immich_url, key, fake, immich = start_immich(real, peer)
    port = free_port()
    env = {"DATA_DIR": str(tmp / "drop"), "IMMICH_BASE_URL": immich_url, "IMMICH_API_KEY": key,
           "PUBLIC_UPLOAD_PAGE_ENABLED": "true" if LINK == "public" else "false", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning",
           "SESSION_SECRET": "bench", "CHUNK_SIZE": str(CHUNK)}
    server = Server([sys.executable, "-m", "immich_drop"], env, port)
    spy = extra = None
    if profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--format", "raw", "--rate", "100", "--threads",
                                "--output", str(RESULTS / f"profile-{workload}.txt"), "--nonblocking",
                                *(["--gil"] if profile == "gil" else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        plan = lanes(workload, files)
        entry, invite = await open_invite(server.url) if LINK == "invite" else ("/", None)
        guests = [Guest(server.url, entry, invite) for _ in plan]
        for guest, lane in zip(guests, plan):
            guest.expected = len(lane)
            await guest.open()
        total = sum(p.stat().st_size for lane in plan for p in lane)
        extra = Extra(server.url + "/healthz", tmp)
        cpu_before, meter = server.cpu_seconds(), CpuMeter(server=server, immich=immich)
        started = time.time()

        async def send(guest: Guest, lane: list[Path]) -> float:
            for path in lane:
                await guest.upload(path)
            return time.time()

        ingested = max(await asyncio.gather(*(send(g, lane) for g, lane in zip(guests, plan))))
        await asyncio.wait_for(asyncio.gather(*(g.done.wait() for g in guests)), timeout=3600)
        finished = max(g.last_final for g in guests)
        cpu = meter.stop()
        latencies, idle_latencies = extra.stop()
        outcomes = [state for g in guests for state in g.final.values()]
        for guest in guests:
            await guest.close()
        return {
            "bytes": total, "files": len(outcomes), "outcomes": {s: outcomes.count(s) for s in set(outcomes)},
            "wall_seconds": finished - started,
            "ingest_mb_s": total / MiB / (ingested - started),
            # From the guests' last byte to the last asset Immich confirmed: what a store-and-forward
            # server adds at the end, and what relaying while the bytes arrive takes away.
            "after_last_byte_seconds": finished - ingested,
            "end_to_end_mb_s": total / MiB / (finished - started),
            "peak_rss_mb": server.peak_rss_mb(),
            "cpu_seconds_per_gb": (server.cpu_seconds() - cpu_before) / (total / 1024**3),
            "healthz_p50_ms": statistics.median(latencies),
            "healthz_p99_ms": p99(latencies),
            "healthz_samples": len(latencies),
            "idle_healthz_p99_ms": p99(idle_latencies),
            "cpu_seconds": cpu,
        }
    finally:
        if extra:
            extra.stop()
        if spy:
            spy.send_signal(2)
            spy.wait(30)
        server.stop()
        if fake:
            fake.stop()


async def straight_to_immich(workload: str, files, real, peer, tmp: Path) -> dict:
    immich_url, key, fake, immich = start_immich(real, peer)
    extra = None
    try:
        plan = lanes(workload, files)
        client = ImmichClient(immich_url, timeout=600, senders=0)
        extra = Extra(immich_url + "/server/ping", tmp)  # the same extra load as our run carries
        meter = CpuMeter(immich=immich)
        started = time.time()

        async def send(lane: list[Path]) -> None:
            for path in lane:
                await client.upload_asset(key, path, path.stat().st_size, filename=path.name,
                                          created_at="2026-11-23T12:00:00.000Z", modified_at="2026-11-23T12:00:00.000Z")

        await asyncio.gather(*(send(lane) for lane in plan))
        elapsed = time.time() - started
        cpu = meter.stop()
        latencies, _ = extra.stop()
        await client.aclose()
        return {"wall_seconds": elapsed, "cpu_seconds": cpu,
                "ping_p99_ms": p99(latencies)}
    finally:
        if extra:
            extra.stop()
        if fake:
            fake.stop()


async def reference_stack(workload: str, files, script: str, args: list[str], upload, alongside=None,
                          sampled: Path | None = None) -> dict:
    """Run the workload's lanes, same concurrency, against `python bench/<script> PORT *args`;
    `upload(http, url, path)` sends one file. MB/s, wall seconds, CPU of that server and the client.
    `alongside()`, if given, runs from the same start and returns when it ended (`time.time()`): its
    seconds from the start come back as "alongside_seconds". With `sampled` (a folder for the idle
    server), the server's "/" carries the sampler the other steps carry (`Extra`): its p99 and the idle
    server's come back as "p99_ms" and "idle_p99_ms"."""
    port = free_port()
    server = Server([sys.executable, str(ROOT / "bench" / script), str(port), *args], {}, port, "/")
    extra = None
    try:
        plan = lanes(workload, files)
        clients = [httpx.AsyncClient(timeout=300) for _ in plan]  # made before the clock starts (an SSL context each)
        extra = Extra(server.url + "/", sampled) if sampled else None
        meter = CpuMeter(bare=server)
        started = time.time()

        async def send(http: httpx.AsyncClient, lane: list[Path]) -> float:
            for path in lane:
                await upload(http, server.url, path)
            return time.time()

        ends = await asyncio.gather(*(send(http, lane) for http, lane in zip(clients, plan)),
                                    *([alongside()] if alongside else []))
        received = max(ends[:len(plan)])
        cpu = meter.stop()
        latencies = extra.stop() if extra else None
        for http in clients:
            await http.aclose()
        return {"mb_s": sum(p.stat().st_size for lane in plan for p in lane) / MiB / (received - started),
                "seconds": received - started, "cpu_seconds": cpu,
                **({"alongside_seconds": ends[-1] - started} if alongside else {}),
                **({"p99_ms": p99(latencies[0]), "idle_p99_ms": p99(latencies[1])} if latencies else {})}
    finally:
        if extra:
            extra.stop()
        server.stop()


async def bare_stack(workload: str, files, tmp: Path) -> dict:
    """The same requests (a creation POST, then the PATCHes) into bench/bare_server.py: the HTTP
    stack's ceiling for a tus-shaped upload."""
    async def upload(http: httpx.AsyncClient, base: str, path: Path) -> None:
        created = await http.post(f"{base}/f", headers={"X-Name": path.name})
        created.raise_for_status()
        size = path.stat().st_size
        async for offset, data in chunks(path):
            last = "1" if offset + len(data) >= size else "0"
            (await http.patch(base + created.headers["location"], content=data,
                              headers={"Upload-Final": last})).raise_for_status()

    return await reference_stack(workload, files, "bare_server.py", [str(tmp / "bare")], upload)


async def tus_stack(workload: str, files, tmp: Path, alongside=None, sampled: Path | None = None) -> dict:
    """The same tus requests into bench/tus_server.py: tuspyserver with our storage and nothing else,
    the ceiling of the tus library the product is built on."""
    async def upload(http: httpx.AsyncClient, base: str, path: Path) -> None:
        await tus_upload(http, base + "/files", path, {}, f"filename {b64(path.name)}")

    library = ["library"] if os.environ.get("BENCH_TUS_STORAGE") == "library" else []
    return await reference_stack(workload, files, "tus_server.py", [str(tmp / "tus"), *library], upload, alongside,
                                 sampled)


async def tus_beside_direct(workload: str, files, real, peer, tmp: Path) -> dict:
    """tuspyserver alone receiving the files while the direct upload (bench/direct.py, a process of its
    own) sends them to Immich, both from the same moment: a relay built on tuspyserver that costs
    nothing of its own. Ours cannot end sooner than the later of the two ends ("seconds"). Its own "/"
    carries the sampler ours does: the event loop's lag of a relay that does nothing of its own here
    ("p99_ms", beside the idle server's "idle_p99_ms")."""
    immich_url, key, fake, _ = start_immich(real, peer)
    folder = tmp / "beside"
    direct = subprocess.Popen([sys.executable, str(ROOT / "bench" / "direct.py"), immich_url, key],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        direct.stdin.write(json.dumps([[str(p) for p in lane] for lane in lanes(workload, files)]) + "\n")
        direct.stdin.flush()
        if direct.stdout.readline().strip() != "ready":
            raise RuntimeError("bench/direct.py did not start")

        async def send_direct() -> float:
            direct.stdin.write("go\n")
            direct.stdin.flush()
            line = await asyncio.to_thread(direct.stdout.readline)
            if not line:
                raise RuntimeError("bench/direct.py failed (its error is above)")
            return json.loads(line)["ended"]

        # the same extra load as the other steps carry, on tuspyserver's own "/"
        out = await tus_stack(workload, files, folder, alongside=send_direct, sampled=tmp)
        return {"seconds": max(out["seconds"], out["alongside_seconds"]), "received_seconds": out["seconds"],
                "direct_seconds": out["alongside_seconds"], "p99_ms": out["p99_ms"], "idle_p99_ms": out["idle_p99_ms"]}
    finally:
        direct.kill()
        direct.wait()
        if fake:
            fake.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def measure(name: str, files, real, peer, keeper: PeerKeeper | None, profile: bool | str,
                  repetition: int) -> dict:
    """One repetition of one workload: through Immich Drop, straight to Immich, tuspyserver beside the
    direct upload, the disk, the bare stack, tuspyserver alone. Every other repetition runs these steps in reverse order, so neither the drop
    nor the direct run always comes first (a slow start, or a warm cache, favours neither)."""
    plan = lanes(name, files)
    paths = [p for lane in plan for p in lane]
    run_id = os.urandom(6).hex()
    result: dict = {"repetition": repetition}
    if keeper:
        await asyncio.to_thread(keeper.settle)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        async def with_jobs(run) -> tuple[dict, float]:
            """The step's result, and Immich's CPU from its start until Immich's queues are empty
            again: the metadata and thumbnail jobs for the files, which outlast a shorter run."""
            before = peer.cpu_seconds() if keeper else float("nan")
            generation = peer.generation if keeper else None
            out = await run
            if not keeper:
                return out, float("nan")
            await asyncio.to_thread(keeper.settle)
            after = peer.cpu_seconds()
            jobs = after - before if peer.generation == generation else float("nan")  # NaN: Immich restarted
            await asyncio.to_thread(keeper.forget, paths)
            return out, jobs

        async def drop() -> None:
            salt(paths, run_id + " drop")
            out, result["immich_cpu_with_jobs"] = await with_jobs(
                through_drop(name, files, real, peer, Path(tmp), profile))
            result.update(out)

        async def direct() -> None:
            salt(paths, run_id + " direct")
            out, result["direct_immich_cpu_with_jobs"] = await with_jobs(
                straight_to_immich(name, files, real, peer, Path(tmp)))
            result.update(direct_seconds=out["wall_seconds"], direct_cpu_seconds=out["cpu_seconds"],
                          direct_ping_p99_ms=out["ping_p99_ms"])

        async def disk() -> None:
            result["disk_seconds"] = await asyncio.to_thread(disk_write, Path(tmp), plan)

        async def bare() -> None:
            out = await bare_stack(name, files, Path(tmp))
            result.update(stack_mb_s=out["mb_s"], stack_seconds=out["seconds"], stack_cpu_seconds=out["cpu_seconds"])

        async def tus() -> None:
            out = await tus_stack(name, files, Path(tmp))
            result.update(tus_mb_s=out["mb_s"], tus_seconds=out["seconds"], tus_cpu_seconds=out["cpu_seconds"])

        async def beside() -> None:
            salt(paths, run_id + " beside")
            out, result["beside_immich_cpu_with_jobs"] = await with_jobs(
                tus_beside_direct(name, files, real, peer, Path(tmp)))
            result.update(beside_seconds=out["seconds"], beside_received_seconds=out["received_seconds"],
                          beside_direct_seconds=out["direct_seconds"], beside_healthz_p99_ms=out["p99_ms"],
                          beside_idle_healthz_p99_ms=out["idle_p99_ms"])

        steps = [drop, direct, beside, disk, bare, tus]
        for step in steps if repetition % 2 == 0 else steps[::-1]:
            # the previous step's gigabytes written out first, so no step pays for the one before's writeback
            await asyncio.to_thread(os.sync)
            await step()
    total = result["bytes"]
    result["order"] = "forward" if repetition % 2 == 0 else "reverse"
    result["ratio_to_direct"] = result["wall_seconds"] / result["direct_seconds"]
    result["disk_mb_s"] = total / MiB / result["disk_seconds"]
    result["ingest_to_disk"] = result["ingest_mb_s"] / result["disk_mb_s"]
    result["ingest_to_stack"] = result["ingest_mb_s"] / result["stack_mb_s"]
    result["tus_to_disk"] = result["tus_mb_s"] / result["disk_mb_s"]
    # tuspyserver only receiving the files, against the whole direct upload: no relay built around
    # it can end sooner than it receives.
    result["tus_ratio"] = result["tus_seconds"] / result["direct_seconds"]
    # tuspyserver receiving while the direct upload sends, both at once: a relay with no work of its own
    result["beside_ratio"] = result["beside_seconds"] / result["direct_seconds"]
    # The least any relay on this stack and machine could take, with perfect overlap: it receives
    # (at best like the bare server, with its client), hashes (the product needs the SHA-1) and
    # sends (at best like the direct client, with Immich's own CPU counted), and all of that CPU fits
    # into the cores; nor can it receive faster than the bare server, nor deliver sooner than the
    # direct upload does (it has to send the same files to the same Immich).
    is_relayed = [relayed(p.stat().st_size, p.name, Settings.stream_min_size) for p in paths]
    relayed_sha1 = sha1_cpu([p for p, r in zip(paths, is_relayed) if r])
    result["sha1_cpu_seconds"] = relayed_sha1 + sha1_cpu([p for p, r in zip(paths, is_relayed) if not r])
    cpu = sum(result["stack_cpu_seconds"].values()) + sum(result["direct_cpu_seconds"].values()) \
        + result["sha1_cpu_seconds"]
    result["cpu_floor_ratio"] = cpu / os.cpu_count() / result["direct_seconds"]
    result["floor_ratio"] = max(1.0, result["stack_seconds"] / result["direct_seconds"], result["cpu_floor_ratio"]) \
        if cpu == cpu else float("nan")  # NaN: Immich was restarted during the direct run, its CPU unknown
    # The same work done by the parts on their own, measured in this repetition: tuspyserver alone
    # receiving (hashing what the product hashes while receiving), the SHA-1 of the videos the relay
    # hashes, and the direct client's CPU sending the files to Immich. Not a floor (the product
    # receives through its own HTTP edge, and can do better than the library), but the price of the
    # parts it is built from before any work of its own.
    result["parts_cpu_per_gb"] = (result["tus_cpu_seconds"]["bare"] + relayed_sha1
                                  + result["direct_cpu_seconds"]["client"]) / (total / 1024**3)
    return result


RANGED = ("ratio_to_direct", "wall_seconds", "direct_seconds", "ingest_to_disk", "tus_to_disk", "tus_ratio",
          "floor_ratio", "beside_ratio", "cpu_seconds_per_gb", "peak_rss_mb", "healthz_p99_ms", "idle_healthz_p99_ms",
          "after_last_byte_seconds", "beside_healthz_p99_ms", "parts_cpu_per_gb")


def summarise(results: list[dict]) -> dict:
    """The repetition with the median ratio to direct (the lower middle one for an even count; a real
    run, so its columns agree with each other), plus the ranges of the ratios, RSS and p99 over all
    repetitions: this machine moves 20-50 % between runs of the same code."""
    chosen = dict(sorted(results, key=lambda r: r["ratio_to_direct"])[(len(results) - 1) // 2])
    chosen["repetitions"] = len(results)
    known = {key: [r[key] for r in results if r[key] == r[key]] or [float("nan")] for key in RANGED}  # NaN: not measured
    chosen["ranges"] = {key: [min(values), max(values)] for key, values in known.items()}
    return chosen


def sha1_cpu(paths: list[Path]) -> float:
    """CPU seconds to SHA-1 the files (read from the page cache in 1 MiB pieces, as the server does)."""
    started = time.process_time()
    for path in paths:
        sha1_file(path)
    return time.process_time() - started


def disk_write(directory: Path, plan: list[list[Path]]) -> float:
    """Seconds to write the workload's files to `directory` as the guests send them: the same sizes,
    one writer per guest, 1 MiB pieces, each file fsynced when complete (what staging does)."""
    block = os.urandom(MiB)
    sizes = [[path.stat().st_size for path in lane] for lane in plan]

    def write_lane(number: int) -> None:
        for index, size in enumerate(sizes[number]):
            with open(directory / f"disk-{number}-{index}", "wb") as fh:
                while size > 0:
                    fh.write(block if size >= MiB else block[:size])
                    size -= MiB
                fh.flush()
                os.fsync(fh.fileno())

    with ThreadPoolExecutor(len(plan)) as pool:
        started = time.time()
        list(pool.map(write_lane, range(len(plan))))
        elapsed = time.time() - started
    for number, lane in enumerate(sizes):
        for index in range(len(lane)):
            (directory / f"disk-{number}-{index}").unlink()
    return elapsed


def machine() -> dict:
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 1024**2, 1),
            "python": platform.python_version(), "kernel": platform.release(), "date": time.strftime("%Y-%m-%d")}


NAMES = {"a": "(a) one 1 GiB video", "b": f"(b) {FILES} photos, 8 guests", "c": "(c) a + b at once",
         "d": "(d) one 100 MiB video", "e": "(e) one 2 GiB video", "f": f"(f) {FILES} files of 100 kB, one guest"}


def _cell(r: dict, key: str, digits: int) -> str:
    """The median run's value, then the range over the repetitions."""
    low, high = r.get("ranges", {}).get(key, (r[key], r[key]))
    return f"{r[key]:.{digits}f}" + (f" ({low:.{digits}f}–{high:.{digits}f})" if r.get("repetitions", 1) > 1 else "")


# (header, what it means, value): the short table is the first SHORT columns; the legend is printed
# under each table, so a column never goes without its meaning.
COLUMNS = [
    ("ours s", "first byte sent by the guests to the last file confirmed by Immich, through Immich Drop",
     lambda r: _cell(r, "wall_seconds", 1)),
    ("direct s", "the same files sent straight to Immich's `POST /assets` by one client, with the same "
     "concurrency (no tus, no hashing): the least Immich needs for them here",
     lambda r: _cell(r, "direct_seconds", 1)),
    ("ratio", "ours over direct, from the same repetition", lambda r: _cell(r, "ratio_to_direct", 2)),
    ("floor: tuspyserver + direct at once", "tuspyserver alone receiving the files while the direct upload "
     "(from a process of its own) sends them to Immich, both started at the same moment, until the later of "
     "the two ends, over *direct s*: a relay built on tuspyserver with no work of its own (no guard, "
     "database, reading back or hashing beyond tuspyserver's): about the least *ratio* can be here, itself "
     "a measurement that moves from run to run as much as ours",
     lambda r: _cell(r, "beside_ratio", 2) if "beside_ratio" in r else "–"),
    ("server CPU s/GB", "CPU seconds (user + system) Immich Drop's process used, per GB received (a GiB, 2^30 bytes, the unit the issue's targets were set in)",
     lambda r: _cell(r, "cpu_seconds_per_gb", 1)),
    ("parts CPU s/GB: tuspyserver + SHA-1 + direct send", "the same work done by the parts the product is "
     "built from, on their own, in the same repetition: tuspyserver alone receiving the files (bench/tus_server.py, "
     "hashing what the product hashes while receiving), the SHA-1 of the videos the product relays (the relay "
     "hashes them), and the direct client's CPU sending the files to Immich, per GB; before any work of the "
     "product's own (guard, database, status channel, delivery), and not a floor: the product receives through "
     "its own HTTP edge",
     lambda r: _cell(r, "parts_cpu_per_gb", 1) if "parts_cpu_per_gb" in r else "–"),
    ("server CPU ms/file", "the same CPU time per file", lambda r: f"{r['cpu_seconds']['server'] / r['files'] * 1000:.0f}"),
    ("Immich CPU s ours / direct", "CPU seconds of Immich (for the real one: its node server, PostgreSQL and "
     "Redis with their descendants) during our run and during the direct one",
     lambda r: f"{r['cpu_seconds'].get('immich', float('nan')):.1f} / {r['direct_cpu_seconds'].get('immich', float('nan')):.1f}"),
    ("after last byte s", "from the guests' last byte to the last file confirmed by Immich",
     lambda r: _cell(r, "after_last_byte_seconds", 1)),
    ("peak RSS MB", "the server process's peak resident memory (VmHWM)", lambda r: _cell(r, "peak_rss_mb", 0)),
    ("/healthz p99 ms", "99th percentile latency of `/healthz`, asked every 20 ms by a process of its own "
     "during our run: the event loop's lag as a guest's page feels it", lambda r: _cell(r, "healthz_p99_ms", 1)),
    ("idle server p99 ms", "the same sampler, at the same time, against a server doing nothing (bench/bare_server.py, "
     "same HTTP stack): what the machine's scheduling alone adds, the least ours could show",
     lambda r: _cell(r, "idle_healthz_p99_ms", 1) if "idle_healthz_p99_ms" in r else "–"),
    ("floor p99 ms: tuspyserver + direct at once", "the same sampler against tuspyserver alone (its readiness "
     "route) while it receives the files beside the direct upload, as in the floor column: the lag of a relay "
     "with no work of its own, under the same load",
     lambda r: _cell(r, "beside_healthz_p99_ms", 1) if "beside_healthz_p99_ms" in r else "–"),
    ("floor ratio", "the least any relay could reach here, over direct: at least 1 (it sends the same files "
     "to the same Immich), at least the bare stack's receiving time, and at least all the CPU the work needs "
     "(receiving as the bare stack does, SHA-1, sending as the direct client does, Immich's own) spread "
     "over the cores", lambda r: _cell(r, "floor_ratio", 2)),
    ("Immich CPU with its jobs s ours / direct", "Immich's CPU seconds as above, but from the start of "
     "the run until its job queues are empty again (its metadata and thumbnail jobs for the files outlast a "
     "shorter run)",
     lambda r: f"{r.get('immich_cpu_with_jobs', float('nan')):.1f} / "
               f"{r.get('direct_immich_cpu_with_jobs', float('nan')):.1f}"),
    ("tuspyserver alone / direct", "tuspyserver with our storage and nothing else (bench/tus_server.py: no guard, "
     "database or delivery; hashing what the product hashes while receiving) receiving the same uploads, "
     "over the whole direct upload", lambda r: _cell(r, "tus_ratio", 2)),
    ("ingest MB/s", "MB received per second, first byte to the guests' last", lambda r: f"{r['ingest_mb_s']:.0f}"),
    ("end-to-end MB/s", "MB per second over our whole run", lambda r: f"{r['end_to_end_mb_s']:.0f}"),
    ("disk MB/s", "the same files written to the same disk, one writer per guest, fsync per file",
     lambda r: f"{r['disk_mb_s']:.0f}"),
    ("ingest/disk", "our ingest over the disk's", lambda r: _cell(r, "ingest_to_disk", 2)),
    ("tuspyserver MB/s", "tuspyserver alone's ingest", lambda r: f"{r['tus_mb_s']:.0f}"),
    ("bare stack MB/s", "bench/bare_server.py's ingest: uvicorn appending PATCH bodies to files, nothing else",
     lambda r: f"{r['stack_mb_s']:.0f}"),
    ("/healthz p50 ms", "the median of the same samples", lambda r: f"{r['healthz_p50_ms']:.1f}"),
    ("Immich ping p99 ms", "the same sampler pointed at Immich's `/server/ping` during the direct upload "
     "(every step that sends to Immich carries a sampler on its own server and one on an idle server, so "
     "they bear the same extra load)", lambda r: f"{r.get('direct_ping_p99_ms', float('nan')):.1f}"),
]
SHORT = 13


def table(report: dict, columns: list) -> str:
    rows = ["| workload | " + " | ".join(header for header, _, _ in columns) + " |",
            "| --- |" + " ---: |" * len(columns)]
    for name, r in report["workloads"].items():
        rows.append(f"| {NAMES[name]} | " + " | ".join(value(r) for _, _, value in columns) + " |")
    legend = "\n".join(f"- *{header}*: {meaning}." for header, meaning, _ in columns)
    return "\n".join(rows) + "\n\n" + legend + "\n"


def markdown(report: dict) -> str:
    m = report["machine"]
    repetitions = max(r.get("repetitions", 1) for r in report["workloads"].values())
    how = (f" Each row is the repetition with the median ratio of {repetitions}; brackets give the range over "
           "all of them; every other repetition ran its steps in reverse order." if repetitions > 1 else "")
    head = (f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
            f"Linux {m['kernel']}, {m['date']}; Immich: {report['immich']}; PATCH size {CHUNK // MiB} MiB; "
            f"{FILES} files in (b), (c) and (f); guests through "
            + ("the public upload page" if LINK == "public"
               else "an invite link into an album (ours also adds each file to it; direct does not)")
            + f".{how}\n\n")
    return (head + "Short (README):\n\n" + table(report, COLUMNS[:SHORT])
            + "\nAll columns:\n\n" + table(report, COLUMNS))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="a,b,c,d,e,f")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during workload c (or the last)")
    parser.add_argument("--gil", action="store_true", help="with --profile: sample only the thread holding the GIL")
    parser.add_argument("--repeat", type=int, default=1, help="run each workload N times; report the median")
    args = parser.parse_args()
    real = (os.environ["IMMICH_BASE_URL"], os.environ["IMMICH_API_KEY"]) \
        if os.environ.get("IMMICH_BASE_URL") and os.environ.get("IMMICH_API_KEY") else None
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if LINK not in ("public", "invite"):
        raise SystemExit(f"BENCH_LINK must be public or invite, not {LINK!r}")
    if LINK == "invite" and not (real and peer_credentials(PEER_ROOT).get("OWNER_PASSWORD")):
        raise SystemExit(f"BENCH_LINK=invite needs the real Immich peer (IMMICH_BASE_URL, IMMICH_API_KEY) and its "
                         f"owner's OWNER_EMAIL and OWNER_PASSWORD in {PEER_ROOT}/CREDENTIALS.txt")
    files = make_files(workloads)
    peer = Peer(PEER_ROOT) if real else None
    keeper = PeerKeeper(PEER_ROOT, real[0]) if real else None
    report = {"machine": machine(), "immich": "real, " + real[0] if real else "the fake Immich (tests/fake_immich.py)",
              "workloads": {}}
    profiled = "c" if "c" in workloads else workloads[-1]
    runs: dict[str, list[dict]] = {name: [] for name in workloads}
    for repetition in range(args.repeat):
        # round-robin, each repetition starting one workload later: a slow minute of the machine hits
        # one run of each, and no workload always runs first
        shift = repetition % len(workloads)
        for name in workloads[shift:] + workloads[:shift]:
            profile = args.profile and name == profiled and repetition == 0 and ("gil" if args.gil else True)
            result = await measure(name, files, real, peer, keeper, profile, repetition)
            runs[name].append(result)
            print(name, json.dumps(result), flush=True)
    report["workloads"] = {name: summarise(results) for name, results in runs.items()}
    report["runs"] = runs
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = "latest" if LINK == "public" else "latest-invite"  # each way in has its own last result
    (RESULTS / f"{latest}.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    if args.profile:
        from hotspots import report as profile_report  # bench/hotspots.py, beside this file

        text += "\nWhere the server's time goes (py-spy, busy samples):\n\n```\n" \
            + profile_report(RESULTS / f"profile-{profiled}.txt") + "\n```\n"
    (RESULTS / f"{latest}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
