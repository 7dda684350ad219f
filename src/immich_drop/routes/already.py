"""`POST /api/already`: has this browser sent this file (by SHA-1) to the same owner before?

    {invite, sha1, size, filename, filetype, guestName?, guestMessage?}
        → 200 {"already": true, "id": upload id}   recorded as "already there", added to the album
        → 200 {"already": false}                   send the bytes (the answer for anything unproven)

The rules are in `already.py`: only files this session sent in full count, and Immich decides. The
body is JSON (so a cross-site form cannot post it), small, from this site, with a session.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..already import AlreadyThere
from .errors import ApiError, json_body, same_origin

MAX_BODY = 8 * 1024


async def already(request: Request) -> Response:
    services = request.app.state.services
    session = services.sessions.from_scope(request.scope)
    if session is None:
        raise ApiError(403, "Open the upload page first.", code="no_session")
    if not same_origin(request, services.settings.public_base_url):
        raise ApiError(403, "Cross-origin requests are not allowed.", code="cross_origin")
    if int(request.headers.get("content-length") or MAX_BODY + 1) > MAX_BODY:
        raise ApiError(413, "The question is too large.", code="bad_request")
    uid = await AlreadyThere(services).record(session, await json_body(request))
    return JSONResponse({"already": True, "id": uid} if uid else {"already": False},
                        headers={"Cache-Control": "no-store"})


routes = [Route("/api/already", already, methods=["POST"])]
