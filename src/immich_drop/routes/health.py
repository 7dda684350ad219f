"""`/healthz`: the process answers. `/readyz`: the database, the staging folder and Immich (with the
configured key) answer too. `/metrics`: Prometheus, off unless METRICS_TOKEN is set."""

from __future__ import annotations

import asyncio
import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..immich import ImmichError


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


_HEALTHZ = {"type": "http.response.start", "status": 200, "headers": [
    (b"content-type", b"application/json"), (b"cache-control", b"no-store"), (b"content-length", b"15")]}
_HEALTHZ_BODY = {"type": "http.response.body", "body": b'{"status":"ok"}'}


async def healthz_fast(scope, receive, send) -> None:
    """`GET /healthz` as plain ASGI, for the app's router to answer before Starlette's routing and
    middleware: health checks come every few seconds from Docker, and 50 times a second from the
    benchmark's sampler, where Starlette's way cost 0.6 ms of CPU each (bench/)."""
    await send(_HEALTHZ)
    await send(_HEALTHZ_BODY)


async def readyz(request: Request) -> JSONResponse:
    """One check at a time: requests that come while one runs share its answer. Anyone may ask, and
    300 at once each asked Immich twice on the connections deliveries use: a photo took 25-45 s to
    reach Immich instead of 0.26 s (attack run)."""
    state = request.app.state
    if getattr(state, "readiness", None) is None:
        state.readiness = asyncio.ensure_future(_ready(state.services))
        state.readiness.add_done_callback(lambda _: setattr(state, "readiness", None))
    ready, checks = await asyncio.shield(state.readiness)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


async def _ready(services) -> tuple[bool, dict[str, str]]:
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
        if services.settings.immich_api_key:  # the configured key, not just the address
            # one made-up SHA-1: Immich v3.1.0 answers an empty list with a 500 (read-only either way)
            await services.immich.bulk_upload_check(services.settings.immich_api_key, [("readyz", "0" * 40)])
        checks["immich"] = "ok"
    except ImmichError as exc:
        checks["immich"] = f"error: {exc.message}"
    return all(v == "ok" for v in checks.values()), checks


async def metrics(request: Request) -> Response:
    """Prometheus text format; 404 unless METRICS_TOKEN is set, then only with that bearer token."""
    services = request.app.state.services
    token = services.settings.metrics_token
    if not token:
        return Response("Not Found", status_code=404, media_type="text/plain")
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode("utf-8", "surrogateescape"),
                                                               token.encode()):
        return Response("Unauthorized", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": "Bearer"})
    body = services.pipeline.metrics.render(await services.store.count_by_state(), services.pipeline.queue_length)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
