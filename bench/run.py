"""Benchmark: Immich Drop against uploading straight to the same Immich, and against the disk.

    uv run python bench/run.py                     # workloads a to f against the fake Immich
    uv run python bench/run.py --workloads a       # one of them
    uv run python bench/run.py --profile           # also profile the server under workload c (py-spy,
                                                   # summed up by bench/hotspots.py)
    uv run python bench/run.py --repeat 3          # each workload 3 times, round-robin; the median
    BENCH_CHUNK_MIB=32 uv run python bench/run.py  # guests send 32 MiB PATCHes (CHUNK_SIZE; default 8)
    BENCH_TUS_STORAGE=library uv run python bench/run.py   # the tuspyserver column with its own storage
    IMMICH_BASE_URL=http://host:2283/api IMMICH_API_KEY=… uv run python bench/run.py   # a real Immich

Workloads: (a) one 1 GiB video from one guest; (b) 200 photos of 3–6 MiB from 8 guests at once;
(c) both at once; (d) and (e) one 100 MiB and one 2 GiB video, to show the memory does not grow with
the file; (f) 200 files of 100 kB one after another from one guest, where per-file costs show. For
each, a fresh server process (SQLite, default settings) and a fresh fake Immich (also a process) are
started; guests upload with tus in CHUNK_SIZE PATCHes and watch the status channel;
the clock runs from the first byte to the last asset confirmed by Immich. Measured: wall time, tus ingest
MB/s, delivery MB/s, the server's peak RSS (VmHWM), its CPU seconds per GB, and event-loop lag as
/healthz latency (p50/p99, sampled every 20 ms). The same files are then sent straight to a fresh Immich
with the same concurrency (our streaming client, the fastest way measured here), and the same bytes are
written to the same disk with fsync: the report gives both ratios. Two more references receive the
same uploads: bench/bare_server.py (the HTTP stack doing the least a tus-shaped upload needs) and
bench/tus_server.py (tuspyserver with our storage and nothing else), to tell the stack's share of the
time from the library's and from ours. Results go to bench/results/ as JSON
and Markdown. Files are generated once into bench/data/ (about 4.1 GB; data/ is git-ignored).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
MiB = 1024 * 1024
CHUNK = int(os.environ.get("BENCH_CHUNK_MIB", "8")) * MiB
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, str(ROOT / "src"))
from immich_drop.immich import ImmichClient  # noqa: E402


# --- inputs ----------------------------------------------------------------------------------
VIDEOS = {"video": 1024 * MiB, "video-100m": 100 * MiB, "video-2g": 2048 * MiB}


def make_files() -> dict[str, list[Path]]:
    """The videos and the photos, made once: distinct first bytes (distinct SHA-1), random payload.
    Videos are laid out as phones write them (ftyp, a big mdat, then moov with the movie header), so
    the server reads their date as it would a real one."""
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261123)
    block = rng.randbytes(MiB)
    photos = [DATA / f"photo-{i:03}.jpg" for i in range(200)]
    sizes = [rng.randint(3 * MiB, 6 * MiB) for _ in photos]
    for path, size in zip(photos, sizes):
        if not (path.exists() and path.stat().st_size == size):
            write_file(path, path.name.encode().ljust(64, b"\0"), size - 64, b"", block)
    small = [DATA / f"small-{i:03}.jpg" for i in range(200)]
    for path in small:
        if not (path.exists() and path.stat().st_size == 100_000):
            write_file(path, path.name.encode().ljust(64, b"\0"), 100_000 - 64, b"", block)
    videos = {}
    for name, size in VIDEOS.items():
        path = videos[name] = DATA / f"{name}.mp4"
        if not (path.exists() and path.stat().st_size == size):
            ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"mp42", 0, b"mp42", b"isom")
            mac = int(time.time()) + 2082844800  # QuickTime's epoch is 1904
            moov = struct.pack(">I4sI4sBxxxIIII", 116, b"moov", 108, b"mvhd", 0, mac, mac, 600, 0) + bytes(80)
            payload = size - len(ftyp) - 16 - len(moov) - 64
            head = ftyp + struct.pack(">I4sQ", 1, b"mdat", 16 + 64 + payload) + path.name.encode().ljust(64, b"\0")
            write_file(path, head, payload, moov, block)
    return {**{name: [path] for name, path in videos.items()}, "photos": photos, "small": small}


def name_offset(path: Path) -> int:
    """Where the file's 64-byte name field lies: first in a photo, after ftyp and mdat's header in a video."""
    return 24 + 16 if path.suffix == ".mp4" else 0


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
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


class CpuMeter:
    """CPU seconds spent by every process of a run (server, Immich, this client) between start and stop:
    on a small machine they share the cores, so their sum divided by the cores bounds the wall time."""

    def __init__(self, **servers: Server | None):
        self.servers = {name: s for name, s in servers.items() if s is not None}
        self.before = {name: s.cpu_seconds() for name, s in self.servers.items()} | {"client": time.process_time()}

    def stop(self) -> dict[str, float]:
        now = {name: s.cpu_seconds() for name, s in self.servers.items()} | {"client": time.process_time()}
        return {name: round(now[name] - self.before[name], 2) for name in now}


def start_immich(real: tuple[str, str] | None) -> tuple[str, str, Server | None]:
    if real:
        return real[0], real[1], None
    key, port = "bench-" + os.urandom(8).hex(), free_port()
    fake = Server([sys.executable, str(ROOT / "bench" / "fake_server.py"), str(port), key], {}, port, "/api/server/ping")
    return f"{fake.url}/api", key, fake


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

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.AsyncClient(timeout=300)
        self.final: dict[str, str] = {}
        self.first_delivery: float | None = None
        self.last_final: float = 0.0
        self.done = asyncio.Event()
        self.expected = 0

    async def open(self) -> None:
        await self.http.get(self.base + "/")
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
        await tus_upload(self.http, self.base + "/api/uploads", path, {"Cookie": self.cookie},
                         f"filename {b64(path.name)},filetype {b64('application/octet-stream')}")

    async def close(self) -> None:
        self.listener.cancel()
        await self.ws.close()
        await self.http.aclose()


class HealthSampler:
    """bench/sampler.py in its own process: /healthz latency while the workload runs."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sampler.py"), url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[float]:
        out, _ = self.proc.communicate("", timeout=60)
        return json.loads(out)


