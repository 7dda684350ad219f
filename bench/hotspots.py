"""Where the server's time goes: `python bench/hotspots.py bench/results/profile-c.txt`.

Reads a py-spy raw profile recorded per thread (`--threads`, as `run.py --profile` does) and sorts
every busy sample into one category, by the innermost frame that names one. Worker threads waiting
for work are left out. Samples inside uvloop's C code (the loop reading and writing sockets and
running callbacks) have no Python frame to name them and are a category of their own. A thread
waiting for the GIL counts as busy to py-spy, so the threads' shares are upper bounds.
Prints each category's share of the busy samples, and how much of it was on the event loop.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (category, substrings of a frame); the innermost matching frame decides, so order does not matter
# except between patterns that can match the same frame.
CATEGORIES = [
    ("writing received bytes (and hashing them)", ("StagingStorage._write",)),
    ("relay: reading back and hashing", ("Relay._follow",)),
    ("hashing a file from disk", ("sha1_file",)),
    ("capture dates", ("capture_date", "_iso_media_date", "_exif_date", "hachoir")),
    ("SQL (the upload's row, the duplicate cache)", ("sqlalchemy", "Store.", "sqlite3", "psycopg")),
    ("staging file bookkeeping (create, sidecar, stat, delete, locks)",
     ("StagingStorage.", "Path.", "UploadLocks", "_lock", "_unlock")),
    ("httpx calls to Immich", ("httpx", "httpcore", "ImmichClient", "anyio")),
    ("tuspyserver and FastAPI", ("tuspyserver", "fastapi", "pydantic")),
    ("tus guard", ("TusGuard", "guard.py")),
    ("status channel", ("EventBus", "websockets", "events.py", "websockets_impl")),
    ("uvicorn HTTP", ("uvicorn/protocols",)),
    ("starlette routing and middleware", ("starlette", "security.py", "proxy.py")),
    ("thread hand-offs", ("to_thread", "ThreadPoolExecutor", "futures.py", "_chain_future", "run_in_executor")),
]
IDLE = ("_worker (concurrent/futures/thread.py:81)",)


def categorize(frames: list[str]) -> str:
    if frames and frames[-1].startswith("Runner.run"):  # inside uvloop's C code: reading, writing sockets
        return "event loop in C (uvloop: sockets, callbacks)"
    if frames and frames[-1].startswith("_WorkItem.run"):  # a C function handed to a thread as is
        return "file reads for Immich and other C calls in threads"
    for frame in reversed(frames):
        for name, patterns in CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return "other"


def summarize(path: Path) -> dict[str, Counter]:
    """{"loop": Counter(category -> samples), "threads": Counter(...)}"""
    shares = {"loop": Counter(), "threads": Counter()}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or frames[-1] in IDLE:
            continue
        where = "loop" if "MainThread" in frames[0] else "threads"
        shares[where][categorize(frames[1:])] += int(count)
    return shares


def report(path: Path) -> str:
    shares = summarize(path)
    total = sum(sum(c.values()) for c in shares.values()) or 1
    both = shares["loop"] + shares["threads"]
    lines = [f"{path.name}: {total} busy samples, event loop {sum(shares['loop'].values()) / total:.0%}, "
             f"threads {sum(shares['threads'].values()) / total:.0%}"]
    for name, count in both.most_common():
        lines.append(f"  {count / total:6.1%}  {name}  (loop {shares['loop'][name] / total:.1%})")
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(report(Path(arg)))
