"""The ceiling of the HTTP stack for ingest: `python bench/bare_server.py PORT DIR`.

The same server stack as Immich Drop (uvicorn with uvloop and httptools, an ASGI app) doing the least
a tus endpoint can do, without tus's checks, database or sidecar: POST creates an empty file in DIR
and answers 201 with its Location, each PATCH appends its body in a worker thread (the last one also
fsyncs) and answers 204. Immich Drop's tus ingest is compared with it in the report, so what
is the stack's and what is ours can be told apart.
"""

import asyncio
import os
import sys
from pathlib import Path

import uvicorn

PIECE = 1024 * 1024


def make_app(directory: Path):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "GET":  # readiness
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if scope["method"] == "POST":  # creation, as tus does it: one request per file before its bytes
            name = dict(scope["headers"]).get(b"x-name", b"upload").decode()
            await asyncio.to_thread(lambda: open(directory / name, "wb").close())
            await send({"type": "http.response.start", "status": 201,
                        "headers": [(b"location", f"/f/{name}".encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        path = directory / scope["path"].rsplit("/", 1)[-1]
        final = dict(scope["headers"]).get(b"upload-final") == b"1"
        fh = await asyncio.to_thread(open, path, "ab")
        pending: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            body, more = message.get("body", b""), message.get("more_body", False)
            pending.append(body)
            size += len(body)
            if size >= PIECE or not more:
                await asyncio.to_thread(fh.writelines, pending)
                pending, size = [], 0
        if final:
            await asyncio.to_thread(lambda: (fh.flush(), os.fsync(fh.fileno())))
        await asyncio.to_thread(fh.close)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


if __name__ == "__main__":
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    uvicorn.run(make_app(directory), host="127.0.0.1", port=port, log_level="warning", access_log=False)
