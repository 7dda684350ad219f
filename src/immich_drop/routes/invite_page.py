"""The guest side of an invite: `/i/{token}`, public to whoever holds the URL.

    GET  /i/{token}                → the upload page, or a clear page: 404 (unknown or deleted),
                                     410 (expired, turned off, or used by another browser)
    GET  /api/i/{token}            → {title, albumName, limits, remaining, needsPassword, unlocked, paused}
                                     (the title the owner wrote for guests; never the private label;
                                     limits.maxFileSize never above the server's MAX_UPLOAD_SIZE;
                                     before a password, the title only: no album, limits or questions)
    POST /api/i/{token}/unlock     {"password"} → 204 (this browser session may now upload), 401, 429

An unknown token learns nothing: the same 404 as a deleted one, no album name, no Immich address.
Password attempts are limited per address and per invite, counted before the first await; the hash
is checked on the password-hashing threads (busy: 429 at once), in constant time.
"""

from __future__ import annotations


from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import i18n
from ..crypto import HasherBusy, verify_password
from ..models import InviteState
from ..targets import CLOSED, INVALID, USED, invite_state
from .closed_page import message_page
from .errors import ApiError, client_address, json_body, text_field, too_many
from .guest import WEB, with_session


async def _invite_and_standing(request: Request):
    services = request.app.state.services
    invite = await services.targets.invite_for_token(request.path_params["token"])
    session = services.sessions.from_scope(request.scope)
    standing = await services.store.guest_standing(invite.id, session) if invite and session else None
    return invite, standing


def _closed(invite, standing) -> tuple[int, str, str] | None:
    """(status, English message, catalog code) when the link takes nothing from this browser."""
    if invite is None:
        return INVALID
    state = invite_state(invite)
    if state in CLOSED:
        return CLOSED[state]
    if state == InviteState.USED_UP and not (standing and standing.claimed):
        return USED
    return None


REOPEN_SECONDS = 20


async def page(request: Request) -> Response:
    invite, standing = await _invite_and_standing(request)
    closed = _closed(invite, standing)
    if closed:
        status, _, code = closed
        lang = i18n.choose(request.headers.get("accept-language"))
        # turned off may be turned on: the page says so and looks again by itself, so a guest whose
        # files were on hold at a reload finds the upload page, and those files, when it opens (re-walk)
        # its title, as the open page shows it; a deleted link's page is an unknown one's, word for word
        named = invite.title if invite and status != 404 else ""
        text = message_page(lang, code, "page.turned_off", refresh=REOPEN_SECONDS, link_title=named) \
            if code == "link_off" else message_page(lang, "link_used_once" if code == "link_used" and invite.max_uses == 1
                                                    else code, link_title=named)
        return with_session(request, HTMLResponse(text, status_code=status, headers={  # a cache must not keep it
            "Content-Language": lang, "Vary": "Accept-Language", "Cache-Control": "no-store"}))
    return with_session(request, FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"}))


async def _open_invite(request: Request):
    """(invite, standing) for the API calls; ApiError with the same answer as the page otherwise."""
    invite, standing = await _invite_and_standing(request)
    closed = _closed(invite, standing)
    if closed:
        status, message, code = closed
        raise ApiError(status, message, code=code, params={"max": invite.max_uses} if code == "link_used" else None)
    return invite, standing


async def info(request: Request) -> Response:
    services = request.app.state.services
    invite, standing = await _open_invite(request)
    account = await services.store.get_account(invite.owner_id)
    left = lambda limit, used: None if limit is None else max(limit - used, 0)  # noqa: E731
    server_max = services.settings.max_upload_size
    if invite.password_hash and not (standing and standing.unlocked):
        # Before its password, a link shows its title and asks: its album's name, its limits and
        # its questions (name, message) are for the guests who know the password.
        return JSONResponse({
            "title": invite.title, "albumName": "",
            "limits": {"maxFileSize": None, "maxTotalBytes": None, "maxFiles": None, "mediaKind": "all", "maxUses": None},
            "remaining": {"files": None, "bytes": None}, "expiresAt": None, "needsPassword": True, "unlocked": False,
            "paused": not (account and account.key_valid), "guestFields": "hidden",
        }, headers={"Cache-Control": "no-store"})
    return JSONResponse({
        "title": invite.title, "albumName": invite.album_name,
        "limits": {"maxFileSize": min(invite.max_file_size, server_max) if invite.max_file_size else None, "maxTotalBytes": invite.max_total_bytes,
                   "maxFiles": invite.max_files, "mediaKind": invite.media_kind, "maxUses": invite.max_uses},
        "remaining": {"files": left(invite.max_files, invite.files), "bytes": left(invite.max_total_bytes, invite.bytes)},
        "expiresAt": invite.expires_at.isoformat() if invite.expires_at else None,
        "needsPassword": bool(invite.password_hash), "unlocked": bool(standing and standing.unlocked),
        "paused": not (account and account.key_valid), "guestFields": invite.guest_fields,
    }, headers={"Cache-Control": "no-store"})


async def unlock(request: Request) -> Response:
    services = request.app.state.services
    invite, _ = await _open_invite(request)
    session = services.sessions.from_scope(request.scope)
    if session is None:
        raise ApiError(403, "Open the link in your browser first.", code="no_session")
    password = text_field(await json_body(request), "password", 1024)
    limiter = services.invite_limiter
    # counted against this password: the owner changing it starts every count afresh (the tries
    # held a family out for 15 minutes after the owner had sent them a new one: probe)
    version = invite.password_hash or ""
    keys = [("ip_invite", client_address(request), invite.id, version), ("invite", invite.id, version)]
    wait = limiter.attempt(*keys)  # counted before the first await: a parallel burst cannot exceed it
    if wait:
        raise too_many(wait)
    if invite.password_hash:
        try:
            right = await services.hasher.run(verify_password, password, invite.password_hash)
        except HasherBusy:
            limiter.undo(*keys)
            raise ApiError(429, "Many people are trying passwords right now. Try again in a few seconds.",
                           {"Retry-After": "2"}, code="passwords_busy") from None
        if not right:
            raise _wrong(*limiter.left(keys[0]))
    limiter.succeeded(*keys)
    await services.store.unlock_invite(invite.id, session)
    return Response(status_code=204)


FEW_TRIES = 3  # tries left at an address from which the guest is told how many


def _wrong(left: int, wait: int) -> ApiError:
    """A wrong password's answer: how many tries this address has left once they are few, and the
    wait once there are none (a guest met the 15-minute wait with no warning: walk)."""
    if left == 0:
        return ApiError(401, f"That password is not right. Try again in {wait} seconds.",
                        code="wrong_password_wait", params={"wait": wait})
    if left <= FEW_TRIES:
        return ApiError(401, f"That password is not right. Tries left before a wait: {left}.",
                        code="wrong_password_few", params={"count": left})
    return ApiError(401, "That password is not right.", code="wrong_password")


routes = [
    Route("/i/{token:str}", page),
    Route("/api/i/{token:str}", info),
    Route("/api/i/{token:str}/unlock", unlock, methods=["POST"]),
]
