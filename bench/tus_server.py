"""tuspyserver on its own, for the ingest ceiling of the tus library we build on:
`python bench/tus_server.py PORT DIR [library]`.

The same stack as Immich Drop's tus endpoint (uvicorn with uvloop and httptools, tuspyserver's router
in FastAPI) with none of Immich Drop around it: no guard, no database, no delivery, no status channel.
By default it writes through our `StagingStorage` (offsets from disk, bounded memory, writes and the
final fsync in threads: what the product needs at the least), and hashes while receiving exactly the
files the product hashes while receiving: not the videos it relays (`relay.relayed`, at the default
STREAM_MIN_SIZE), whose SHA-1 the relay computes as it reads them back. `library` uses tuspyserver's
own file storage instead. The report compares our ingest with it, so what is tuspyserver's and what
is ours can be told apart (bench/bare_server.py does the same for the HTTP stack without tus).
"""

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from tuspyserver import create_tus_router

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from immich_drop.config import Settings  # noqa: E402
from immich_drop.relay import relayed  # noqa: E402
from immich_drop.tus import StagingStorage, UploadLocks  # noqa: E402


class ReferenceStorage(StagingStorage):
    """Our storage, hashing as the product does: a file the product would relay is not hashed here."""

    async def write_info(self, uid: str, data: dict) -> None:
        filename = (data.get("metadata") or {}).get("filename", "")
        if isinstance(data.get("size"), int) and relayed(data["size"], filename, Settings.stream_min_size):
            self.skip_hashing(uid)
        await super().write_info(uid, data)


def make_app(directory: Path, library: bool) -> FastAPI:
    options = {} if library else {"storage": ReferenceStorage(directory, UploadLocks(directory / ".locks"), 86400)}
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(create_tus_router(prefix="/files", files_dir=str(directory), max_size=10 * 1024**3,
                                         days_to_keep=1, **options))
    app.add_api_route("/", lambda: {"ok": True})  # readiness
    return app


if __name__ == "__main__":
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    uvicorn.run(make_app(directory, sys.argv[3:] == ["library"]), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)