def lanes(workload: str, files: dict[str, list[Path]]) -> list[list[Path]]:
    """Who sends what: one lane per guest, each lane's files one after another."""
    photo_lanes = [files["photos"][i::8] for i in range(8)]
    return {"a": [files["video"]], "b": photo_lanes, "c": [files["video"], *photo_lanes],
            "d": [files["video-100m"]], "e": [files["video-2g"]], "f": [files["small"]]}[workload]


# --- one workload --------------------------------------------------------------------------
async def through_drop(workload: str, files, real, tmp: Path, profile: bool) -> dict:
    immich_url, key, fake = start_immich(real)
    port = free_port()
    env = {"DATA_DIR": str(tmp / "drop"), "IMMICH_BASE_URL": immich_url, "IMMICH_API_KEY": key,
           "PUBLIC_UPLOAD_PAGE_ENABLED": "true", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning",
           "SESSION_SECRET": "bench", "CHUNK_SIZE": str(CHUNK)}
    server = Server([sys.executable, "-m", "immich_drop"], env, port)
    spy = None
    if profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--format", "raw", "--rate", "100", "--threads",
                                "--output", str(RESULTS / f"profile-{workload}.txt"), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        plan = lanes(workload, files)
        guests = [Guest(server.url) for _ in plan]
        for guest, lane in zip(guests, plan):
            guest.expected = len(lane)
            await guest.open()
        total = sum(p.stat().st_size for lane in plan for p in lane)
        cpu_before, meter = server.cpu_seconds(), CpuMeter(server=server, immich=fake)
        sampler = HealthSampler(server.url)
        started = time.time()

        async def send(guest: Guest, lane: list[Path]) -> float:
            for path in lane:
                await guest.upload(path)
            return time.time()

        ingested = max(await asyncio.gather(*(send(g, lane) for g, lane in zip(guests, plan))))
        await asyncio.wait_for(asyncio.gather(*(g.done.wait() for g in guests)), timeout=3600)
        finished = max(g.last_final for g in guests)
        cpu = meter.stop()
        latencies = sampler.stop()
        outcomes = [state for g in guests for state in g.final.values()]
        first_delivery = min(g.first_delivery for g in guests if g.first_delivery)
        for guest in guests:
            await guest.close()
        return {
            "bytes": total, "files": len(outcomes), "outcomes": {s: outcomes.count(s) for s in set(outcomes)},
            "wall_seconds": finished - started,
            "ingest_mb_s": total / MiB / (ingested - started),
            "delivery_mb_s": total / MiB / (finished - first_delivery),
            "peak_rss_mb": server.peak_rss_mb(),
            "cpu_seconds_per_gb": (server.cpu_seconds() - cpu_before) / (total / 1024**3),
            "healthz_p50_ms": statistics.median(latencies),
            "healthz_p99_ms": statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0],
            "healthz_samples": len(latencies),
            "cpu_seconds": cpu,
        }
    finally:
        if spy:
            spy.send_signal(2)
            spy.wait(30)
        server.stop()
        if fake:
            fake.stop()


