"""The app factory: `create_app(settings, immich_transport=None)` returns the ASGI app.

Lifespan: migrate the database, start the delivery worker (which picks up undelivered uploads),
and on shutdown stop it and close the Immich client. Request flow, outermost first:
ForwardedHeaders → PerAddress → HostCheck → SecurityHeaders → BodyLimit → (the tus endpoint behind its
guard | Starlette routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from .accounts import Accounts
from .background import Background
from .config import Settings
from .crypto import Box, Hasher
from .db import open_engine
from .events import EventBus, OpenChannels, PostgresBus
from .files import private_dir
from .immich import ImmichClient
from .limits import BodyLimit, PerAddress
from .metrics import Metrics
from .notify import Notifier
from .pipeline import Pipeline
from .proxy import ForwardedHeaders
from .ratelimit import RateLimiter
from . import i18n
from .routes import admin, already, guest, health, invite_page, invites, notifications
from .routes.closed_page import message_page
from .routes.errors import ApiError
from .security import HostCheck, SecurityHeaders
from .services import Services
from .sessions import Sessions
from .store import Store
from .targets import Targets
from .tus import Room, StagingStorage, UploadLocks, build_tus_app

TUS_PREFIX = "/api/uploads"
log = logging.getLogger(__name__)


def create_app(settings: Settings, *, immich_transport: httpx.AsyncBaseTransport | None = None):
    locks = UploadLocks(settings.staging_dir / ".locks")
    storage = StagingStorage(settings.staging_dir, locks, settings.upload_expiry_hours * 3600)
    store = Store()  # bound to its engine by the lifespan, after migrations
    # Reading, hashing and dating staged files, for the relay and the delivery workers (one each at a time).
    background = Background(workers=2 * settings.max_concurrent)
    immich = ImmichClient(settings.immich_base_url, transport=immich_transport, senders=settings.max_concurrent,
                          timeout=settings.immich_timeout_seconds, media_types_ttl=settings.media_types_ttl_seconds)
    box = Box(settings.session_secret)
    bus = PostgresBus(settings.db_url) if settings.db_url.startswith("postgresql") else EventBus()
    targets, sessions = Targets(settings, store, box), Sessions(settings.session_secret)
    metrics = Metrics()
    storage.on_written = metrics.bytes_received.inc
    pipeline = Pipeline(settings, store, immich, storage, targets, bus, metrics, in_background=background.run)
    notifier = Notifier(settings, store, box, bus)
    targets.on_invite_change = notifier.invite_changed
    pipeline.on_invite_delivered, pipeline.on_key_refused = notifier.invite_delivered, notifier.key_refused
    services = Services(settings, store, immich, storage, targets, sessions, bus, pipeline, box,
                        accounts=Accounts(settings, store, immich, box, pipeline),
                        login_limiter=RateLimiter({"account_ip": 5, "ip": 20, "account": 50}, seconds=15 * 60),
                        invite_limiter=RateLimiter({"ip_invite": 10, "invite": 100}, seconds=15 * 60),
                        hasher=Hasher(workers=2, waiting=2), notifier=notifier,
                        channels=OpenChannels(total=max(1, settings.max_connections // 2)),
                        room=Room(settings, store, storage))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # The threads behind asyncio.to_thread (store calls, staging writes, reads of files being sent):
        # Python's default is cores + 4, six on a 2-core box, and MAX_CONCURRENT deliveries reading
        # their files must not leave a guest's write or row read waiting for a thread.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=settings.max_concurrent + 8, thread_name_prefix="immich-drop"))
        await asyncio.to_thread(lambda: [private_dir(d) for d in (settings.data_dir, settings.staging_dir)])
        store.bind(await asyncio.to_thread(open_engine, settings.db_url))
        await bus.start()
        await pipeline.start()
        await notifier.start()
        # Starlette serves files through anyio, whose backend is imported on first use: do it now, not
        # on the event loop while the first guest's page loads (a 40-90 ms stall, bench/).
        await anyio.to_thread.run_sync(lambda: None)
        log.info("immich-drop ready (public upload page %s)", "on" if settings.public_upload_page_enabled else "off")
        try:
            yield
        finally:
            await notifier.stop()
            await pipeline.stop()
            await bus.stop()
            await immich.aclose()
            await asyncio.to_thread(background.close)
            services.hasher.close()
            await asyncio.to_thread(store.engine.dispose)

    starlette = Starlette(
        routes=[*health.routes, *guest.routes, *already.routes, *admin.routes, *invites.routes, *notifications.routes,
                *invite_page.routes,
                Mount("/static", ScriptsAndStyles(directory=guest.WEB), name="static")],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    starlette.state.services = services
    tus = build_tus_app(
        prefix=TUS_PREFIX, storage=storage, max_upload_size=settings.max_upload_size, on_complete=pipeline.received,
        max_request_body=settings.max_request_body, public_base_url=settings.public_base_url,
        store=store, locks=locks, sessions=sessions, targets=targets, bus=bus, media_types=services.media_types,
        stall_seconds=settings.upload_stall_seconds, room=services.room,
    )

    tus.on_created = metrics.uploads_created.inc
    tus.on_patch = pipeline.relay.start

    async def router(scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == TUS_PREFIX or path.startswith(TUS_PREFIX + "/")):
            return await tus(scope, receive, send)
        if path == "/healthz" and scope["type"] == "http" and scope["method"] == "GET":
            return await health.healthz_fast(scope, receive, send)
        return await starlette(scope, receive, send)

    app = ForwardedHeaders(PerAddress(HostCheck(SecurityHeaders(BodyLimit(router, TUS_PREFIX, settings.upload_stall_seconds)),
                                                settings.public_base_url), settings.max_connections_per_address),
                           settings.trusted_proxies)
    app.services = services  # type: ignore[attr-defined] - for tests and the benchmark
    return app


async def _api_error(request: Request, exc: ApiError):
    body: dict = {"message": exc.message}
    if exc.code:
        body.update(code=exc.code, params=exc.params)
    if exc.errors:
        body["errors"] = exc.errors
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


# Starlette's own refusals under /api/ (no route, a method the route does not take), in the shape
# of every other API answer: a code the pages can put in the reader's language.
_HTTP_CODES = {404: ("no_such_address", "There is nothing at this address."),
               405: ("method_not_allowed", "This address does not take that kind of request.")}


async def _http_error(request: Request, exc: HTTPException):
    if request.url.path.startswith("/api/"):
        code, message = _HTTP_CODES.get(exc.status_code, ("bad_request", str(exc.detail)))
        return JSONResponse({"message": message, "code": code, "params": {}}, status_code=exc.status_code,
                            headers=exc.headers)
    if exc.status_code == 404 and request.method in ("GET", "HEAD") and not request.url.path.startswith("/static/"):
        # a person who followed a wrong address: a page in their language, as for a closed link
        lang = i18n.choose(request.headers.get("accept-language"))
        # the console's owner is told where the console is, a guest what to open (re-walk)
        detail = "page.console_home" if request.url.path.startswith("/admin") else "page.nothing_text"
        return HTMLResponse(message_page(lang, "no_such_address", detail), status_code=404,
                            headers={"Content-Language": lang, "Vary": "Accept-Language"})
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"message": "Internal error; nothing you sent was lost.", "code": "internal", "params": {}},
                        status_code=500)


class ScriptsAndStyles(StaticFiles):
    """The pages' scripts, styles, catalogs and icons. Not their HTML: /static/index.html served the
    upload page with the public page off (attack run); each page has its own route, which decides."""

    def lookup_path(self, path: str):
        if path.lower().endswith((".html", ".htm")):
            return "", None
        return super().lookup_path(path)
