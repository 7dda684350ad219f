"""The guest side: the public upload page, its settings, and the status channel.

- `GET /`: the upload page when PUBLIC_UPLOAD_PAGE_ENABLED, else a plain "nothing here" page (404).
  Either way the browser gets its session cookie.
- `GET /api/config`: what the page needs (endpoint, chunk size, limits). No secrets, no Immich address.
- `WS /ws`: events for this browser session's own uploads; on connect, their current state. Only
  from this site's pages (`Origin` checked, as on every other request). With `?invite=<token>` (a
  link's page), the current state of that link's uploads only, and `{"type": "link"}` when the
  link's owner changes or deletes it, or a browser uses it up or fills it; with `?public=1`, of the
  public page's only.
- `GET /api/status`: that current state alone, for a page whose WebSocket cannot get through (some
  proxies and mobile networks block them): `{"events": [...]}`, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import i18n
from ..accounts import COOKIE
from ..events import upload_event
from ..notify import link_channel, owner_channel
from ..proxy import address_key
from ..resources import web_dir
from ..security import same_origin
from ..targets import INVITE, PUBLIC
from .closed_page import message_page

WEB = web_dir()


def with_session(request: Request, response: Response) -> Response:
    """Give the browser a session cookie if it has none (or a forged or expired one); renew an old one."""
    sessions = request.app.state.services.sessions
    session = sessions.renewal(request.scope)
    if session is None and sessions.from_scope(request.scope) is None:
        session = sessions.new_id()
    if session is not None:
        response.headers.append("set-cookie", sessions.cookie(session, secure=request.url.scheme == "https"))
    return response


async def public_page(request: Request) -> Response:
    if not request.app.state.services.settings.public_upload_page_enabled:
        lang = i18n.choose(request.headers.get("accept-language"))
        return HTMLResponse(message_page(lang, "page.nothing", "page.nothing_text"), status_code=404,
                            headers={"Content-Language": lang, "Vary": "Accept-Language"})
    return with_session(request, FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"}))


async def config(request: Request) -> Response:
    settings = request.app.state.services.settings
    return with_session(request, JSONResponse({
        "endpoint": "/api/uploads",
        "chunkSize": settings.chunk_size,
        "maxUploadSize": settings.max_upload_size,
        "publicUploads": settings.public_upload_page_enabled,
        "extensions": sorted(await _media_types(request.app.state.services)),
    }, headers={"Cache-Control": "no-store"}))


async def _media_types(services) -> frozenset[str]:
    """What Immich takes, so the page refuses a .txt before sending it; never waits long on Immich."""
    try:
        return await asyncio.wait_for(services.media_types(), 3)
    except asyncio.TimeoutError:
        return frozenset()


async def _current_state(services, session: str | None, target: tuple[str, str | None] | None = None) -> list[dict]:
    """This browser session's own uploads as status events, oldest first (none without a session);
    only those to `target` (kind, id) when given."""
    return [upload_event(upload) for upload in
            reversed(await services.store.uploads_for_session(session, target=target))] if session else []


async def upload_status(request: Request) -> Response:
    services = request.app.state.services
    events = await _current_state(services, services.sessions.from_scope(request.scope))
    return JSONResponse({"events": events}, headers={"Cache-Control": "no-store"})


async def status_channel(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    if not same_origin(scheme, websocket.headers.get("host", ""), websocket.headers.get("origin"),
                       services.settings.public_base_url):
        await websocket.close(code=4403, reason="cross-origin")  # before accept: the handshake gets 403
        return
    session = services.sessions.from_scope(websocket.scope)
    owner = await _console_owner(websocket)
    if session is None and owner is None:
        await websocket.close(code=4401, reason="no session")
        return
    address = address_key(websocket.client.host) if websocket.client else "unknown"  # an IPv6 one by its /64
    with services.channels.hold(session or f"admin:{owner}", address) as counted:
        if not counted:  # 1013: try again later; the page asks over HTTP meanwhile
            await websocket.close(code=1013, reason="too many channels")
            return
        await _serve_channel(websocket, services, session, owner)


async def _serve_channel(websocket: WebSocket, services, session: str | None, owner: str | None) -> None:
    await websocket.accept()
    async with contextlib.AsyncExitStack() as stack:
        events: asyncio.Queue = asyncio.Queue(1000)
        # Subscribed before the snapshot, so no change between the two is missed.
        if session is not None:
            await stack.enter_async_context(services.bus.subscribe(session, events))
        if owner is not None:  # an admin's console: their own links' cards, nobody else's
            await stack.enter_async_context(services.bus.subscribe(owner_channel(owner), events))
        link = await _link_of_page(websocket) if session is not None else None
        if link is not None:  # the page of a link: told when its owner changes it (never what changed)
            await stack.enter_async_context(services.bus.subscribe(link_channel(link), events))
        # what this page's link (or the public page) was sent: another link's files, its guest's
        # message under them, read "sent earlier" on this one (owner walk)
        query = websocket.query_params
        target = (INVITE, link) if query.get("invite") else (PUBLIC, None) if query.get("public") else None
        for event in await _current_state(services, session, target):
            await websocket.send_json(event)
        await websocket.send_json({"type": "ready"})
        receiver = asyncio.create_task(_drain(websocket))
        try:
            while True:
                getter = asyncio.create_task(events.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    return
                await websocket.send_json(getter.result())
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            receiver.cancel()


async def _link_of_page(websocket: WebSocket) -> str | None:
    """The id of the link whose page opened this socket (`?invite=<token>`), if the token names one;
    the page already holds the token, so this tells it nothing it could not ask for."""
    token = websocket.query_params.get("invite")
    invite = await websocket.app.state.services.targets.invite_for_token(token) if token else None
    return invite.id if invite is not None else None


async def _console_owner(websocket: WebSocket) -> str | None:
    """The signed-in admin behind this socket, if it comes from our own pages (the cookie is
    SameSite=Strict; the Origin check keeps other sites' scripts out all the same)."""
    services = websocket.app.state.services
    cookie = websocket.cookies.get(COOKIE)
    if not cookie or not same_origin(websocket.url.scheme.replace("ws", "http"), websocket.headers.get("host", ""),
                                     websocket.headers.get("origin"), services.settings.public_base_url):
        return None
    found = await services.accounts.current(cookie)
    return found[1].user_id if found else None


async def _drain(websocket: WebSocket) -> None:
    """Read what the browser sends, so a closed socket is noticed at once; answer its "ping" (the page
    reconnects when a silent network swallowed the channel) and ignore anything else."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "ping":  # a binary frame is ignored like any other text (attack run:
                await websocket.send_json({"type": "pong"})  # receive_text() died on it, a KeyError)
    except (WebSocketDisconnect, RuntimeError):
        return


async def favicon(request: Request) -> Response:
    return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")


routes = [Route("/", public_page), Route("/favicon.ico", favicon), Route("/api/config", config),
          Route("/api/status", upload_status), WebSocketRoute("/ws", status_channel)]