async def straight_to_immich(workload: str, files, real) -> dict:
    immich_url, key, fake = start_immich(real)
    try:
        plan = lanes(workload, files)
        client = ImmichClient(immich_url, timeout=600)
        meter = CpuMeter(immich=fake)
        started = time.time()

        async def send(lane: list[Path]) -> None:
            for path in lane:
                await client.upload_asset(key, path, path.stat().st_size, filename=path.name,
                                          created_at="2026-11-23T12:00:00.000Z", modified_at="2026-11-23T12:00:00.000Z")

        await asyncio.gather(*(send(lane) for lane in plan))
        elapsed = time.time() - started
        cpu = meter.stop()
        await client.aclose()
        return {"wall_seconds": elapsed, "cpu_seconds": cpu}
    finally:
        if fake:
            fake.stop()


async def reference_stack(workload: str, files, script: str, args: list[str], upload) -> dict:
    """Run the workload's lanes, same concurrency, against `python bench/<script> PORT *args`;
    `upload(http, url, path)` sends one file. MB/s, wall seconds, CPU of that server and the client."""
    port = free_port()
    server = Server([sys.executable, str(ROOT / "bench" / script), str(port), *args], {}, port, "/")
    try:
        plan = lanes(workload, files)
        meter = CpuMeter(bare=server)
        started = time.time()

        async def send(http: httpx.AsyncClient, lane: list[Path]) -> None:
            for path in lane:
                await upload(http, server.url, path)

        clients = [httpx.AsyncClient(timeout=300) for _ in plan]
        await asyncio.gather(*(send(http, lane) for http, lane in zip(clients, plan)))
        elapsed = time.time() - started
        cpu = meter.stop()
        for http in clients:
            await http.aclose()
        return {"mb_s": sum(p.stat().st_size for lane in plan for p in lane) / MiB / elapsed, "seconds": elapsed,
                "cpu_seconds": cpu}
    finally:
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


async def tus_stack(workload: str, files, tmp: Path) -> dict:
    """The same tus requests into bench/tus_server.py: tuspyserver with our storage and nothing else,
    the ceiling of the tus library the product is built on."""
    async def upload(http: httpx.AsyncClient, base: str, path: Path) -> None:
        await tus_upload(http, base + "/files", path, {}, f"filename {b64(path.name)}")

    library = ["library"] if os.environ.get("BENCH_TUS_STORAGE") == "library" else []
    return await reference_stack(workload, files, "tus_server.py", [str(tmp / "tus"), *library], upload)


