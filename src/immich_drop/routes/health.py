"""`/healthz`: the process answers. `/readyz`: the database, the staging folder and Immich answer too."""

from __future__ import annotations

import asyncio
import os

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..immich import ImmichError


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        await services.store.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    staging = services.storage.directory
    writable = await asyncio.to_thread(lambda: staging.is_dir() and os.access(staging, os.W_OK))
    checks["staging"] = "ok" if writable else "error: not writable"
    try:
        await services.immich.ping()
        checks["immich"] = "ok"
    except ImmichError as exc:
        checks["immich"] = f"error: {exc.message}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
