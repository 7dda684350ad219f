"""The direct upload in a process of its own: `python bench/direct.py BASE_URL KEY` with the lanes
(a JSON list of lists of file paths) on standard input.

It prints `ready` once loaded, waits for a line on standard input, then sends each lane's files one
after another to Immich's `POST /assets` (lanes at once, our streaming client, as `straight_to_immich`
does) and prints the start and end times (`time.time()`) as JSON. bench/run.py runs it beside
tuspyserver alone receiving the same files from the benchmark's own clients: a relay with no cost of
its own, whose clients do not share a process (and a GIL) with the direct sender.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from immich_drop.immich import ImmichClient  # noqa: E402


async def send_all(base_url: str, key: str, lanes: list[list[str]]) -> None:
    client = ImmichClient(base_url, timeout=600, senders=0)

    async def send(lane: list[str]) -> None:
        for name in lane:
            path = Path(name)
            await client.upload_asset(key, path, path.stat().st_size, filename=path.name,
                                      created_at="2026-11-23T12:00:00.000Z", modified_at="2026-11-23T12:00:00.000Z")

    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    await asyncio.gather(*(send(lane) for lane in lanes))
    print(json.dumps({"started": started, "ended": time.time()}), flush=True)
    await client.aclose()


if __name__ == "__main__":
    lanes = json.loads(sys.stdin.readline())
    asyncio.run(send_all(sys.argv[1], sys.argv[2], lanes))