async def measure(name: str, files, real, profile: bool) -> dict:
    """One repetition of one workload: through Immich Drop, straight to Immich, the disk, the bare stack,
    tuspyserver alone."""
    paths = [p for lane in lanes(name, files) for p in lane]
    run_id = os.urandom(6).hex()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        salt(paths, run_id + " drop")
        result = await through_drop(name, files, real, Path(tmp), profile)
        salt(paths, run_id + " direct")
        direct = await straight_to_immich(name, files, real)
        result["direct_seconds"], result["direct_cpu_seconds"] = direct["wall_seconds"], direct["cpu_seconds"]
        result["ratio_to_direct"] = result["wall_seconds"] / result["direct_seconds"]
        result["disk_mb_s"] = disk_write(Path(tmp), result["bytes"])
        result["ingest_to_disk"] = result["ingest_mb_s"] / result["disk_mb_s"]
        bare = await bare_stack(name, files, Path(tmp))
        result["stack_mb_s"], result["stack_cpu_seconds"] = bare["mb_s"], bare["cpu_seconds"]
        result["ingest_to_stack"] = result["ingest_mb_s"] / result["stack_mb_s"]
        tus = await tus_stack(name, files, Path(tmp))
        result["tus_mb_s"], result["tus_cpu_seconds"] = tus["mb_s"], tus["cpu_seconds"]
        result["tus_to_disk"] = result["tus_mb_s"] / result["disk_mb_s"]
        # tuspyserver only receiving the files, against the whole direct upload: no relay built around
        # it can end sooner than it receives.
        result["tus_ratio"] = tus["seconds"] / result["direct_seconds"]
        # The least any relay on this stack and machine could take, with perfect overlap: it receives
        # (at best like the bare server, with its client), hashes (the product needs the SHA-1) and
        # sends (at best like the direct client), Immich stores, and all of that CPU fits into the
        # cores; nor can it receive faster than the bare server.
        result["sha1_cpu_seconds"] = sha1_cpu(paths)
        cpu = sum(bare["cpu_seconds"].values()) + sum(result["direct_cpu_seconds"].values()) + result["sha1_cpu_seconds"]
        result["floor_ratio"] = max(bare["seconds"], cpu / os.cpu_count()) / result["direct_seconds"]
    return result


def summarise(results: list[dict]) -> dict:
    """The repetition with the median ratio to direct (the lower middle one for an even count; a real
    run, so its columns agree with each other), plus the ranges of the ratios, RSS and p99 over all
    repetitions: this machine moves 20-50 % between runs of the same code."""
    chosen = dict(sorted(results, key=lambda r: r["ratio_to_direct"])[(len(results) - 1) // 2])
    chosen["repetitions"] = len(results)
    chosen["ranges"] = {key: [min(r[key] for r in results), max(r[key] for r in results)]
                        for key in ("ratio_to_direct", "ingest_to_disk", "tus_to_disk", "tus_ratio", "floor_ratio", "peak_rss_mb", "healthz_p99_ms")}
    return chosen


def sha1_cpu(paths: list[Path]) -> float:
    """CPU seconds to SHA-1 the files (read from the page cache in 1 MiB pieces, as the server does)."""
    started = time.process_time()
    for path in paths:
        digest = hashlib.sha1()
        with open(path, "rb") as fh:
            while piece := fh.read(MiB):
                digest.update(piece)
    return time.process_time() - started


def disk_write(directory: Path, total: int) -> float:
    """MB/s writing `total` bytes in 1 MiB pieces to `directory`, fsync at the end (what staging does)."""
    block = os.urandom(MiB)
    path = directory / "disk-test.bin"
    started = time.time()
    with open(path, "wb") as fh:
        left = total
        while left > 0:
            fh.write(block[: min(left, MiB)])
            left -= MiB
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.time() - started
    path.unlink()
    return total / MiB / elapsed


def machine() -> dict:
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 1024**2, 1),
            "python": platform.python_version(), "kernel": platform.release(), "date": time.strftime("%Y-%m-%d")}


