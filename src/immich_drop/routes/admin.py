"""Admin sign-in, session and albums, as JSON under `/api/` (the console at `/admin` uses the same API).

    POST /api/login      {"email", "password"} or {"apiKey"}, optional "lang"  → 200 {"user", "csrfToken"} + cookie
    POST /api/logout     → 204 (ends our session and the Immich session)
    GET  /api/session    → 200 {"user", "csrfToken", "keyValid", "expiresAt"} or 401
    GET  /api/albums     → 200 [{"id", "albumName", "assetCount"}]
    POST /api/albums     {"name"} → 201 {"id", "albumName", "assetCount"}

Every state-changing request needs the session's token in `X-CSRF-Token` (login needs none: it has no
session yet, and JSON-only bodies plus the Origin check keep cross-site forms out). Sign-in attempts
are limited per account and address (5 in 15 minutes), per address (20) and, loosely, per account (50;
the last two not counted from an address the account signed in from before): 429 with Retry-After.

Each sign-in stores the admin's language for their notifications: the console's choice ("lang", one
of i18n.LANGUAGES, else 400), or the best match of the request's Accept-Language.
"""

from __future__ import annotations

import hmac
import re
from datetime import timezone
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .. import i18n
from ..accounts import COOKIE, UNREACHABLE, SignInError
from ..guest_fields import one_line
from ..immich import ImmichRejected, ImmichUnavailable
from .errors import ApiError, client_address, json_body, same_origin, text_field, too_many
from .guest import WEB


API_KEY = re.compile(r"[\x21-\x7e]+")


async def require_admin(request: Request, write: bool = False):
    """The signed-in (session, account), or ApiError 401; with `write`, the CSRF token must match."""
    services = request.app.state.services
    found = await services.accounts.current(request.cookies.get(COOKIE))
    if found is None:
        raise ApiError(401, "Sign in first.", code="sign_in_first")
    session, account = found
    if write:
        sent = request.headers.get("x-csrf-token", "")
        if not same_origin(request, services.settings.public_base_url) or \
                not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise ApiError(403, "Missing or wrong CSRF token.", code="stale_page")
    return session, account


def user_json(account) -> dict:
    return {"id": account.user_id, "email": account.email, "name": account.name}


async def console(request: Request) -> Response:
    return FileResponse(WEB / "admin" / "index.html", headers={"Cache-Control": "no-store"})


async def login(request: Request) -> Response:
    services = request.app.state.services
    if not same_origin(request, services.settings.public_base_url):
        raise ApiError(403, "Cross-origin sign-in is not allowed.", code="stale_page")
    body = await json_body(request)
    api_key = text_field(body, "apiKey", 256).strip()
    email = text_field(body, "email", 320).strip().lower()
    password = text_field(body, "password", 1024)
    lang = text_field(body, "lang", 8)
    if lang and lang not in i18n.LANGUAGES:
        raise ApiError(400, f"lang: one of {', '.join(i18n.LANGUAGES)}.", code="bad_request", params={"field": "lang"})
    lang = lang or i18n.choose(request.headers.get("accept-language"))
    if api_key and not API_KEY.fullmatch(api_key):
        # its own words: "the request was not understood" sent the owner to reload (owner walk)
        raise ApiError(400, "An Immich API key holds only letters, digits and punctuation: check what was pasted.",
                       code="api_key_invalid", params={"field": "apiKey"})
    if not api_key and not (email and password):
        raise ApiError(400, "Give an email and password, or an API key.", code="sign_in_missing")
    limiter, address = services.login_limiter, client_address(request)
    account = f"key:{api_key}" if api_key else email
    # Strict per account and address, loose per account alone: an outsider's failures cannot keep the
    # owner out, least of all from an address the owner has signed in from before, where only the
    # strict count applies (20 wrong sign-ins on other accounts from a shared Wi-Fi held the owner
    # out there for 15 minutes: attack run).
    keys = [("account_ip", account, address)]
    if not limiter.vouched(("good", account, address)):
        keys += [("ip", address), ("account", account)]
    wait = limiter.attempt(*keys)  # counted before the first await: a parallel burst cannot exceed it
    if wait:
        raise too_many(wait)
    try:
        where = urlsplit(services.settings.public_base_url).netloc or request.url.netloc  # named in the key
        signed = await (services.accounts.sign_in_key(api_key, lang, where) if api_key
                        else services.accounts.sign_in_password(email, password, lang, where))
    except SignInError as err:
        if err.status != 401:
            limiter.undo(*keys)  # not a wrong password: Immich could not answer
        raise ApiError(err.status, err.message, code=err.code, params=err.params) from None
    limiter.succeeded(*keys)
    limiter.vouch(("good", account, address))
    response = JSONResponse({"user": user_json(signed.account), "csrfToken": signed.session.csrf_token})
    response.headers.append("set-cookie", services.accounts.cookie(signed.cookie_value, request.url.scheme == "https"))
    return response


async def logout(request: Request) -> Response:
    services = request.app.state.services
    await require_admin(request, write=True)
    await services.accounts.sign_out(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.headers.append("set-cookie", services.accounts.cookie("", request.url.scheme == "https", clear=True))
    return response


async def session_info(request: Request) -> Response:
    session, account = await require_admin(request)
    expires = session.expires_at if session.expires_at.tzinfo else session.expires_at.replace(tzinfo=timezone.utc)
    return JSONResponse({"user": user_json(account), "csrfToken": session.csrf_token, "keyValid": account.key_valid,
                         "expiresAt": expires.isoformat()}, headers={"Cache-Control": "no-store"})


async def albums(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "POST":
        _, account = await require_admin(request, write=True)
        name = one_line(text_field(await json_body(request), "name", 1024))
        if not name or len(name) > 255:
            raise ApiError(400, "name: give an album name of 1 to 255 characters.", code="album_name")
        album_id = await immich_call(services, account, services.immich.find_or_create_album, name)
        return JSONResponse({"id": album_id, "albumName": name, "assetCount": 0}, status_code=201)
    _, account = await require_admin(request)
    found = await immich_call(services, account, services.immich.writable_albums, account.user_id)
    listed = [{"id": a["id"], "albumName": a.get("albumName", ""), "assetCount": a.get("assetCount", 0)} for a in found]
    return JSONResponse(sorted(listed, key=lambda a: a["albumName"].lower()), headers={"Cache-Control": "no-store"})


KEY_REFUSED = "Immich no longer accepts this account's upload key. Sign in again."


async def immich_call(services, account, fn, *args):
    """Call Immich with the account's minted key, mapping failures to clear API errors."""
    key = services.box.open(account.api_key_enc) if account.key_valid else None
    if not key:
        raise ApiError(409, KEY_REFUSED, code="owner_key_refused")
    try:
        return await fn(key, *args)
    except ImmichUnavailable:
        raise ApiError(502, UNREACHABLE, code="immich_unreachable") from None
    except ImmichRejected as exc:
        if exc.auth_problem:
            await services.store.set_key_valid(account.user_id, False)
            raise ApiError(409, KEY_REFUSED, code="owner_key_refused") from None
        raise ApiError(400, f"Immich refused: {exc.message}", code="immich_refused", params={"reason": exc.message}) from None


routes = [
    Route("/admin", console),
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/session", session_info),
    Route("/api/albums", albums, methods=["GET", "POST"]),
]
