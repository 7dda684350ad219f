"""The tus endpoint: tuspyserver's router behind `TusGuard`, writing through `StagingStorage`.

`build_tus_app(...)` returns one ASGI app for everything under `prefix`. tuspyserver keeps the tus
protocol itself (HEAD/PATCH/POST/DELETE handling, headers); our code owns validation (the guard),
bytes on disk (the storage) and what happens after the last byte (`on_complete`, a "post" hook that
records the upload as received, and claims it for delivery when a slot is free: the delivery itself
runs in the background).
"""

from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable

from fastapi import FastAPI, Request
from tuspyserver import create_tus_router

from .guard import TusGuard
from .locks import UploadLocks
from .room import Room
from .storage import StagingStorage

__all__ = ["build_tus_app", "Room", "StagingStorage", "UploadLocks", "TusGuard"]


def build_tus_app(*, prefix: str, storage: StagingStorage, max_upload_size: int,
                  on_complete: Callable[[str], Awaitable[None]], **guard_options) -> TusGuard:
    async def upload_complete(location: str, _metadata: dict) -> None:
        await on_complete(Path(location).name)

    async def file_dep(request: Request):
        # The guard has already created the upload row; tuspyserver must use the same id.
        uid = request.scope.get("state", {}).get("tus_uid")
        return lambda _metadata: {"uid": uid} if uid else {}

    router = create_tus_router(
        prefix=prefix,
        files_dir=str(storage.directory),
        max_size=max_upload_size,
        days_to_keep=3650,  # expiry is StagingStorage's sliding window, not tuspyserver's
        on_upload_complete=upload_complete,
        file_dep=file_dep,
        storage=storage,
    )
    inner = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    inner.include_router(router)
    return TusGuard(inner, prefix=prefix, storage=storage, max_upload_size=max_upload_size, **guard_options)