def markdown(report: dict) -> str:
    m = report["machine"]
    rows = ["| workload | files | GB | wall s | direct s | ratio | tuspyserver alone / direct | floor ratio | "
            "ingest MB/s | disk MB/s | ingest/disk | tuspyserver MB/s | tuspyserver/disk | bare stack MB/s | "
            "delivery MB/s | peak RSS MB | CPU s/GB | CPU ms/file | /healthz p50 ms | p99 ms |",
            "| --- |" + " ---: |" * 19]
    names = {"a": "(a) one 1 GiB video", "b": "(b) 200 photos, 8 guests", "c": "(c) a + b at once",
             "d": "(d) one 100 MiB video", "e": "(e) one 2 GiB video", "f": "(f) 200 files of 100 kB, one guest"}
    for name, r in report["workloads"].items():
        def cell(key: str, digits: int) -> str:  # the median run's value, then the range over repetitions
            low, high = r.get("ranges", {}).get(key, (r[key], r[key]))
            return f"{r[key]:.{digits}f}" + (f" ({low:.{digits}f}–{high:.{digits}f})" if r.get("repetitions", 1) > 1 else "")

        rows.append(f"| {names[name]} | {r['files']} | {r['bytes'] / 1e9:.2f} | {r['wall_seconds']:.1f} | "
                    f"{r['direct_seconds']:.1f} | {cell('ratio_to_direct', 2)} | {cell('tus_ratio', 2)} | "
                    f"{cell('floor_ratio', 2)} | {r['ingest_mb_s']:.0f} | {r['disk_mb_s']:.0f} | "
                    f"{cell('ingest_to_disk', 2)} | {r['tus_mb_s']:.0f} | {cell('tus_to_disk', 2)} | "
                    f"{r['stack_mb_s']:.0f} | {r['delivery_mb_s']:.0f} | {cell('peak_rss_mb', 0)} | "
                    f"{r['cpu_seconds_per_gb']:.1f} | {r['cpu_seconds']['server'] / r['files'] * 1000:.0f} | "
                    f"{r['healthz_p50_ms']:.1f} | {cell('healthz_p99_ms', 1)} |")
    repetitions = max(r.get("repetitions", 1) for r in report["workloads"].values())
    how = (f" Each row is the run with the median ratio of {repetitions}; brackets give the range over all of them."
           if repetitions > 1 else "")
    return (f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
            f"Linux {m['kernel']}, {m['date']}; Immich: {report['immich']}; PATCH size {CHUNK // MiB} MiB.{how}\n\n"
            + "\n".join(rows) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="a,b,c,d,e,f")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during workload c (or the last)")
    parser.add_argument("--repeat", type=int, default=1, help="run each workload N times; report the median")
    args = parser.parse_args()
    real = (os.environ["IMMICH_BASE_URL"], os.environ["IMMICH_API_KEY"]) \
        if os.environ.get("IMMICH_BASE_URL") and os.environ.get("IMMICH_API_KEY") else None
    files = make_files()
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    report = {"machine": machine(), "immich": "real, " + real[0] if real else "the fake Immich (tests/fake_immich.py)",
              "workloads": {}}
    profiled = "c" if "c" in workloads else workloads[-1]
    runs: dict[str, list[dict]] = {name: [] for name in workloads}
    for repetition in range(args.repeat):  # round-robin, so a slow minute of the machine hits one of each
        for name in workloads:
            result = await measure(name, files, real, args.profile and name == profiled and repetition == 0)
            runs[name].append(result)
            print(name, json.dumps(result), flush=True)
    report["workloads"] = {name: summarise(results) for name, results in runs.items()}
    report["runs"] = runs
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    if args.profile:
        from hotspots import report as profile_report  # bench/hotspots.py, beside this file

        text += "\nWhere the server's time goes (py-spy, busy samples):\n\n```\n" \
            + profile_report(RESULTS / f"profile-{profiled}.txt") + "\n```\n"
    (RESULTS / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
